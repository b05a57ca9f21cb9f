"""Reconciliation acts (акт сверки взаимных расчётов) of a supply contract for a period.

An organization requests an act for one of its contracts; finance marks it ready (or rejects
it with a reason) and the act is generated from the ledger whenever it is downloaded, by an
exporter plugin (hook ``register_act_exporters``: .xlsx and PDF are built in). An act of more
than ACT_INLINE_ROWS_MAX rows is written by a background job instead (app.services.act_jobs).
Finance also exports the acts of every organization of a branch as one .zip
(app.services.act_exports).

The ledger of a contract is the charges and the succeeded payments of every personal account
whose ``contract_id`` is the contract (a refunded payment is no longer a payment: it leaves
the act, as it leaves every balance of the portal).

- Debit documents are the month's invoices: «Счёт № N от dd.mm.yyyy» dated by the last day of
  the billed month (the day the sale is recognized, as on the month's УПД), whatever the day
  it was printed, so that an act for a quarter holds exactly that quarter's months. The amount
  is the sum of the month's charges: when charges were corrected after the invoice, the
  difference is a row of its own («Корректировка начислений»); charges not yet invoiced are a
  row «Начисление за <месяц>». A negative amount goes to the credit column.
- Credit documents are payments: «Оплата (п/п) от dd.mm.yyyy», dated by the local day paid.
- Opening balance: every document dated before ``date_from``; closing = opening + debit -
  credit. Positive: the organization owes the supplier.

Everything is set-based: a fixed number of queries for one act or for a batch of contracts.
Money is Decimal, quantized to kopecks.
"""
from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import (
    ZERO,
    ActStatus,
    Charge,
    Contract,
    Invoice,
    Payment,
    PersonalAccount,
    ReconciliationAct,
    utcnow,
)
from app.services import audit, dispatch, periods
from app.services import offers as offers_by_name
from app.services.ledger import contract_balances, credited, paid_on
from app.services.periods import DEFAULT_TZ, add_months
from app.services.russian import amount_in_words, money, month_name
from app.services.supplier import requisites

if TYPE_CHECKING:
    from app.plugins.interfaces import ActExporter

#: The longest period of an act.
MAX_YEARS = 3
#: Requests of one organization waiting for finance at a time.
MAX_OPEN_REQUESTS = 20
#: The longest reason of a rejection.
MAX_NOTE = 500
KOPECK = Decimal("0.01")


class ActError(ValueError):
    """A request or a decision the rules refuse; the message says why, in Russian."""


class ActNotFound(ActError):
    """The contract or act is not the organization's (or does not exist): views answer 404."""


class ExporterConfigError(RuntimeError):
    """Two plugins offer the same act format: the portal refuses to start."""


# ---------------------------------------------------------------------------------------------
# What an act says


@dataclass(frozen=True, slots=True)
class ActRow:
    """One document of the supplier's half: debit (the customer owes more) or credit."""

    date: dt.date
    document: str
    debit: Decimal | None = None
    credit: Decimal | None = None


