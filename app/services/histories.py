"""The resident's histories in plain words: a bill's state (paid, to pay, overdue), the status
chips of payments, readings and meters, the names of a meter's zones and of a consumption
range, the filters' choices (account, year, page) read from a query string, and a month of
charges gathered from its lines. The views (app/views/resident.py) only show what these say."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import (
    ZERO,
    Charge,
    Invoice,
    Meter,
    Payment,
    PaymentStatus,
    PersonalAccount,
    ReadingStatus,
)
from app.services.accounts import bound_account_ids
from app.services.verification import overdue

#: A history shows this many rows (or months) per page.
PAGE_SIZE = 20
#: Pages past this are refused as a typo: the offset would not fit the database's integers.
MAX_PAGE = 100_000
#: The «Период» control offers the years from the oldest account's opening, at most this many.
MAX_YEARS = 10

#: Register -> its plain name, by the number of zones of the meter (ФСТ 1473-э).
ZONE_NAMES = {
    1: {"T1": "Круглосуточно"},
    2: {"T1": "День", "T2": "Ночь"},
    3: {"T1": "Пик", "T2": "Ночь", "T3": "Полупик"},
}
METER_KINDS = {1: "Однотарифный", 2: "Двухтарифный (день и ночь)",
               3: "Трёхтарифный (пик, полупик и ночь)"}
PAYMENT_TONES = {"succeeded": "ok", "pending": "warn", "created": "warn", "canceled": "bad",
                 "refunded": "info"}
READING_TONES = {"accepted": "ok", "flagged": "warn", "rejected": "bad"}


@dataclass(frozen=True)
class Status:
    """A status chip: the words, and the tone (ok, warn, bad, info) its colour repeats."""

    label: str
    tone: str


@dataclass(frozen=True)
class BillState(Status):
    """A bill's state, with what is left to pay of it after the payments since its issue."""

    outstanding: Decimal = ZERO

    @property
    def due(self) -> bool:
        return self.outstanding > 0


def bill_status(amount_due: Decimal, due_date: dt.date, today: dt.date,
                paid_since: Decimal | None = None) -> BillState:
    """«Оплачен» when nothing is left of the amount due, else «К оплате» until the due date
    and «Просрочен» after it. A bill's amount due is the account's debt on the day it was
    issued, so payments made since then (oldest debt first) go to it: a bill paid after its
    issue reads as paid, not as overdue."""
    outstanding = amount_due - (paid_since or ZERO)
    if outstanding <= 0:
        return BillState("Оплачен", "ok", ZERO)
    if today > due_date:
        return BillState("Просрочен", "bad", outstanding)
    return BillState("К оплате", "warn", outstanding)


def paid_since_issue():
    """The succeeded payments to an invoice's account since the invoice was issued, as a
    column of a statement over Invoice (a correlated subquery, an index lookup per row)."""
    when = func.coalesce(Payment.paid_at, Payment.created_at)
    return (select(func.coalesce(func.sum(Payment.amount), ZERO))
            .where(Payment.account_id == Invoice.account_id, Payment.status == "succeeded",
                   when >= Invoice.issued_at)
            .correlate(Invoice).scalar_subquery().label("paid_since"))


def payment_status(status: str) -> Status:
    return Status(PaymentStatus.label(status), PAYMENT_TONES.get(status, "info"))


def reading_status(status: str) -> Status:
    return Status(ReadingStatus.label(status), READING_TONES.get(status, "info"))


def meter_status(meter: Meter, today: dt.date) -> Status:
    """Whether the meter counts, and whether its verification is overdue (a meter past its
    verification date is not trusted: charges go by the average, then the norm)."""
    if not meter.active:
        return Status("Не используется", "info")
    if overdue(meter.verification_due, today):
        return Status("Истёк срок поверки", "bad")
    return Status("Действует", "ok")


def meter_kind(zones: int | None) -> str:
    return METER_KINDS.get(zones or 1, f"{zones}-тарифный")


def zone_name(zone: str | None, zones: int | None) -> str:
    """«День», «Ночь», «Пик», «Полупик», or «Круглосуточно» for a single-zone meter (and for a
    charge without a meter); empty for a line without a zone (an adjustment)."""
    if not zone:
        return ""
    return ZONE_NAMES.get(zones or 1, ZONE_NAMES[3]).get(zone, zone)


def range_name(range_no: int | None) -> str:
    """The 1st consumption range is the household norm; the 2nd and 3rd are above it."""
    if range_no is None:
        return ""
    return "в пределах нормы" if range_no <= 1 else "сверх нормы"


def registers(zones: int | None, t1: Decimal | None, t2: Decimal | None,
              t3: Decimal | None) -> list[tuple[str, Decimal]]:
    """A reading's values with their zones' names, in the meter's register order."""
    values = {"T1": t1, "T2": t2, "T3": t3}
    names = ZONE_NAMES.get(zones or 1, ZONE_NAMES[3])
    return [(name, values[zone]) for zone, name in names.items() if values[zone] is not None]


# The filters' choices ---------------------------------------------------------------------


@dataclass
class Choice:
    """What a history is asked to show: one account or all, one year or all, a page (from 1);
    and what of the query string was refused, in words."""

    account: int | None = None
    year: int | None = None
    page: int = 1
    errors: list[str] = field(default_factory=list)


