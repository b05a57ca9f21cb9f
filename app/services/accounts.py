"""Personal accounts as their holders see them: balances from the ledger, the last bill, and
the reading status of every meter, in a fixed number of queries whatever the accounts."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache

from sqlalchemy import Select, bindparam, false, func, select
from sqlalchemy.orm import Session, aliased, joinedload

from app.models import (
    ZERO,
    AccountBinding,
    Contract,
    Invoice,
    Meter,
    Payment,
    PaymentMethod,
    PersonalAccount,
    Premises,
    Reading,
)
from app.services import consumption, ledger
from app.services.forecast import HISTORY, Forecast, for_accounts
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
    verification_due: dt.date | None = None

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


# The cabinet's statements are built once, with bound parameters: building one (a few
# correlated subqueries) costs more CPU than PostgreSQL spends running it.


def summary_columns() -> list:
    """An account's address, charged, paid and balance as labelled columns of a statement
    over PersonalAccount: the API reads its accounts with their balances in one statement."""
    charged, paid = (func.coalesce(total, ZERO) for total in ledger.account_totals())
    address = (select(Premises.address).where(Premises.id == PersonalAccount.premises_id)
               .correlate(PersonalAccount).scalar_subquery())
    return [address.label("address"), charged.label("charged"), paid.label("paid"),
            (charged - paid).label("balance")]


def _with_balances(*columns) -> Select:
    """Accounts with their premises and ledger totals, and any extra entities or columns,
    ordered by number."""
    return (select(PersonalAccount, *ledger.account_totals(), *columns)
            .options(joinedload(PersonalAccount.premises)).order_by(PersonalAccount.number))


# ---------------------------------------------------------------------------------------------
# Residents. The one access rule: a resident reaches the accounts bound to them that are open to
# residents; an account on an organization's contract is the organization's (its cabinet is
# /business/), whoever once bound it. Everything a resident reads goes through resident_account_ids.


def _organization_contract(*columns) -> Select:
    """The organization's contract an account of the enclosing statement is on (no row for a
    household's account, nor for one on a contract with a person)."""
    return (select(*columns)
            .where(Contract.id == PersonalAccount.contract_id,
                   Contract.organization_id.is_not(None))
            .correlate_except(Contract))


def open_to_residents():
    """A condition on PersonalAccount: the account may show in a residents' cabinet, being
    nobody's but a household's (no contract with an organization)."""
    return ~_organization_contract(Contract.id).exists()


def organization_contract_number():
    """The number of the organization's contract an account is on, else NULL: a column of a
    statement over PersonalAccount, for the binding's refusal to name it."""
    return _organization_contract(Contract.number).scalar_subquery()


def resident_account_ids(user_id) -> Select:
    """A subquery of the ids of the accounts a resident may see: bound to them (``user_id``,
    a value or a bound parameter) and open to residents."""
    return (select(AccountBinding.account_id)
            .join(PersonalAccount, PersonalAccount.id == AccountBinding.account_id)
            .where(AccountBinding.user_id == user_id, open_to_residents()))


def _bound_to_user():
    """The ids of the accounts the user of the ``user_id`` parameter may see."""
    return resident_account_ids(bindparam("user_id"))


@cache
def _balances_of_ids() -> Select:
    return _with_balances().where(PersonalAccount.id.in_(bindparam("ids", expanding=True)))


@cache
def _balances_of_user() -> Select:
    return _with_balances().where(PersonalAccount.id.in_(_bound_to_user()))


@cache
def _overview_of_user() -> Select:
    """The user's accounts with balances and each one's last bill (or None)."""
    latest = aliased(Invoice)
    last_period = (select(func.max(latest.period)).where(latest.account_id == PersonalAccount.id)
                   .correlate(PersonalAccount).scalar_subquery())
    return (_with_balances(Invoice)
            .outerjoin(Invoice, (Invoice.account_id == PersonalAccount.id)
                       & (Invoice.period == last_period))
            .where(PersonalAccount.id.in_(_bound_to_user())))