@dataclass
class ActData:
    """Everything an exporter writes. ``rows`` may be any iterable (a generator for a huge
    act): exporters read it once, in order, and take the turnovers from the totals here."""

    supplier: Mapping[str, str]
    customer: str
    customer_inn: str
    customer_kpp: str | None
    customer_signer: str | None
    contract_number: str
    contract_date: dt.date
    date_from: dt.date
    date_to: dt.date
    opening: Decimal
    rows: Iterable[ActRow]
    debit_total: Decimal
    credit_total: Decimal
    act_id: int | None = None

    @property
    def closing(self) -> Decimal:
        return self.opening + self.debit_total - self.credit_total

    @staticmethod
    def split(balance: Decimal) -> tuple[Decimal | None, Decimal | None]:
        """A balance as (debit, credit): the customer owes -> debit, an overpayment -> credit."""
        if balance > 0:
            return balance, None
        if balance < 0:
            return None, -balance
        return ZERO, None

    @property
    def heading(self) -> str:
        return "Акт сверки взаимных расчётов"

    @property
    def period_line(self) -> str:
        return f"за период с {self.date_from:%d.%m.%Y} по {self.date_to:%d.%m.%Y}"

    @property
    def parties_line(self) -> str:
        return f"между {self.supplier['name']} и {self.customer}"

    @property
    def contract_line(self) -> str:
        return f"по договору № {self.contract_number} от {self.contract_date:%d.%m.%Y}"

    @property
    def title(self) -> str:
        """The title as one sentence (the document's metadata, the page's heading)."""
        return (f"{self.heading} {self.period_line} {self.parties_line} "
                f"{self.contract_line}")

    @property
    def preamble(self) -> str:
        return (f"Мы, нижеподписавшиеся, {self.supplier['name']}, с одной стороны, и "
                f"{self.customer}, с другой стороны, составили настоящий акт сверки в том, что "
                f"состояние взаимных расчётов по данным учёта следующее:")

    @property
    def supplier_side(self) -> str:
        return f"По данным {self.supplier['name']}, руб."

    @property
    def customer_side(self) -> str:
        return f"По данным {self.customer}, руб."

    @property
    def conclusion(self) -> str:
        """«… задолженность в пользу X составляет N руб. (words)», or that there is none."""
        head = f"По данным {self.supplier['name']} на {self.date_to:%d.%m.%Y}"
        closing = self.closing
        if closing == 0:
            return f"{head} задолженность отсутствует."
        creditor = self.supplier["name"] if closing > 0 else self.customer
        amount = abs(closing)
        return (f"{head} задолженность в пользу {creditor} составляет {money(amount)} руб. "
                f"({amount_in_words(amount)}).")

    @property
    def stem(self) -> str:
        """The file name without extension: ASCII-safe contract number and the period."""
        return stem(self.contract_number, self.date_from, self.date_to)

    @property
    def ascii_stem(self) -> str:
        number = re.sub(r"[^0-9A-Za-z_-]+", "_", self.contract_number).strip("_") or "contract"
        return f"act_{number}_{self.date_from:%Y-%m-%d}_{self.date_to:%Y-%m-%d}"


def stem(contract_number: str, date_from: dt.date, date_to: dt.date) -> str:
    """An act's file name without extension: the contract number made file-safe, the period."""
    number = re.sub(r"[^0-9A-Za-zА-Яа-яЁё_-]+", "_", contract_number).strip("_")
    return f"Акт_сверки_{number}_{date_from:%Y-%m-%d}_{date_to:%Y-%m-%d}"


# ---------------------------------------------------------------------------------------------
# Input


def parse_date(value: dt.date | str | None, what: str) -> dt.date:
    """A date given as a date, ``YYYY-MM-DD`` or ``DD.MM.YYYY``; ``what`` names it in the
    message («начала периода»)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raw = (value or "").strip()
    if not raw:
        raise ActError(f"Укажите дату {what}.")
    for pattern in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(raw, pattern).date()
        except ValueError:
            continue
    raise ActError(f"Дата {what} указывается в виде ДД.ММ.ГГГГ.")


def _years_later(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def check_period(date_from: dt.date | str | None, date_to: dt.date | str | None,
                 today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The act's dates (inclusive), checked: in order, not in the future, at most
    MAX_YEARS long. The same rule for the cabinet, the API, the back office and the batch."""
    start = parse_date(date_from, "начала периода")
    end = parse_date(date_to, "окончания периода")
    today = today or periods.local_today(_config())
    if start > end:
        raise ActError("Дата начала периода не может быть позже даты его окончания.")
    if end > today:
        raise ActError("Акт сверки составляется по уже прошедшие дни: дата окончания периода "
                       f"не может быть позже {today:%d.%m.%Y}.")
    if end >= _years_later(start, MAX_YEARS):
        raise ActError(f"Акт сверки составляется не более чем за {MAX_YEARS} года.")
    return start, end