def own_accounts(session: Session, user_id: int) -> list[PersonalAccount]:
    """The accounts bound to the user, by number: the «Лицевой счёт» choices."""
    return list(session.execute(
        select(PersonalAccount).where(PersonalAccount.id.in_(bound_account_ids(session, user_id)))
        .order_by(PersonalAccount.number)).scalars())


def offered_years(accounts: Iterable[PersonalAccount], today: dt.date) -> list[int]:
    """This year back to the opening of the oldest account (at most MAX_YEARS), newest first."""
    first = min((a.opened_on.year for a in accounts if a.opened_on), default=today.year)
    first = max(first, today.year - MAX_YEARS + 1)
    return list(range(today.year, min(first, today.year) - 1, -1))


def _number(text: str | None, limit: int) -> int | None:
    text = (text or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > len(str(limit)):
        return None
    value = int(text)
    return value if 0 < value <= limit else None


def parse_choice(args: Mapping[str, str], account_ids: Iterable[int],
                 years: Iterable[int]) -> Choice:
    """Read ``account``, ``year`` and ``page``. A value that is not one of the offered choices
    (another user's account, a year out of range, a page that is not a number) is dropped with
    a message, and the history shows as if it had not been given."""
    choice = Choice()
    if args.get("account"):
        account = _number(args.get("account"), 2**62)
        if account in set(account_ids):
            choice.account = account
        else:
            choice.errors.append("Такого лицевого счёта нет среди ваших: показаны все.")
    if args.get("year"):
        year = _number(args.get("year"), 9999)
        if year in set(years):
            choice.year = year
        else:
            choice.errors.append("Период указан неверно: показаны все годы.")
    if args.get("page"):
        page = _number(args.get("page"), MAX_PAGE)
        if page is None:
            choice.errors.append("Номер страницы указан неверно: показана первая.")
        else:
            choice.page = page
    return choice


def year_bounds(year: int, tz: str | None = None) -> tuple[dt.date, dt.date] | tuple[
        dt.datetime, dt.datetime]:
    """The first instant of ``year`` and of the next: dates, or (with ``tz``) the instants of
    local midnight in UTC, so a payment at 01:00 on 1 January Moscow time is of the new year."""
    start, end = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    if tz is None:
        return start, end
    zone = ZoneInfo(tz)
    return tuple(dt.datetime.combine(d, dt.time(), zone).astimezone(dt.timezone.utc)
                 for d in (start, end))


def pages(count: int, size: int = PAGE_SIZE) -> int:
    return max(1, -(-count // size))


# Charges by month ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeLine:
    """One line of a month's charges, its zone and range in words."""

    charge: Charge
    zone: str
    range: str


@dataclass
class ChargeMonth:
    """A month of one account's charges: a row of the history, its lines under it."""

    period: dt.date
    account: PersonalAccount
    lines: list[ChargeLine] = field(default_factory=list)

    @property
    def id(self) -> int:
        return self.lines[0].charge.id

    @property
    def total(self) -> Decimal:
        return sum((line.charge.amount for line in self.lines), ZERO)

    @property
    def kwh(self) -> Decimal:
        return sum((line.charge.kwh or 0 for line in self.lines), Decimal("0"))


def describe_charge(charge: Charge) -> ChargeLine:
    zones = charge.meter.zones if charge.meter is not None else 1
    return ChargeLine(charge, zone_name(charge.zone, zones), range_name(charge.range_no))


def charge_months(charges: Iterable[Charge]) -> list[ChargeMonth]:
    """Lines ordered by month and account -> one ChargeMonth per month and account."""
    months: list[ChargeMonth] = []
    for charge in charges:
        if not months or (months[-1].period, months[-1].account.id) != (charge.period,
                                                                       charge.account_id):
            months.append(ChargeMonth(charge.period, charge.account))
        months[-1].lines.append(describe_charge(charge))
    return months


def month_numbers() -> list:
    """The columns that number a charge's month (period and account), newest first and
    oldest first: a statement over them, filtered, feeds ``charge_month_page``."""
    return [Charge.id,
            func.dense_rank().over(order_by=(Charge.period.desc(), Charge.account_id))
            .label("month_no"),
            func.dense_rank().over(order_by=(Charge.period, Charge.account_id.desc()))
            .label("month_back")]


def charge_month_page(session: Session, numbered, page: int, size: int = PAGE_SIZE,
                      options: Iterable = ()) -> tuple[int, list[ChargeMonth]]:
    """The ``page`` (from 1) of months of the charges ``numbered`` selects (a subquery of
    ``month_numbers`` under the history's filters), with the number of months, in one
    statement: a row's two numbers add up to the count plus one."""
    rows = session.execute(
        select(Charge, (numbered.c.month_no + numbered.c.month_back - 1).label("months"))
        .join(numbered, numbered.c.id == Charge.id)
        .where(numbered.c.month_no > (page - 1) * size, numbered.c.month_no <= page * size)
        .options(*options)
        .order_by(Charge.period.desc(), Charge.account_id, Charge.meter_id, Charge.zone,
                  Charge.range_no, Charge.id)).all()
    if not rows:
        return session.execute(select(func.max(numbered.c.month_no))).scalar() or 0, []
    return rows[0].months, charge_months(row.Charge for row in rows)
