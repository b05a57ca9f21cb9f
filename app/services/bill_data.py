"""What a bill says: the readings, charges and payments of an invoice's period, read from the
ledger in a fixed number of queries whatever the account's size (meters, readings of the
period, previous readings, charges, payments). Money stays Decimal."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import (
    ZERO,
    Charge,
    ChargeKind,
    Invoice,
    Meter,
    Payment,
    PaymentMethod,
    PersonalAccount,
    Reading,
)
from app.services.periods import DEFAULT_TZ, add_months

#: Register -> its name, by the number of zones of the meter (ФСТ 1473-э).
ZONE_NAMES = {
    1: {"T1": "Круглосуточно"},
    2: {"T1": "День (T1)", "T2": "Ночь (T2)"},
    3: {"T1": "Пик (T1)", "T2": "Ночь (T2)", "T3": "Полупик (T3)"},
}
RANGE_NAMES = {1: "1-й", 2: "2-й", 3: "3-й"}
SERVICE = "Электроснабжение"


def utc_bounds(start: dt.date, end_exclusive: dt.date, tz: str) -> tuple[dt.datetime, ...]:
    """Local days as UTC instants: the ledger stores payments' times in UTC."""
    zone = ZoneInfo(tz)
    return tuple(dt.datetime.combine(d, dt.time(), zone).astimezone(dt.timezone.utc)
                 for d in (start, end_exclusive))


def local_time(value: dt.datetime, tz: str) -> dt.datetime:
    """A stored instant (naive means UTC) as the local time printed on documents."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def issued_on(invoice: Invoice, tz: str) -> dt.date:
    """The local day an invoice was issued (today while it is not yet)."""
    return local_time(invoice.issued_at or dt.datetime.now(dt.timezone.utc), tz).date()


@dataclass(frozen=True)
class ReadingLine:
    meter: str
    zone: str
    previous: Decimal | None
    previous_period: dt.date | None
    current: Decimal | None
    kwh: Decimal | None


@dataclass(frozen=True)
class ChargeLine:
    service: str
    zone: str
    range_name: str
    kwh: Decimal | None
    rate: Decimal | None
    amount: Decimal
    kind: str


@dataclass(frozen=True)
class PaymentLine:
    at: dt.datetime
    method: str
    amount: Decimal


@dataclass
class BillData:
    invoice: Invoice
    account: PersonalAccount
    readings: list[ReadingLine] = field(default_factory=list)
    charges: list[ChargeLine] = field(default_factory=list)
    payments: list[PaymentLine] = field(default_factory=list)
    counter: tuple[str, str] | None = None

    @property
    def charged_total(self) -> Decimal:
        return sum((c.amount for c in self.charges), ZERO)

    @property
    def kwh_total(self) -> Decimal:
        return sum((c.kwh or ZERO for c in self.charges if c.kwh), Decimal("0"))


def _register(reading: Reading | None, zone: str) -> Decimal | None:
    return None if reading is None else getattr(reading, zone.lower())


def _consumed(previous: Decimal | None, current: Decimal | None, digits: int) -> Decimal | None:
    if previous is None or current is None:
        return None
    if current >= previous:
        return current - previous
    return current + Decimal(10) ** digits - previous  # the counter rolled over


def _latest(readings) -> dict[int, Reading]:
    """One reading per meter: the latest period, then the latest submitted."""
    chosen: dict[int, Reading] = {}
    for r in readings:
        best = chosen.get(r.meter_id)
        if best is None or (r.period, r.submitted_at or dt.datetime.min) > (
                best.period, best.submitted_at or dt.datetime.min):
            chosen[r.meter_id] = r
    return chosen


def bill_data(session: Session, invoice: Invoice, tz: str = DEFAULT_TZ) -> BillData:
    """The readings, charges and payments of an invoice's period: five queries."""
    account = invoice.account
    period = invoice.period
    meters = list(session.execute(
        select(Meter).where(Meter.account_id == account.id).order_by(Meter.serial)).scalars())
    ids = [m.id for m in meters]
    current = _latest(session.execute(
        select(Reading).where(Reading.meter_id.in_(ids), Reading.period == period,
                              Reading.status == "accepted")).scalars()) if ids else {}
    before = (select(Reading.meter_id, func.max(Reading.period).label("period"))
              .where(Reading.meter_id.in_(ids), Reading.period < period,
                     Reading.status == "accepted")
              .group_by(Reading.meter_id).subquery())
    previous = _latest(session.execute(
        select(Reading).join(before, (Reading.meter_id == before.c.meter_id)
                             & (Reading.period == before.c.period))
        .where(Reading.status == "accepted")).scalars()) if ids else {}
    charges = list(session.execute(
        select(Charge).where(Charge.account_id == account.id, Charge.period == period)
        .order_by(Charge.meter_id, Charge.zone, Charge.range_no, Charge.id)).scalars())
    start, end = utc_bounds(period, add_months(period, 1), tz)
    paid_at = func.coalesce(Payment.paid_at, Payment.created_at)
    payments = session.execute(
        select(Payment.amount, Payment.method, paid_at.label("at"))
        .where(Payment.account_id == account.id, Payment.status == "succeeded",
               paid_at >= start, paid_at < end)
        .order_by(paid_at)).all()

    data = BillData(invoice, account)
    by_id = {m.id: m for m in meters}
    charged_meters = {c.meter_id for c in charges}
    for meter in meters:
        if not meter.active and meter.id not in charged_meters and meter.id not in current:
            continue
        now, last = current.get(meter.id), previous.get(meter.id)
        for zone in ("T1", "T2", "T3")[: meter.zones]:
            cur, prev = _register(now, zone), _register(last, zone)
            data.readings.append(ReadingLine(
                meter.serial, ZONE_NAMES[meter.zones][zone], prev,
                last.period if last else None, cur,
                _consumed(prev, cur, meter.digit_capacity)))
    single = [m for m in meters if m.active]
    if len(single) == 1 and single[0].zones == 1 and single[0].id in current:
        data.counter = (single[0].serial, f"{current[single[0].id].t1.normalize():f}")
    for c in charges:
        meter = by_id.get(c.meter_id)
        zones = meter.zones if meter else 1
        zone = ZONE_NAMES.get(zones, {}).get(c.zone or "", c.zone or "") if c.zone else ""
        service = SERVICE if c.kind != "adjustment" else "Корректировка"
        if c.kind in ("average", "norm"):
            service += f" ({ChargeKind.label(c.kind).lower()})"
        if c.note and c.kind == "adjustment":
            service += f": {c.note}"
        data.charges.append(ChargeLine(
            service, zone, RANGE_NAMES.get(c.range_no or 0, ""),
            c.kwh if c.kind != "adjustment" or c.kwh else None, c.rate, c.amount, c.kind))
    data.payments = [PaymentLine(local_time(p.at, tz), PaymentMethod.label(p.method), p.amount)
                     for p in payments]
    return data