def _config(config: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return config if config is not None else current_app.config


def _id(value: int | str | None) -> int | None:
    """A row id as typed in a form or a JSON body; None when it is not one."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**31 else None


# ---------------------------------------------------------------------------------------------
# Requests and decisions


def request_act(session: Session, user, contract_id: int | str, date_from: dt.date | str,
                date_to: dt.date | str, today: dt.date | None = None) -> ReconciliationAct:
    """An organization's user asks for the act of one of its contracts.

    Raises ActNotFound when the contract is not the user's organization's (callers answer 404,
    the same as for a missing one), ActError for bad dates or too many open requests (the
    message is for the user). Commits, and journals ``act.requested``."""
    organization_id = getattr(user, "organization_id", None)
    key = _id(contract_id)
    contract = session.get(Contract, key) if key is not None else None
    if contract is None or organization_id is None or contract.organization_id != organization_id:
        raise ActNotFound("Договор не найден.")
    start, end = check_period(date_from, date_to, today)
    same = session.execute(
        select(ReconciliationAct.status).where(
            ReconciliationAct.contract_id == contract.id, ReconciliationAct.date_from == start,
            ReconciliationAct.date_to == end, ReconciliationAct.status != "rejected")
    ).scalars().first()
    if same == "requested":
        raise ActError(f"Акт сверки по договору № {contract.number} за этот период уже "
                       "запрошен: он появится в списке, когда будет сформирован.")
    if same == "ready":
        raise ActError(f"Акт сверки по договору № {contract.number} за этот период уже "
                       "сформирован: скачайте его в списке.")
    open_requests = session.scalar(
        select(func.count(ReconciliationAct.id)).where(
            ReconciliationAct.organization_id == organization_id,
            ReconciliationAct.status == "requested"))
    if open_requests >= MAX_OPEN_REQUESTS:
        raise ActError(f"У организации уже {open_requests} запросов в работе: дождитесь их "
                       "формирования.")
    act = ReconciliationAct(organization_id=organization_id, contract_id=contract.id,
                            date_from=start, date_to=end, status="requested",
                            requested_by_id=user.id)
    session.add(act)
    session.commit()
    audit.record(session, "act.requested", actor_id=user.id, object_type="act",
                 object_id=act.id, details={"contract": contract.number,
                                            "from": start.isoformat(), "to": end.isoformat()})
    return act


def decide(session: Session, act: ReconciliationAct, user_id: int | None, status: str,
           note: str | None = None) -> ReconciliationAct:
    """Finance marks a requested act ready, or rejects it with a reason the organization will
    read. Only a requested act is decided; a ready act can still be rejected (a mistake)."""
    if status not in ("ready", "rejected"):
        raise ActError("Неизвестное решение по акту сверки.")
    note = (note or "").strip()
    if status == "rejected" and not note:
        raise ActError("Укажите причину отказа: организация увидит её в личном кабинете.")
    if len(note) > MAX_NOTE:
        raise ActError(f"Причина отказа — не длиннее {MAX_NOTE} символов.")
    allowed = {"ready": {"requested"}, "rejected": {"requested", "ready"}}[status]
    if act.status not in allowed:
        raise ActError(f"Акт сверки № {act.id} уже {ActStatus.label(act.status).lower()}.")
    now = utcnow()
    act.status, act.decided_by_id, act.decided_at = status, user_id, now
    act.note = note or None
    if status == "ready":
        act.ready_at = now
    session.commit()
    audit.record(session, f"act.{status}", actor_id=user_id, object_type="act",
                 object_id=act.id, details={"note": note} if note else None)
    if status == "ready":
        dispatch.fire("act_ready", event={
            "act_id": act.id, "organization_id": act.organization_id,
            "contract_id": act.contract_id, "requested_by_id": act.requested_by_id,
            "date_from": act.date_from.isoformat(), "date_to": act.date_to.isoformat()})
    return act


# ---------------------------------------------------------------------------------------------
# The ledger


@dataclass
class Ledger:
    """One contract's opening balance and documents of the period."""

    opening: Decimal = ZERO
    rows: list[ActRow] = field(default_factory=list)

    @property
    def debit_total(self) -> Decimal:
        return sum((r.debit for r in self.rows if r.debit is not None), ZERO)

    @property
    def credit_total(self) -> Decimal:
        return sum((r.credit for r in self.rows if r.credit is not None), ZERO)


def period_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.date, dt.date]:
    """Billing periods dated (by their last day) within the act: ``first <= period < end``."""
    return date_from.replace(day=1), add_months(date_to + dt.timedelta(days=1), 0)