def _active_meters(accounts) -> Select:
    """The active meters of ``accounts`` (a subquery of ids, or an expanding ``ids``
    parameter), each with whether a reading for the ``period`` parameter is in (and not
    rejected)."""
    submitted = (select(Reading.id)
                 .where(Reading.meter_id == Meter.id, Reading.period == bindparam("period"),
                        Reading.status != "rejected")
                 .correlate(Meter).exists())
    return (select(Meter, submitted)
            .where(Meter.account_id.in_(accounts), Meter.active.is_(True))
            .order_by(Meter.serial))


@cache
def _meters_of_user() -> Select:
    """The user's active meters with their status, each with its last forecast.HISTORY
    accepted readings up to ``period`` (newest first; one row of None without any): the
    meters and the forecast's readings in one statement."""
    meters = select(Meter.id).where(Meter.account_id.in_(_bound_to_user()),
                                    Meter.active.is_(True))
    ranked = (select(Reading.id, Reading.meter_id,
                     func.row_number().over(partition_by=Reading.meter_id,
                                            order_by=(Reading.period.desc(), Reading.id.desc()))
                     .label("rank"))
              .where(Reading.meter_id.in_(meters), Reading.status == "accepted",
                     Reading.period <= bindparam("period"))
              .subquery())
    return (_active_meters(_bound_to_user()).add_columns(Reading)
            .outerjoin(ranked, (ranked.c.meter_id == Meter.id) & (ranked.c.rank <= HISTORY))
            .outerjoin(Reading, Reading.id == ranked.c.id)
            .order_by(ranked.c.rank))


@cache
def _meters_of_ids() -> Select:
    return _active_meters(bindparam("ids", expanding=True))


def _summary(account: PersonalAccount, charged, paid, **extra) -> AccountSummary:
    return AccountSummary(account.id, account.number, account.premises.address,
                          charged or ZERO, paid or ZERO, **extra)


def summarize(session: Session, account_ids: list[int]) -> list[AccountSummary]:
    """The accounts of ``account_ids`` with their balances: one query."""
    if not account_ids:
        return []
    return [_summary(a, charged, paid) for a, charged, paid in
            session.execute(_balances_of_ids(), {"ids": list(account_ids)})]


def bound_account_ids(session: Session, user_id: int):
    """A subquery of the ids of the accounts bound to a user and open to residents: the rows a
    resident may see."""
    return resident_account_ids(user_id)


def bound_account(session: Session, user_id: int, account_id: int) -> PersonalAccount | None:
    """The account if the user has bound it, else None (the caller answers 404)."""
    return session.execute(
        select(PersonalAccount)
        .where(PersonalAccount.id == account_id,
               PersonalAccount.id.in_(bound_account_ids(session, user_id)))
        .options(joinedload(PersonalAccount.premises))
    ).scalar_one_or_none()


def bound_account_summaries(session: Session, user_id: int) -> list[AccountSummary]:
    """The accounts bound to a user, with balances only: one query."""
    return [_summary(a, charged, paid) for a, charged, paid in
            session.execute(_balances_of_user(), {"user_id": user_id})]


def meter_status(submitted: bool, today: dt.date, window: Window) -> str:
    if submitted:
        return "submitted"
    if today.day < window.first_day:
        return "not_yet"
    return "expected" if today.day <= window.last_day else "overdue"


def _statuses(meters: list[tuple[Meter, bool]], today: dt.date,
              window: Window) -> dict[int, list[MeterStatus]]:
    by_account: dict[int, list[MeterStatus]] = {}
    for meter, submitted in meters:
        by_account.setdefault(meter.account_id, []).append(MeterStatus(
            meter.id, meter.serial, meter.zones, meter_status(submitted, today, window),
            meter.verification_due))
    return by_account


