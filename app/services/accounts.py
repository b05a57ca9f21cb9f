"""Personal accounts as their holders see them: balances from the ledger, the last bill, and
the reading status of every meter, in a fixed number of queries whatever the accounts."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from app.models import (
    ZERO,
    AccountBinding,
    Charge,
    Contract,
    Invoice,
    Meter,
    Payment,
    PersonalAccount,
    Reading,
)
from app.services.forecast import Forecast, for_accounts
from app.services.readings import Window

#: Reading status of a meter this month -> Russian label.
READING_STATUS = {
    "submitted": "Показания переданы",
    "expected": "Ждём показания",
    "overdue": "Показания не переданы",
    "not_yet": "Приём показаний ещё не начался",
}


@dataclass(frozen=True)
class MeterStatus:
    id: int
    serial: str
    zones: int
    status: str

    @property
    def label(self) -> str:
        return READING_STATUS[self.status]


@dataclass(frozen=True)
class AccountSummary:
    id: int
    number: str
    address: str
    charged: Decimal
    paid: Decimal
    last_invoice: Invoice | None = None
    meters: list[MeterStatus] = field(default_factory=list)
    forecast: Forecast | None = None

    @property
    def balance(self) -> Decimal:
        """Positive: the holder owes; negative: an overpayment."""
        return self.charged - self.paid


def _ledger_totals(session: Session, account_ids: list[int]) -> tuple[dict, dict]:
    if not account_ids:
        return {}, {}
    charged = dict(session.execute(
        select(Charge.account_id, func.sum(Charge.amount))
        .where(Charge.account_id.in_(account_ids)).group_by(Charge.account_id)
    ).all())
    paid = dict(session.execute(
        select(Payment.account_id, func.sum(Payment.amount))
        .where(Payment.account_id.in_(account_ids), Payment.status == "succeeded")
        .group_by(Payment.account_id)
    ).all())
    return charged, paid


def summarize(session: Session, accounts: list[PersonalAccount]) -> list[AccountSummary]:
    charged, paid = _ledger_totals(session, [a.id for a in accounts])
    return [
        AccountSummary(a.id, a.number, a.premises.address, charged.get(a.id) or ZERO,
                       paid.get(a.id) or ZERO)
        for a in accounts
    ]


def bound_account_ids(session: Session, user_id: int):
    """A subquery of the ids of the accounts bound to a user: the rows a resident may see."""
    return select(AccountBinding.account_id).where(AccountBinding.user_id == user_id)


def bound_account(session: Session, user_id: int, account_id: int) -> PersonalAccount | None:
    """The account if the user has bound it, else None (the caller answers 404)."""
    return session.execute(
        select(PersonalAccount)
        .where(PersonalAccount.id == account_id,
               PersonalAccount.id.in_(bound_account_ids(session, user_id)))
        .options(joinedload(PersonalAccount.premises))
    ).scalar_one_or_none()


def bound_account_summaries(session: Session, user_id: int) -> list[AccountSummary]:
    """The accounts bound to a user, with balances only: three queries."""
    return summarize(session, _bound_accounts(session, user_id))


def _bound_accounts(session: Session, user_id: int) -> list[PersonalAccount]:
    return list(session.execute(
        select(PersonalAccount)
        .where(PersonalAccount.id.in_(bound_account_ids(session, user_id)))
        .options(joinedload(PersonalAccount.premises))
        .order_by(PersonalAccount.number)
    ).scalars())


def meter_status(submitted: bool, today: dt.date, window: Window) -> str:
    if submitted:
        return "submitted"
    if today.day < window.first_day:
        return "not_yet"
    return "expected" if today.day <= window.last_day else "overdue"


def cabinet_overview(session: Session, user_id: int, today: dt.date,
                     window: Window) -> list[AccountSummary]:
    """The main page: every bound account with its balance, its last bill and the reading
    status of each active meter this month, and the month's forecast. Nine queries whatever
    the number of accounts."""
    accounts = _bound_accounts(session, user_id)
    ids = [a.id for a in accounts]
    charged, paid = _ledger_totals(session, ids)
    latest = (select(Invoice.account_id, func.max(Invoice.period).label("period"))
              .where(Invoice.account_id.in_(ids)).group_by(Invoice.account_id).subquery())
    invoices = {i.account_id: i for i in session.execute(
        select(Invoice).join(latest, (Invoice.account_id == latest.c.account_id)
                             & (Invoice.period == latest.c.period))).scalars()} if ids else {}
    meters = list(session.execute(
        select(Meter).where(Meter.account_id.in_(ids), Meter.active.is_(True))
        .order_by(Meter.serial)).scalars()) if ids else []
    period = today.replace(day=1)
    submitted = set(session.execute(
        select(Reading.meter_id).where(Reading.meter_id.in_([m.id for m in meters]),
                                       Reading.period == period,
                                       Reading.status != "rejected")
    ).scalars()) if meters else set()
    forecasts = for_accounts(session, accounts, meters, today)
    by_account: dict[int, list[MeterStatus]] = {}
    for meter in meters:
        by_account.setdefault(meter.account_id, []).append(MeterStatus(
            meter.id, meter.serial, meter.zones,
            meter_status(meter.id in submitted, today, window)))
    return [
        AccountSummary(a.id, a.number, a.premises.address, charged.get(a.id) or ZERO,
                       paid.get(a.id) or ZERO, invoices.get(a.id), by_account.get(a.id, []),
                       forecasts.get(a.id))
        for a in accounts
    ]


def organization_contracts(session: Session, organization_id: int | None) -> list[Contract]:
    if organization_id is None:
        return []
    return list(session.execute(
        select(Contract).where(Contract.organization_id == organization_id)
        .options(joinedload(Contract.accounts).joinedload(PersonalAccount.premises))
        .order_by(Contract.number)
    ).unique().scalars())