def _utc(day: dt.date, tz: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), ZoneInfo(tz)).astimezone(dt.timezone.utc)


def _local_date(value: dt.datetime, tz: str) -> dt.date:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(ZoneInfo(tz)).date()


def _last_day(period: dt.date) -> dt.date:
    return add_months(period, 1) - dt.timedelta(days=1)


def _signed(day: dt.date, document: str, amount: Decimal) -> ActRow:
    amount = Decimal(amount).quantize(KOPECK)
    if amount < 0:
        return ActRow(day, document, None, -amount)
    return ActRow(day, document, amount, None)


def _sort_key(row: ActRow) -> tuple:
    return (row.date, row.debit is None, row.document)


def ledgers(session: Session, contract_ids: Sequence[int], date_from: dt.date,
            date_to: dt.date, tz: str = DEFAULT_TZ) -> dict[int, Ledger]:
    """The ledgers of several contracts for one period, in five queries whatever their size
    (accounts, opening balances, the period's charges, invoices and payments)."""
    ids = list(contract_ids)
    result = {cid: Ledger() for cid in ids}
    if not ids:
        return result
    first, end = period_bounds(date_from, date_to)
    start_utc, end_utc = _utc(date_from, tz), _utc(date_to + dt.timedelta(days=1), tz)
    account = PersonalAccount
    of_contracts = account.contract_id.in_(ids)
    paid_at = paid_on()

    numbers, contract_of = {}, {}
    for account_id, cid, number in session.execute(
            select(account.id, account.contract_id, account.number).where(of_contracts)):
        numbers[account_id], contract_of[account_id] = number, cid

    openings = contract_balances(session, ids, date_from - dt.timedelta(days=1), tz)
    for cid, opening in openings.items():
        result[cid].opening = opening.quantize(KOPECK)

    charged = {(a, p): Decimal(s or 0).quantize(KOPECK) for a, p, s in session.execute(
        select(Charge.account_id, Charge.period, func.sum(Charge.amount))
        .join(account, account.id == Charge.account_id)
        .where(of_contracts, Charge.period >= first, Charge.period < end)
        .group_by(Charge.account_id, Charge.period))}
    invoices = {(a, p): (n, Decimal(c or 0).quantize(KOPECK)) for a, p, n, c in session.execute(
        select(Invoice.account_id, Invoice.period, Invoice.number, Invoice.charged)
        .join(account, account.id == Invoice.account_id)
        .where(of_contracts, Invoice.period >= first, Invoice.period < end))}
    for key in sorted(charged.keys() | invoices.keys()):
        account_id, period = key
        day, amount = _last_day(period), charged.get(key, ZERO)
        rows = result[contract_of[account_id]].rows
        where = f"л/с {numbers[account_id]}"
        if key in invoices:
            number, invoiced = invoices[key]
            if invoiced:
                rows.append(_signed(day, f"Счёт № {number} от {day:%d.%m.%Y}", invoiced))
            if amount != invoiced:
                rows.append(_signed(day, f"Корректировка начислений за {month_name(period)} "
                                         f"({where})", amount - invoiced))
        elif amount:
            rows.append(_signed(day, f"Начисление за {month_name(period)} ({where})", amount))

    for account_id, amount, at in session.execute(
            select(Payment.account_id, Payment.amount, paid_at)
            .join(account, account.id == Payment.account_id)
            .where(of_contracts, credited(), paid_at >= start_utc, paid_at < end_utc)
            .order_by(paid_at, Payment.id)):  # a day's payments in a fixed order, as streamed
        day = _local_date(at, tz)
        result[contract_of[account_id]].rows.append(
            ActRow(day, f"Оплата (п/п) от {day:%d.%m.%Y}", None,
                   Decimal(amount).quantize(KOPECK)))
    for ledger in result.values():
        ledger.rows.sort(key=_sort_key)
    return result