def cabinet_overview(session: Session, user_id: int, today: dt.date,
                     window: Window) -> list[AccountSummary]:
    """The main page: every bound account with its balance, its last bill and the reading
    status of each active meter this month, and the month's forecast. Three queries whatever
    the number of accounts: accounts with balances and last bills; meters with their status
    and recent readings; the tariffs."""
    rows = session.execute(_overview_of_user(), {"user_id": user_id}).all()
    if not rows:
        return []
    meters: list[tuple[Meter, bool]] = []
    readings: dict[int, list[Reading]] = {}
    for meter, submitted, reading in session.execute(
            _meters_of_user(), {"user_id": user_id, "period": today.replace(day=1)}):
        if meter.id not in readings:
            meters.append((meter, submitted))
            readings[meter.id] = []
        if reading is not None:
            readings[meter.id].append(reading)
    forecasts = for_accounts(session, [row[0] for row in rows], [m for m, _ in meters], today,
                             readings)
    by_account = _statuses(meters, today, window)
    return [_summary(a, charged, paid, last_invoice=invoice, meters=by_account.get(a.id, []),
                     forecast=forecasts.get(a.id))
            for a, charged, paid, invoice in rows]


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

def organization_account_ids(session: Session, organization_id: int | None):
    """A subquery of the ids of the organization's accounts. No organization means no rows,
    never the residents' contracts (whose organization is NULL)."""
    query = select(PersonalAccount.id).join(Contract, PersonalAccount.contract_id == Contract.id)
    if organization_id is None:
        return query.where(false())
    return query.where(Contract.organization_id == organization_id)


def organization_contract_ids(session: Session, organization_id: int | None) -> Select:
    """A subquery of the ids of the organization's contracts; no organization means none
    (never the contracts with a person, whose organization is NULL too)."""
    query = select(Contract.id)
    if organization_id is None:
        return query.where(false())
    return query.where(Contract.organization_id == organization_id)


def organization_account(session: Session, organization_id: int | None,
                         account_id: int) -> PersonalAccount | None:
    """The account if it is the organization's, else None (the caller answers 404); with its
    premises, contract and meters, which every page of a point of supply shows."""
    return session.execute(
        select(PersonalAccount)
        .where(PersonalAccount.id == account_id,
               PersonalAccount.id.in_(organization_account_ids(session, organization_id)))
        .options(joinedload(PersonalAccount.premises), joinedload(PersonalAccount.contract),
                 joinedload(PersonalAccount.meters))
    ).unique().scalar_one_or_none()


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
    """Charged and paid per account of the organization, in one statement."""
    return {account_id: (b.charged, b.paid) for account_id, b in ledger.balances(
        session, organization_account_ids(session, organization_id)).items()}


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
    """The reading status this month of every active meter of the accounts: one query."""
    if not account_ids:
        return {}
    meters = session.execute(_meters_of_ids(), {"ids": list(account_ids),
                                                "period": today.replace(day=1)}).tuples()
    return _statuses(list(meters), today, window)


def organization_overview(session: Session, organization_id: int | None, today: dt.date,
                          window: Window) -> OrganizationOverview:
    """The organization's contracts, each account with its balance and meters' reading
    status: three queries whatever the number of contracts and accounts."""
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
    start, end = (ledger.day_start(d, tz) for d in (date_from, date_to + dt.timedelta(days=1)))
    paid_at = ledger.paid_on()
    rows = session.execute(
        select(paid_at.label("at"), Contract.number, PersonalAccount.number, Payment.method,
               Payment.amount)
        .join(PersonalAccount, Payment.account_id == PersonalAccount.id)
        .join(Contract, PersonalAccount.contract_id == Contract.id)
        .where(Payment.account_id.in_(organization_account_ids(session, organization_id)),
               ledger.credited(), paid_at >= start, paid_at < end)
        .order_by(paid_at.desc(), Payment.id.desc())
    ).all()
    return [PaymentRow(at, contract, account, PaymentMethod.label(method), amount)
            for at, contract, account, method, amount in rows]
