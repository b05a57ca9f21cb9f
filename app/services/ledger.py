"""An account's balance, worked out in one place: the cabinets, the API, acts, mailings and
notices take it from here.

A balance is what an account was charged less what it paid; positive, the holder owes, and
negative, an overpayment. Charges count by their period (the month they are for, dated by its
last day, as on the invoice). Payments count when credited, status ``succeeded``: a pending,
canceled or refunded payment is no money received. A payment is dated by
``coalesce(paid_at, created_at)``: when the money arrived, or, for one registered without
that date, when it was registered.

The balance as of a day is the one at the end of that local day: the charges of the months
ended by then and the payments dated before the next day began. Everything here is an
SQLAlchemy expression or selectable keyed by account, so that a caller puts the rule into its
own statement: one query for any number of accounts, never one per account.

The billing run (app.services.billing, raw SQL) does not call this: it carries each invoice's
opening from the account's last invoice plus what was charged and paid since, reading two
months of the ledger instead of its whole history. tests/test_ledger.py holds the two to the
same answer, and names where they still part (strict xfails): the run counts payments by
``paid_at`` alone and by UTC months, and never sees a payment dated, or refunded, before the
month of the invoice it carries from.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, Subquery, func, select
from sqlalchemy.orm import Session

from app.models import ZERO, Charge, Payment, PersonalAccount
from app.services.periods import DEFAULT_TZ, add_months

#: The one status of a payment that counts.
SUCCEEDED = "succeeded"
KOPECK = Decimal("0.01")

#: Accounts to take: ids, a statement selecting ids, or None for every account.
Accounts = Iterable[int] | Select | None


def credited() -> ColumnElement[bool]:
    """The payments that count: money received and not given back."""
    return Payment.status == SUCCEEDED


def paid_on() -> ColumnElement[dt.datetime]:
    """When a payment counts: when it was paid, else when it was registered."""
    return func.coalesce(Payment.paid_at, Payment.created_at)


def day_start(day: dt.date, tz: str = DEFAULT_TZ) -> dt.datetime:
    """The moment (UTC) a local day begins."""
    return dt.datetime.combine(day, dt.time(), ZoneInfo(tz)).astimezone(dt.timezone.utc)


@dataclass(frozen=True)
class Cutoff:
    """Where a balance as of a day stops: charges of periods before ``period``, payments
    dated before ``moment``."""

    period: dt.date
    moment: dt.datetime


def cutoff(as_of: dt.date, tz: str = DEFAULT_TZ) -> Cutoff:
    """The end of the local day ``as_of``."""
    after = as_of + dt.timedelta(days=1)
    return Cutoff(add_months(after, 0), day_start(after, tz))


def _ids(accounts: Accounts) -> list[int] | Select | None:
    return accounts if accounts is None or isinstance(accounts, Select) else list(accounts)


def _of(column, accounts: Accounts) -> list[ColumnElement[bool]]:
    accounts = _ids(accounts)
    return [] if accounts is None else [column.in_(accounts)]


def charged(accounts: Accounts = None, *, before: dt.date | None = None,
            period: dt.date | None = None) -> Subquery:
    """Charges per account (``account_id``, ``amount``): of periods before ``before``, or of
    the one ``period``, or all."""
    conditions = _of(Charge.account_id, accounts)
    if before is not None:
        conditions.append(Charge.period < before)
    if period is not None:
        conditions.append(Charge.period == period)
    return (select(Charge.account_id.label("account_id"), func.sum(Charge.amount).label("amount"))
            .where(*conditions).group_by(Charge.account_id).subquery())


def paid(accounts: Accounts = None, *, before: dt.datetime | None = None) -> Subquery:
    """Credited payments per account (``account_id``, ``amount``), dated before ``before``
    or all."""
    conditions = [*_of(Payment.account_id, accounts), credited()]
    if before is not None:
        conditions.append(paid_on() < before)
    return (select(Payment.account_id.label("account_id"),
                   func.sum(Payment.amount).label("amount"))
            .where(*conditions).group_by(Payment.account_id).subquery())


def totals(accounts: Accounts = None, as_of: Cutoff | None = None) -> Select:
    """Per account: ``account_id``, ``charged``, ``paid`` and ``balance``, zero where there
    is nothing; every account has its row."""
    accounts = _ids(accounts)
    charges = charged(accounts, before=as_of.period if as_of else None)
    payments = paid(accounts, before=as_of.moment if as_of else None)
    charged_total = func.coalesce(charges.c.amount, 0)
    paid_total = func.coalesce(payments.c.amount, 0)
    return (select(PersonalAccount.id.label("account_id"), charged_total.label("charged"),
                   paid_total.label("paid"), (charged_total - paid_total).label("balance"))
            .outerjoin(charges, charges.c.account_id == PersonalAccount.id)
            .outerjoin(payments, payments.c.account_id == PersonalAccount.id)
            .where(*_of(PersonalAccount.id, accounts)))


def account_totals():
    """An account's charged and paid (None without rows) as subqueries correlated to
    PersonalAccount: each an index lookup, for a statement over few accounts."""
    charges = (select(func.sum(Charge.amount)).where(Charge.account_id == PersonalAccount.id)
               .correlate(PersonalAccount).scalar_subquery())
    payments = (select(func.sum(Payment.amount))
                .where(Payment.account_id == PersonalAccount.id, credited())
                .correlate(PersonalAccount).scalar_subquery())
    return charges, payments


def money(value) -> Decimal:
    """A sum read back as Decimal to the kopeck (a driver's float goes through its text)."""
    return Decimal(str(value or 0)).quantize(KOPECK)


@dataclass(frozen=True)
class Balance:
    charged: Decimal
    paid: Decimal

    @property
    def balance(self) -> Decimal:
        """Positive: the holder owes; negative: an overpayment."""
        return self.charged - self.paid


def balances(session: Session, account_ids: Accounts, as_of: dt.date | None = None,
             tz: str = DEFAULT_TZ) -> dict[int, Balance]:
    """The accounts' balances now, or at the end of the local day ``as_of``: one query."""
    query = totals(account_ids, None if as_of is None else cutoff(as_of, tz))
    return {account_id: Balance(money(c), money(p))
            for account_id, c, p, _ in session.execute(query)}


def contract_balances(session: Session, contract_ids: Iterable[int], as_of: dt.date,
                      tz: str = DEFAULT_TZ) -> dict[int, Decimal]:
    """Each contract's balance at the end of the local day ``as_of``, the sum of its
    accounts' (an act's opening is the day before it begins, its closing its last day): one
    query."""
    ids = list(contract_ids)
    accounts = select(PersonalAccount.id).where(PersonalAccount.contract_id.in_(ids))
    each = totals(accounts, cutoff(as_of, tz)).subquery()
    result = dict.fromkeys(ids, ZERO)
    for contract_id, balance in session.execute(
            select(PersonalAccount.contract_id, func.sum(each.c.balance))
            .join(each, each.c.account_id == PersonalAccount.id)
            .group_by(PersonalAccount.contract_id)):
        result[contract_id] = money(balance)
    return result
