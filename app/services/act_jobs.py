"""Large reconciliation acts: built in the background, never inside a request.

An act whose ledger has more document rows than ACT_INLINE_ROWS_MAX (one COUNT query says) is
written by a background job into a file of ACT_EXPORT_DIR, kept as long as the branch exports
(ACT_EXPORT_KEEP_DAYS); the same download link gives that file once the job is done. The job
never holds the ledger in memory: the totals come first from one aggregate query (so the
header and the footer are known), then the rows stream from two server-side cursors (the
charge-side documents and the payments, each ordered by the database) merged in the order of
the small path (``acts.ledgers``), straight into the exporter.

The SQL mirrors ``acts.ledgers`` row for row; amounts travel as whole kopecks so that SQLite's
floating sums round exactly as the small path's Decimals do.
"""
from __future__ import annotations

import datetime as dt
import heapq
import json
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from app.models import (
    BackgroundJob,
    Charge,
    Invoice,
    Payment,
    PersonalAccount,
    ReconciliationAct,
)
from app.services import act_exports, acts, background
from app.services.russian import month_name, number, plural

#: The background job that writes one large act in one format.
JOB_KIND = "acts.document"
#: Rows fetched from a server-side cursor at a time.
STREAM_BATCH = 2000
#: The job's progress is written after this many rows.
PROGRESS_EVERY = 10_000
#: PDF is laid out in memory (about 3.5 KB and 1.5 ms a row): beyond this, Excel only.
PDF_ROWS_MAX = 20_000
DEFAULT_INLINE_ROWS_MAX = 5000
#: Ranks of the charge-side documents on one day, in the order of their first letters
#: («Корректировка» < «Начисление» < «Счёт»): the database sorts by rank, then by number.
CORRECTION, CHARGE, INVOICE = 0, 1, 3


def inline_rows_max(config: Mapping[str, Any] | None = None) -> int:
    config = config if config is not None else current_app.config
    return int(config.get("ACT_INLINE_ROWS_MAX", DEFAULT_INLINE_ROWS_MAX))


def _tz(config: Mapping[str, Any] | None = None) -> str:
    config = config if config is not None else current_app.config
    return config.get("BABEL_DEFAULT_TIMEZONE", acts.DEFAULT_TZ)


# ---------------------------------------------------------------------------------------------
# The ledger in SQL


def _kopecks(amount):
    """An amount as whole kopecks, rounded by the database: exact sums on SQLite too."""
    return cast(func.round(amount * 100), BigInteger)


def _rubles(kopecks: int | None) -> Decimal:
    return Decimal(kopecks or 0).scaleb(-2)


@dataclass(frozen=True)
class LedgerSql:
    """The statements of one contract's ledger for a period."""

    charge_rows: Select  # period, side, rank, key, account_id, kopecks: charge-side documents
    payments: Select  # kopecks, paid_at, id: the period's succeeded payments
    opening_charged: Select
    opening_paid: Select


