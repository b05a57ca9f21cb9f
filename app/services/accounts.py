"""Personal accounts as their holders see them: balances from the ledger, the last bill, and
the reading status of every meter, in a fixed number of queries whatever the accounts."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import false, func, select
from sqlalchemy.orm import Session, joinedload

from app.models import (
    ZERO,
    AccountBinding,
    Charge,
    Contract,
    Invoice,
    Meter,
    Payment,
    PaymentMethod,
    PersonalAccount,
    Reading,
)
from app.services import consumption
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


# ---------------------------------------------------------------------------------------------
# Organizations. The one access rule: an organization's user reaches exactly the accounts whose
# contract belongs to the organization; everything below goes through organization_account_ids.

CENTS = Decimal("0.01")


def _money(value) -> Decimal:
    """A grouped sum as Decimal to the kopeck (a driver's float goes through its text)."""
    return Decimal(str(value or 0)).quantize(CENTS)


def organization_account_ids(session: Session, organization_id: int | None):
    """A subquery of the ids of the organization's accounts. No organization means no rows,
    never the residents' contracts (whose organization is NULL)."""
    query = select(PersonalAccount.id).join(Contract, PersonalAccount.contract_id == Contract.id)
    if organization_id is None:
        return query.where(false())
    return query.where(Contract.organization_id == organization_id)


def organization_account(session: Session, organization_id: int | None,
                         account_id: int) -> PersonalAccount | None:
    """The account if it is the organization's, else None (the caller answers 404)."""
    return session.execute(
        select(PersonalAccount)
        .where(PersonalAccount.id == account_id,
               PersonalAccount.id.in_(organization_account_ids(session, organization_id)))
        .options(joinedload(PersonalAccount.premises), joinedload(PersonalAccount.contract))
    ).scalar_one_or_none()


def organization_invoice(session: Session, organization_id: int | None,
                         invoice_id: int) -> Invoice | None:
    """An invoice of one of the organization's accounts, else None (404, like a missing one)."""
    return session.execute(
        select(Invoice)
        .where(Invoice.id == invoice_id,
               Invoice.account_id.in_(organization_account_ids(session, organization_id)))
        .options(joinedload(Invoice.account).joinedload(PersonalAccount.premises))
    ).scalar_one_or_none()


def organization_balances(session: Session,
                          organization_id: int | None) -> dict[int, tuple[Decimal, Decimal]]:
    """Charged and paid (succeeded payments) per account of the organization, in one
    statement: the ledger grouped by account, joined to the accounts."""
    ids = organization_account_ids(session, organization_id)
    charged = (select(Charge.account_id, func.sum(Charge.amount).label("total"))
               .where(Charge.account_id.in_(ids)).group_by(Charge.account_id).subquery())
    paid = (select(Payment.account_id, func.sum(Payment.amount).label("total"))
            .where(Payment.account_id.in_(ids), Payment.status == "succeeded")
            .group_by(Payment.account_id).subquery())
    rows = session.execute(
        select(PersonalAccount.id, charged.c.total, paid.c.total)
        .outerjoin(charged, charged.c.account_id == PersonalAccount.id)
        .outerjoin(paid, paid.c.account_id == PersonalAccount.id)
        .where(PersonalAccount.id.in_(ids))
    ).all()
    return {account_id: (_money(c), _money(p)) for account_id, c, p in rows}


@dataclass(frozen=True)
class ContractSummary:
    """A contract and its accounts. Its totals are the sums of its accounts' own, so the
    figures on the page always add up."""

    contract: Contract
    accounts: list[AccountSummary]

    @property
    def charged(self) -> Decimal:
        return sum((a.charged for a in self.accounts), ZERO)

    @property
    def paid(self) -> Decimal:
        return sum((a.paid for a in self.accounts), ZERO)

    @property
    def balance(self) -> Decimal:
        """Positive: the organization owes on this contract; negative: an overpayment."""
        return sum((a.balance for a in self.accounts), ZERO)


@dataclass(frozen=True)
class OrganizationOverview:
    contracts: list[ContractSummary]

    @property
    def balance(self) -> Decimal:
        return sum((c.balance for c in self.contracts), ZERO)

    @property
    def accounts(self) -> int:
        return sum(len(c.accounts) for c in self.contracts)


def meter_statuses(session: Session, account_ids: list[int], today: dt.date,
                   window: Window) -> dict[int, list[MeterStatus]]:
    """The reading status this month of every active meter of the accounts: two queries."""
    if not account_ids:
        return {}
    meters = list(session.execute(
        select(Meter).where(Meter.account_id.in_(account_ids), Meter.active.is_(True))
        .order_by(Meter.serial)).scalars())
    submitted = set(session.execute(
        select(Reading.meter_id).where(Reading.meter_id.in_([m.id for m in meters]),
                                       Reading.period == today.replace(day=1),
                                       Reading.status != "rejected")
    ).scalars()) if meters else set()
    by_account: dict[int, list[MeterStatus]] = {}
    for meter in meters:
        by_account.setdefault(meter.account_id, []).append(MeterStatus(
            meter.id, meter.serial, meter.zones,
            meter_status(meter.id in submitted, today, window)))
    return by_account


def organization_overview(session: Session, organization_id: int | None, today: dt.date,
                          window: Window) -> OrganizationOverview:
    """The organization's contracts, each account with its balance and meters' reading
    status: four queries whatever the number of contracts and accounts."""
    contracts = organization_contracts(session, organization_id)
    totals = organization_balances(session, organization_id)
    meters = meter_statuses(session, [a.id for c in contracts for a in c.accounts], today,
                            window)
    return OrganizationOverview([
        ContractSummary(contract, [
            AccountSummary(a.id, a.number, a.premises.address,
                           *totals.get(a.id, (ZERO, ZERO)), meters=meters.get(a.id, []))
            for a in sorted(contract.accounts, key=lambda a: a.number)
        ])
        for contract in contracts
    ])


@dataclass(frozen=True)
class MonthStatement:
    """One month of an account: energy and money charged, and the bill issued for it."""

    period: dt.date
    kwh: Decimal
    charged: Decimal
    invoice: Invoice | None


def account_months(session: Session, account: PersonalAccount, today: dt.date,
                   months: int = consumption.MONTHS) -> list[MonthStatement]:
    """Charges per month (app.services.consumption) beside that month's invoice, newest
    first, over the last ``months`` months: three queries."""
    data = consumption.monthly(session, account, today, months)
    first, last = consumption.window(today, months)
    invoices = {i.period: i for i in session.execute(
        select(Invoice).where(Invoice.account_id == account.id,
                              Invoice.period.between(first, last))).scalars()}
    charged = {r.period: r for r in data.rows}
    return [
        MonthStatement(period, charged[period].total_kwh if period in charged else
                       consumption.NO_KWH,
                       charged[period].amount if period in charged else ZERO,
                       invoices.get(period))
        for period in sorted(set(charged) | set(invoices), reverse=True)
    ]


@dataclass(frozen=True)
class PaymentRow:
    at: dt.datetime
    contract: str
    account: str
    method: str
    amount: Decimal


def organization_payments(session: Session, organization_id: int | None, date_from: dt.date,
                          date_to: dt.date, tz: str) -> list[PaymentRow]:
    """Succeeded payments to the organization's accounts dated (local time) from
    ``date_from`` to ``date_to`` inclusive, newest first: one query."""
    zone = ZoneInfo(tz)
    start, end = (dt.datetime.combine(d, dt.time(), zone).astimezone(dt.timezone.utc)
                  for d in (date_from, date_to + dt.timedelta(days=1)))
    paid_at = func.coalesce(Payment.paid_at, Payment.created_at)
    rows = session.execute(
        select(paid_at.label("at"), Contract.number, PersonalAccount.number, Payment.method,
               Payment.amount)
        .join(PersonalAccount, Payment.account_id == PersonalAccount.id)
        .join(Contract, PersonalAccount.contract_id == Contract.id)
        .where(Payment.account_id.in_(organization_account_ids(session, organization_id)),
               Payment.status == "succeeded", paid_at >= start, paid_at < end)
        .order_by(paid_at.desc(), Payment.id.desc())
    ).all()
    return [PaymentRow(at, contract, account, PaymentMethod.label(method), amount)
            for at, contract, account, method, amount in rows]