def contract_act_data(session: Session, contract: Contract, date_from: dt.date,
                      date_to: dt.date, config: Mapping[str, Any] | None = None,
                      ledger: Ledger | None = None, act_id: int | None = None) -> ActData:
    """The act of a contract for a period (no request needed: the batch export uses it).
    ``ledger`` may also be act_jobs.StreamedLedger: its rows are then read once, by the
    exporter."""
    config = _config(config)
    if ledger is None:
        tz = config.get("BABEL_DEFAULT_TIMEZONE", DEFAULT_TZ)
        ledger = ledgers(session, [contract.id], date_from, date_to, tz)[contract.id]
    organization = contract.organization
    return ActData(
        supplier=requisites(config),
        customer=organization.name if organization else (contract.person_name or ""),
        customer_inn=organization.inn if organization else "",
        customer_kpp=organization.kpp if organization else None,
        customer_signer=organization.director if organization else contract.person_name,
        contract_number=contract.number, contract_date=contract.signed_on,
        date_from=date_from, date_to=date_to, opening=ledger.opening, rows=ledger.rows,
        debit_total=ledger.debit_total, credit_total=ledger.credit_total, act_id=act_id)


def act_data(session: Session, act: ReconciliationAct,
             config: Mapping[str, Any] | None = None) -> ActData:
    """The requested act, read from the ledger now (five queries)."""
    return contract_act_data(session, act.contract, act.date_from, act.date_to, config,
                             act_id=act.id)


# ---------------------------------------------------------------------------------------------
# Exporters (plugins) and rendering


def collect_exporters(offers: Iterable[Iterable[ActExporter] | None]) -> dict[str, ActExporter]:
    """Exporters by format; a format offered twice is refused (only one could ever be used)."""
    return offers_by_name.collect(offers, "reconciliation act format", ExporterConfigError,
                                  key="format")


def exporters(app: Flask | None = None) -> dict[str, ActExporter]:
    """The act exporters the loaded plugins offer, by format ("xlsx", "pdf", ...)."""
    app = app or current_app
    return collect_exporters(app.extensions["plugins"].hook.register_act_exporters())


def init_app(app: Flask) -> None:
    """Check the exporters at start-up: a format offered twice stops the portal here."""
    exporters(app)


def formats(app: Flask | None = None) -> list[str]:
    """The formats offered, xlsx and pdf first."""
    order = {"xlsx": 0, "pdf": 1}
    return sorted(exporters(app), key=lambda f: (order.get(f, 2), f))


def export(data: ActData, fmt: str, stream: IO[bytes], app: Flask | None = None) -> ActExporter:
    registry = exporters(app)
    if fmt not in registry:
        raise ActError(f"Формат «{fmt}» не поддерживается: доступны "
                       f"{', '.join(sorted(registry)) or 'никакие'}.")
    exporter = registry[fmt]
    exporter.export(data, stream)
    return exporter


def render(session: Session, act: ReconciliationAct, fmt: str,
           config: Mapping[str, Any] | None = None) -> tuple[IO[bytes], str, str]:
    """The act as a file: (a binary stream at its start, mimetype, Russian file name).

    The stream is a spooled temporary file (in memory up to 8 MB), ready for ``send_file``.
    Raises ActError for a format no plugin offers. Does not check who asks: callers do."""
    data = act_data(session, act, config)
    stream = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    exporter = export(data, fmt, stream)
    stream.seek(0)
    return stream, exporter.mimetype, f"{data.stem}.{exporter.extension}"


def ascii_filename(act: ReconciliationAct, fmt: str) -> str:
    """A fallback file name for clients that cannot read the Russian one."""
    return f"act_{act.id}_{act.date_from:%Y-%m-%d}_{act.date_to:%Y-%m-%d}.{fmt}"