def ledger_sql(contract_id: int, date_from: dt.date, date_to: dt.date,
               tz: str = acts.DEFAULT_TZ) -> LedgerSql:
    """The same documents as ``acts.ledgers`` for one contract, as SQL."""
    first, end = acts.period_bounds(date_from, date_to)
    start_utc = acts._utc(date_from, tz)
    end_utc = acts._utc(date_to + dt.timedelta(days=1), tz)
    account = PersonalAccount
    paid_at = func.coalesce(Payment.paid_at, Payment.created_at)
    succeeded = Payment.status == "succeeded"
    own = account.contract_id == contract_id

    charged = (select(Charge.account_id.label("account_id"), Charge.period.label("period"),
                      _kopecks(func.sum(Charge.amount)).label("kopecks"))
               .join(account, account.id == Charge.account_id)
               .where(own, Charge.period >= first, Charge.period < end)
               .group_by(Charge.account_id, Charge.period)).subquery("charged")
    invoiced = (select(Invoice.account_id.label("account_id"), Invoice.period.label("period"),
                       Invoice.number.label("number"),
                       _kopecks(Invoice.charged).label("kopecks"))
                .join(account, account.id == Invoice.account_id)
                .where(own, Invoice.period >= first, Invoice.period < end)).subquery("invoiced")
    same = and_(charged.c.account_id == invoiced.c.account_id,
                charged.c.period == invoiced.c.period)
    correction = func.coalesce(charged.c.kopecks, 0) - invoiced.c.kopecks

    def side(amount):
        return case((amount < 0, 1), else_=0)

    invoices = select(invoiced.c.period, side(invoiced.c.kopecks).label("side"),
                      literal(INVOICE, Integer).label("rank"), invoiced.c.number.label("key"),
                      invoiced.c.account_id, invoiced.c.kopecks).where(invoiced.c.kopecks != 0)
    corrections = (select(invoiced.c.period, side(correction), literal(CORRECTION, Integer),
                          account.number, invoiced.c.account_id, correction)
                   .select_from(invoiced.outerjoin(charged, same)
                                .join(account, account.id == invoiced.c.account_id))
                   .where(correction != 0))
    uninvoiced = (select(charged.c.period, side(charged.c.kopecks), literal(CHARGE, Integer),
                         account.number, charged.c.account_id, charged.c.kopecks)
                  .select_from(charged.outerjoin(invoiced, same)
                               .join(account, account.id == charged.c.account_id))
                  .where(invoiced.c.account_id.is_(None), charged.c.kopecks != 0))
    charge_rows = union_all(invoices, corrections, uninvoiced).subquery("charge_rows")

    payments = (select(_kopecks(Payment.amount).label("kopecks"), paid_at.label("paid_at"),
                       Payment.id)
                .join(account, account.id == Payment.account_id)
                .where(own, succeeded, paid_at >= start_utc, paid_at < end_utc))
    opening_charged = (select(_kopecks(func.sum(Charge.amount)))
                       .join(account, account.id == Charge.account_id)
                       .where(own, Charge.period < first))
    opening_paid = (select(_kopecks(func.sum(Payment.amount)))
                    .join(account, account.id == Payment.account_id)
                    .where(own, succeeded, paid_at < start_utc))
    return LedgerSql(select(charge_rows), payments, opening_charged, opening_paid)


def _count(statement: Select):
    return select(func.count()).select_from(statement.subquery()).scalar_subquery()


def count_rows(session: Session, act: ReconciliationAct,
               config: Mapping[str, Any] | None = None) -> int:
    """The act's document rows, counted by the database in one query (nothing is built)."""
    sql = ledger_sql(act.contract_id, act.date_from, act.date_to, _tz(config))
    return session.execute(select(_count(sql.charge_rows) + _count(sql.payments))).scalar_one()


@dataclass
class StreamedLedger:
    """A ledger whose rows are read once, as the exporter writes them (``acts.Ledger``'s
    shape: ``contract_act_data`` takes either)."""

    opening: Decimal
    rows: Iterator[acts.ActRow]
    debit_total: Decimal
    credit_total: Decimal
    count: int


def totals(session: Session, contract_id: int, date_from: dt.date, date_to: dt.date,
           tz: str = acts.DEFAULT_TZ) -> tuple[int, Decimal, Decimal, Decimal]:
    """(rows, opening, debit total, credit total), in one aggregate query that reads each
    part of the ledger once."""
    sql = ledger_sql(contract_id, date_from, date_to, tz)
    rows = sql.charge_rows.subquery()
    amount = rows.c.kopecks
    charges = select(func.count().label("n"),
                     func.coalesce(func.sum(case((amount > 0, amount), else_=0)), 0)
                     .label("debit"),
                     func.coalesce(func.sum(case((amount < 0, -amount), else_=0)), 0)
                     .label("credit")).select_from(rows).subquery()
    paid = sql.payments.subquery()
    payments = select(func.count().label("n"),
                      func.coalesce(func.sum(paid.c.kopecks), 0).label("kopecks")
                      ).select_from(paid).subquery()
    count, charged, paid_before, debit, credit, paid_now = session.execute(
        select(charges.c.n + payments.c.n, sql.opening_charged.scalar_subquery(),
               sql.opening_paid.scalar_subquery(), charges.c.debit, charges.c.credit,
               payments.c.kopecks)
        .select_from(charges.join(payments, true()))).one()
    return (count, _rubles(charged) - _rubles(paid_before), _rubles(debit),
            _rubles(credit) + _rubles(paid_now))


def _binary(column, dialect: str):
    """Text compared by code point, as Python compares the documents."""
    return column.collate("C") if dialect == "postgresql" else column


