"""The daily reconciliation of card payments for finance: per local day, what the gateways
confirmed as paid against what was credited to accounts, on screen and as .xlsx."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Payment, PaymentOrder
from app.services import export


@dataclass
class ReconciliationDay:
    """One day of the reconciliation, or (``day`` None) the period's total."""

    day: dt.date | None
    gateway_count: int = 0
    gateway_total: Decimal = Decimal("0.00")
    credited_count: int = 0
    credited_total: Decimal = Decimal("0.00")
    refunded_total: Decimal = Decimal("0.00")

    @property
    def difference(self) -> Decimal:
        """What the gateway collected but the ledger did not credit (or the reverse)."""
        return self.gateway_total - self.credited_total


def reconciliation(session: Session, date_from: dt.date, date_to: dt.date,
                   zone: str = "Europe/Moscow") -> list[ReconciliationDay]:
    """Per local day, newest first: what gateways confirmed as paid against what was credited
    to accounts (refunded parts count as credited, and are shown apart)."""
    tz = ZoneInfo(zone)
    start = dt.datetime.combine(date_from, dt.time(), tz)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), tz)
    days = {date_from + dt.timedelta(days=i): ReconciliationDay(date_from + dt.timedelta(days=i))
            for i in range((date_to - date_from).days + 1)}

    def local_day(value: dt.datetime) -> dt.date:
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(tz).date()

    for paid_at, amount in session.execute(
            select(PaymentOrder.paid_at, PaymentOrder.gateway_amount)
            .where(PaymentOrder.gateway_status == "succeeded", PaymentOrder.paid_at >= start,
                   PaymentOrder.paid_at < end)):
        row = days.get(local_day(paid_at))
        if row is not None:
            row.gateway_count += 1
            row.gateway_total += amount or 0
    for paid_at, amount, status in session.execute(
            select(Payment.paid_at, Payment.amount, Payment.status)
            .where(Payment.gateway.is_not(None), Payment.status.in_(("succeeded", "refunded")),
                   Payment.paid_at >= start, Payment.paid_at < end)):
        row = days.get(local_day(paid_at))
        if row is not None:
            row.credited_count += 1
            row.credited_total += amount
            if status == "refunded":
                row.refunded_total += amount
    return sorted(days.values(), key=lambda r: r.day, reverse=True)


def reconciliation_total(days: Iterable[ReconciliationDay]) -> ReconciliationDay:
    """The period's line «Итого»: the days' sums, so the totals shown add up."""
    total = ReconciliationDay(None)
    for d in days:
        total.gateway_count += d.gateway_count
        total.gateway_total += d.gateway_total
        total.credited_count += d.credited_count
        total.credited_total += d.credited_total
        total.refunded_total += d.refunded_total
    return total


RECONCILIATION_COLUMNS = (
    export.Column("День", export.DATE_FORMAT, 12),
    export.Column("Подтверждено шлюзом, шт.", "0", 14),
    export.Column("Подтверждено шлюзом, руб.", export.MONEY_FORMAT, 18),
    export.Column("Зачислено, шт.", "0", 12),
    export.Column("Зачислено, руб.", export.MONEY_FORMAT, 18),
    export.Column("Возвращено, руб.", export.MONEY_FORMAT, 16),
    export.Column("Расхождение, руб.", export.MONEY_FORMAT, 16),
)


def reconciliation_xlsx(days: Sequence[ReconciliationDay], stream) -> int:
    """The reconciliation as a sheet for finance: one row a day, then «Итого»."""
    def row(d: ReconciliationDay) -> list:
        return [d.day if d.day is not None else "Итого", d.gateway_count, d.gateway_total,
                d.credited_count, d.credited_total, d.refunded_total, d.difference]

    return export.write_xlsx(stream, "Сверка платежей", RECONCILIATION_COLUMNS,
                             [*map(row, days), row(reconciliation_total(days))])
