"""Which periods a billing run may take, and into which a correction may go: the rules that
keep the ledger a sequence of closed months with one open month after them.

Billed months are read off the invoices: the first and the last one of a branch (or of all
branches) through the invoice period index, newest or oldest first, stopping at the first
invoice of the branch, so the check costs the same after years of invoices."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.services.periods import add_months


class BillingError(Exception):
    """A run that must not happen (a period in the future, ...); safe to show."""


def first_of_month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def parse_period(text_value: str) -> dt.date:
    """'2026-10' or '10.2026' -> 2026-10-01, with a Russian message otherwise."""
    raw = (text_value or "").strip()
    for fmt in ("%Y-%m", "%m.%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(raw, fmt).date().replace(day=1)
        except ValueError:
            continue
    raise BillingError(f"Период «{raw}» не распознан: укажите месяц как 2026-10.")


def billed_bounds(session: Session,
                  branch_id: int | None = None) -> tuple[dt.date | None, dt.date | None]:
    """The first and the last billed period, of one branch or of all; (None, None) when
    nothing was billed."""
    if branch_id is None:
        first, last = session.execute(text("SELECT MIN(period), MAX(period) FROM invoice")).one()
        return _as_date(first), _as_date(last)
    bounds = []
    for order in ("ASC", "DESC"):
        bounds.append(_as_date(session.execute(text(
            "SELECT i.period FROM invoice i JOIN personal_account a ON a.id = i.account_id "
            f"WHERE a.branch_id = :branch ORDER BY i.period {order} LIMIT 1"),
            {"branch": branch_id}).scalar()))
    return bounds[0], bounds[1]


def check_period(session: Session, period: dt.date, today: dt.date, window_last_day: int,
                 force_reason: str | None = None, branch_id: int | None = None) -> None:
    """Refuse, with the reason, a period that must not be billed now: in the future, out of
    sequence, or still taking readings."""
    check_future(period, today)
    check_sequence(session, period, branch_id)
    check_window(period, today, window_last_day, force_reason)


def check_future(period: dt.date, today: dt.date) -> None:
    if period > first_of_month(today):
        raise BillingError(f"Нельзя выставить счета за будущий период {period:%m.%Y}.")


def check_window(period: dt.date, today: dt.date, window_last_day: int,
                 force_reason: str | None = None) -> None:
    """Refuse the current month while its readings are still being taken, unless forced with
    a reason (which the run records in the audit journal)."""
    if period == first_of_month(today) and today.day <= window_last_day \
            and not (force_reason or "").strip():
        raise BillingError(f"Показания за {period:%m.%Y} принимаются до {window_last_day}-го "
                           "числа: рассчитайте месяц после этого или укажите причину "
                           "досрочного расчёта.")


def check_sequence(session: Session, period: dt.date, branch_id: int | None = None) -> None:
    """Refuse a period before the first billed one (unless nothing was ever billed) and one
    after a month not yet billed (a gap). With a branch, its own billed months count:
    branches are billed, and may fail, one by one."""
    first, last = billed_bounds(session, branch_id)
    if first is not None and period < first:
        raise BillingError(f"Период {period:%m.%Y} раньше первого рассчитанного "
                           f"({first:%m.%Y}): за него счета не выставлялись и выставлены "
                           "не будут.")
    if last is not None and period > add_months(last, 1):
        raise BillingError(f"Сначала рассчитайте {add_months(last, 1):%m.%Y}: последний "
                           f"рассчитанный период — {last:%m.%Y}, месяцы нельзя пропускать.")


def check_correction(session: Session, account_id: int, period: dt.date) -> None:
    """A correction goes into a period the account has not been billed for yet: a billed
    period is closed, and the next invoice carries its opening from the last one, so a change
    before it would never reach a bill."""
    last = _as_date(session.execute(text("SELECT MAX(period) FROM invoice WHERE account_id = :a"),
                                    {"a": account_id}).scalar())
    if last is not None and first_of_month(period) <= last:
        raise BillingError(f"Счёт за {last:%m.%Y} уже выставлен: период закрыт. Внесите "
                           f"корректировку в {add_months(last, 1):%m.%Y} или позже.")


def _as_date(value) -> dt.date | None:
    """A date column's value: a date on PostgreSQL, an ISO string on SQLite."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