def stream_rows(session: Session, contract_id: int, date_from: dt.date, date_to: dt.date,
                tz: str = acts.DEFAULT_TZ) -> Iterator[acts.ActRow]:
    """The act's rows in the small path's order, from server-side cursors: memory stays flat
    whatever the number of rows."""
    sql = ledger_sql(contract_id, date_from, date_to, tz)
    dialect = session.get_bind().dialect.name
    documents = sql.charge_rows.selected_columns
    ordered = sql.charge_rows.order_by(documents.period, documents.side, documents.rank,
                                       _binary(documents.key, dialect), documents.account_id)
    paid_at = sql.payments.selected_columns.paid_at
    paid = sql.payments.order_by(paid_at, Payment.id)
    options = {"yield_per": STREAM_BATCH}
    charges = session.execute(ordered, execution_options=options)
    payments = session.execute(paid, execution_options=options)
    try:
        yield from heapq.merge(_charge_documents(charges), _payment_documents(payments, tz),
                               key=acts._sort_key)
    finally:
        charges.close()
        payments.close()


def _charge_documents(result) -> Iterator[acts.ActRow]:
    month_of: dict[dt.date, tuple[dt.date, str]] = {}
    for period, _side, rank, key, _account, kopecks in result:
        if period not in month_of:
            month_of[period] = (acts._last_day(period), month_name(period))
        day, month = month_of[period]
        if rank == INVOICE:
            document = f"Счёт № {key} от {day:%d.%m.%Y}"
        elif rank == CORRECTION:
            document = f"Корректировка начислений за {month} (л/с {key})"
        else:
            document = f"Начисление за {month} (л/с {key})"
        yield acts._signed(day, document, _rubles(kopecks))


def _payment_documents(result, tz: str) -> Iterator[acts.ActRow]:
    for kopecks, at, _id in result:
        day = acts._local_date(at, tz)
        yield acts.ActRow(day, f"Оплата (п/п) от {day:%d.%m.%Y}", None, _rubles(kopecks))


def streamed_ledger(session: Session, contract_id: int, date_from: dt.date, date_to: dt.date,
                    tz: str = acts.DEFAULT_TZ) -> StreamedLedger:
    count, opening, debit, credit = totals(session, contract_id, date_from, date_to, tz)
    return StreamedLedger(opening, stream_rows(session, contract_id, date_from, date_to, tz),
                          debit, credit, count)


# ---------------------------------------------------------------------------------------------
# The job and its file


def _params_prefix(**pairs: int | str) -> str:
    """The start of a job's params as ``json.dumps`` writes them: the job of an act is found
    by it (the keys are always written in this order)."""
    return json.dumps(pairs)[:-1] + ", "


def document_path(token: str, extension: str, config: Mapping[str, Any] | None = None) -> Path:
    """The file of a job, named by the random token the portal gave it: never by input."""
    if not re.fullmatch(r"[0-9a-f]{32}", str(token or "")) or \
            not re.fullmatch(r"[a-z0-9]{1,8}", str(extension or "")):
        raise ValueError("not a document token")
    return act_exports.export_dir(config) / f"act_{token}.{extension}"


def job_file(job: BackgroundJob | None, config: Mapping[str, Any] | None = None,
             app=None) -> Path | None:
    """The finished file of a large act's job, or None (not one, not done, or pruned)."""
    if job is None or job.kind != JOB_KIND or job.status != "done":
        return None
    params = json.loads(job.params or "{}")
    exporter = acts.exporters(app).get(params.get("format"))
    if exporter is None:
        return None
    try:
        path = document_path(params.get("file"), exporter.extension, config)
    except ValueError:
        return None
    return path if path.is_file() else None


def latest_job(session: Session, act: ReconciliationAct, fmt: str) -> BackgroundJob | None:
    """The newest job of the act in this format (of the act's own organization)."""
    prefix = _params_prefix(organization_id=act.organization_id, act_id=act.id, format=fmt)
    return session.execute(
        select(BackgroundJob)
        .where(BackgroundJob.kind == JOB_KIND,
               func.substr(BackgroundJob.params, 1, len(prefix)) == prefix)
        .order_by(BackgroundJob.id.desc()).limit(1)).scalar()


def organization_jobs(session: Session, organization_id: int) -> dict[tuple[int, str],
                                                                     BackgroundJob]:
    """The newest job of each (act, format) of an organization still within the keeping
    time: for the list of its acts, in one query."""
    prefix = _params_prefix(organization_id=organization_id)
    since = background.now() - dt.timedelta(
        days=int(current_app.config.get("ACT_EXPORT_KEEP_DAYS", 7)))
    found: dict[tuple[int, str], BackgroundJob] = {}
    for job in session.execute(
            select(BackgroundJob)
            .where(BackgroundJob.kind == JOB_KIND, BackgroundJob.created_at >= since,
                   func.substr(BackgroundJob.params, 1, len(prefix)) == prefix)
            .order_by(BackgroundJob.id)).scalars():
        params = json.loads(job.params)
        found[(params["act_id"], params["format"])] = job
    return found


def start(session: Session, act: ReconciliationAct, fmt: str, user_id: int | None,
          rows: int) -> BackgroundJob:
    title = (f"Акт сверки № {act.id} ({fmt}): договор № {act.contract.number}, "
             f"{act.date_from:%d.%m.%Y}–{act.date_to:%d.%m.%Y}")[:160]
    return background.start(session, JOB_KIND, title, {
        "organization_id": act.organization_id, "act_id": act.id, "format": fmt,
        "file": secrets.token_hex(16), "rows": rows}, user_id)


@background.handler(JOB_KIND)
def run_document(session: Session, params: dict, progress: background.Progress) -> str:
    """Write the act into the job's file (a temporary file renamed into place at the end, so
    a half-written act is never offered)."""
    app = current_app
    act = session.get(ReconciliationAct, int(params["act_id"]))
    if act is None or act.organization_id != params["organization_id"]:
        raise acts.ActError("Акт сверки не найден.")
    exporter = acts.exporters(app)[params["format"]]
    act_exports.prune_archives(app.config)
    tz = _tz(app.config)
    ledger = streamed_ledger(session, act.contract_id, act.date_from, act.date_to, tz)
    ledger.rows = _counted(ledger.rows, ledger.count, progress)
    data = acts.contract_act_data(session, act.contract, act.date_from, act.date_to,
                                  app.config, ledger=ledger, act_id=act.id)
    target = document_path(params["file"], exporter.extension, app.config)
    partial = target.with_suffix(".part")
    try:
        with partial.open("wb") as stream:
            exporter.export(data, stream)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return (f"Готово: акт сверки № {act.id}, {number(ledger.count, 0)} "
            f"{plural(ledger.count, 'строка', 'строки', 'строк')}.")


def _counted(rows: Iterator[acts.ActRow], total: int,
             progress: background.Progress) -> Iterator[acts.ActRow]:
    progress(0, total)
    done = 0
    for done, row in enumerate(rows, start=1):
        if done % PROGRESS_EVERY == 0:
            progress(done, total)
        yield row
    progress(done, total)


# ---------------------------------------------------------------------------------------------
# What a download of an act does


@dataclass
class Prepared:
    """A large act asked for: its job, and the finished file when there is one."""

    job: BackgroundJob
    path: Path | None
    message: str


def prepare(session: Session, act: ReconciliationAct, fmt: str, user_id: int | None,
            config: Mapping[str, Any] | None = None) -> Prepared | None:
    """None for an act small enough to build now; else its finished file, or the job that
    builds it (started now unless one is under way). Raises ActError for a PDF too large to
    lay out."""
    job = latest_job(session, act, fmt)
    path = job_file(job, config)
    if path is not None:
        return Prepared(job, path, "")
    if job is not None and job.status in ("queued", "running"):
        return Prepared(job, None, f"Акт сверки № {act.id} ещё готовится ({job.percent} %). "
                                   "Когда он будет готов, скачайте его по той же ссылке.")
    rows = count_rows(session, act, config)
    if rows <= inline_rows_max(config):
        return None
    if fmt == "pdf" and rows > PDF_ROWS_MAX:
        raise acts.ActError(
            f"Акт сверки № {act.id} слишком большой для PDF ({number(rows, 0)} "
            f"{plural(rows, 'строка', 'строки', 'строк')}): скачайте его в Excel (.xlsx).")
    job = start(session, act, fmt, user_id, rows)
    if job.status == "failed":
        return Prepared(job, None, f"Акт сверки № {act.id} не удалось подготовить. "
                                   "Попробуйте ещё раз позже или обратитесь в филиал.")
    return Prepared(job, job_file(job, config),
                    f"Акт сверки № {act.id} большой ({number(rows, 0)} "
                    f"{plural(rows, 'строка', 'строки', 'строк')}) — он готовится. Когда он "
                    "будет готов, скачайте его по той же ссылке на этой странице.")
