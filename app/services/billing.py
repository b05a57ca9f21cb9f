"""The monthly billing run: charges for every account of a period, then one invoice each.

Set-based: a handful of INSERT ... SELECT statements over all accounts, the same on SQLite and
PostgreSQL (their text is app.services.billing_sql's), never a Python loop over rows.

The rules (domain.md, sections 5 and 6):
- a meter with an accepted reading in the period is charged its consumption since the last
  accepted reading (a rollover of its digit capacity counts), less what was already charged
  for it as an estimate since then (the recalculation when a real reading arrives);
- a meter without one is charged its average month (history of at least 3 months, at most 6)
  for up to ESTIMATE_BY_AVERAGE_MONTHS months in a row, then the consumption norm; an account
  without an active meter is charged the norm every month (BILLING_NORM_KWH per account,
  the same value as for meters);
- consumption ranges apply to an account's total of all meters and registers, each range's kWh
  shared between the registers in proportion to their consumption (the same arithmetic as
  app.services.tariffs.price_consumption); large families pay range 1 for everything;
- an invoice: opening balance (charges before the period minus payments before it), charged,
  paid within the period, amount due, due date, a unique number.

Idempotent: accounts that already have the period's invoice are skipped, so running a period
twice changes nothing and a billed (closed) period is never billed again; later corrections
go into the open period through the recalculation above.

Where the time goes (bench/billing_run.py, PostgreSQL, 1,000,000 accounts and 2,000,000
lines): about three quarters in writing the ledger itself, some 10 µs a row, and two thirds
of that in the foreign-key checks (charge to account and to meter, invoice to account). On
PostgreSQL those keys are each month's table's own: a month still being billed has none, and
its keys are validated in one pass over that month when its last branch is done
(app.services.billing_runs.complete_period, ledger_partitions.check_month). Besides, the
readings are read in one pass, each scratch table is written once and read by the next step,
the lines are priced before they are written, and the invoices take their totals from the
priced lines.
"""
from __future__ import annotations

import datetime as dt
import re
from contextlib import contextmanager
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session
from sqlalchemy.types import Date, DateTime

from app.services import audit, billing_sql, ledger_partitions
from app.services.billing_guards import (  # noqa: F401  (the billing facade's names)
    BillingError,
    check_correction,
    check_period,
    first_of_month,
    parse_period,
)
from app.services.periods import DEFAULT_TZ, add_months
from app.services.tariffs import season_of

#: Temporary tables of one run, dropped at its end.
SCRATCH = ("bill_accounts", "bill_u", "bill_caps", "bill_rates", "bill_lines",
           "bill_totals", "bill_charged", "bill_paid")
#: PostgreSQL's memory for them (about 150 MB for a million accounts' lines).
TEMP_BUFFERS = "512MB"


@dataclass(frozen=True)
class RunResult:
    period: dt.date
    accounts: int
    charges: int
    invoices: int
    branch_id: int | None = None

def settings(config) -> dict:
    """The run's configurable rules (config.py)."""
    return {"norm_kwh": int(config["BILLING_NORM_KWH"]),
            "estimate_months": int(config["ESTIMATE_BY_AVERAGE_MONTHS"]),
            "due_day": int(config["PAYMENT_DUE_DAY"]),
            "window_last_day": int(config["READING_WINDOW_LAST_DAY"]),
            "timezone": config.get("BABEL_DEFAULT_TIMEZONE") or DEFAULT_TZ}


def run_period(session: Session, period: dt.date, *, norm_kwh: int, estimate_months: int,
               due_day: int, window_last_day: int = 25, actor_id: int | None = None,
               today: dt.date | None = None, force_reason: str | None = None,
               branch_id: int | None = None, part: int = 0, parts: int = 1,
               timezone: str = DEFAULT_TZ, progress=None) -> RunResult:
    """Bill one period for every account (of one branch, given ``branch_id``; of those whose
    id % ``parts`` is ``part``, for a branch split into parts) not yet billed for it, after
    check_period, in one transaction: a failed run leaves nothing behind and is simply run
    again. Months are the portal's local months (``timezone``), as the cabinet's days are.
    ``progress(done, total)`` is called after each statement (the CLI's bar, the admin view's
    figure)."""
    if not 0 <= part < parts:
        raise BillingError(f"Часть {part + 1} из {parts} не существует.")
    period = first_of_month(period)
    today = today or dt.date.today()
    check_period(session, period, today, window_last_day, force_reason, branch_id)
    bind = session.get_bind()
    if isinstance(bind, Engine):
        session.commit()  # this session's reads so far would hold up the month's new tables
    ledger_partitions.ensure_months(bind, ledger_partitions.months_around(period))
    prev_period = add_months(period, -1)
    connection = session.connection()
    dialect = connection.dialect.name
    zone = ZoneInfo(timezone)

    def month_start(month: dt.date) -> dt.datetime:
        """A month's first moment in the portal's time zone, as UTC (how times are kept)."""
        return dt.datetime.combine(month, dt.time(), zone).astimezone(dt.timezone.utc)

    start = month_start(period)
    end_date = add_months(period, 1)
    end = month_start(end_date)
    prev_start = (period.replace(day=1) - dt.timedelta(days=183)).replace(day=1)
    params = {
        "period": period, "prev_period": prev_period, "prev_start": prev_start,
        "prev_start_at": month_start(prev_period),
        "start": start, "end": end,
        "end_date": end_date, "norm": norm_kwh, "estimate_months": estimate_months,
        "season": season_of(period), "due": end_date.replace(day=due_day),
        "now": dt.datetime.now(dt.timezone.utc), "yes": True, "no": False,
        "number_prefix": f"{period:%Y%m}-", "branch": branch_id, "part": part,
        "parts": parts,
    }
    types = [bindparam(name, type_=Date())
             for name in ("period", "prev_period", "prev_start", "end_date", "due")]
    types += [bindparam(name, type_=DateTime(timezone=True))
              for name in ("start", "end", "now", "prev_start_at")]

    def execute(sql: str):
        names = set(re.findall(r":(\w+)", sql))
        statement = text(sql).bindparams(*[b for b in types if b.key in names])
        return connection.execute(statement, {k: v for k, v in params.items() if k in names})

    scratch = billing_sql.scratch_statements(dialect, branch=branch_id is not None,
                                             parts=parts)
    total = len(scratch) + 2
    try:
        with _tuned(connection):
            _drop_scratch(connection)
            for done, sql in enumerate(scratch, start=1):
                execute(sql)
                if progress:
                    progress(done, total)
            _refuse_unpriced(connection, period)
            invoices = execute(billing_sql.invoice_statement(dialect)).rowcount
            if progress:
                progress(total - 1, total)
            charges = execute(billing_sql.charge_statement(dialect)).rowcount
            if progress:
                progress(total, total)
            accounts = connection.execute(text("SELECT COUNT(*) FROM bill_accounts")).scalar_one()
            _drop_scratch(connection)
    except Exception:
        session.rollback()
        raise
    result = RunResult(period, accounts, max(charges, 0), max(invoices, 0), branch_id)
    audit.record(session, "billing.run", actor_id=actor_id, object_type="period",
                 object_id=period.isoformat(), commit=False,
                 details={"accounts": result.accounts, "charges": result.charges,
                          "invoices": result.invoices, "branch_id": branch_id,
                          **({"part": part, "parts": parts} if parts > 1 else {}),
                          **({"forced": force_reason.strip()} if force_reason else {})})
    session.commit()
    return result


@contextmanager
def _tuned(connection):
    """Settings for one big transaction, put back after it.

    PostgreSQL (SET LOCAL, so until the commit): no JIT, which compiled each statement for
    seconds; memory for a hash aggregate over a million accounts' lines, yet little enough
    that the readings are grouped in index order rather than in a hash of arrays; and memory
    for the scratch tables (temp_buffers, 8 MB by default: a million accounts' scratch tables
    went through temporary files, which compete for the page cache with the ledger). That one
    can be set only in a connection that has not used a temporary table yet (else the run
    goes on with the buffers it has), and the server process keeps the buffers while the
    connection lives: so the connection leaves the pool and is closed when the run's
    transaction ends, rather than idle in a worker's pool holding that much memory.

    SQLite: page caches for the run's working set, of the database and of its scratch tables (2 MB
    each by default: the rest went through the file system); and the write lock taken first
    (BEGIN IMMEDIATE), waiting up to ten minutes for another branch's run to commit: taken
    at the first INSERT instead, after another writer had committed, it fails at once
    («database is locked»)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL jit = off"))
        connection.execute(text("SET LOCAL work_mem = '128MB'"))
        try:
            with connection.begin_nested():
                connection.execute(text(f"SET LOCAL temp_buffers = '{TEMP_BUFFERS}'"))
        except DataError:
            pass  # the connection has used a temporary table (ledger_partitions): 8 MB then
        connection.detach()
        yield
        return
    schemas = ("main", "temp")
    sizes = {schema: int(connection.exec_driver_sql(f"PRAGMA {schema}.cache_size").scalar())
             for schema in schemas}
    timeout = int(connection.exec_driver_sql("PRAGMA busy_timeout").scalar())
    for schema in schemas:
        connection.exec_driver_sql(f"PRAGMA {schema}.cache_size = -262144")  # 256 MiB at most
    connection.exec_driver_sql("PRAGMA busy_timeout = 600000")
    if not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        for schema, size in sizes.items():
            connection.exec_driver_sql(f"PRAGMA {schema}.cache_size = {size}")
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {timeout}")


def _refuse_unpriced(connection, period: dt.date) -> None:
    """A line whose tariff is missing, or claimed by two tariffs at once, refuses the whole
    run (the caller rolls it back) before anything is charged."""
    missing, doubled = connection.execute(text(
        "SELECT COALESCE(SUM(CASE WHEN rate IS NULL THEN 1 ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN tariffs > 1 THEN 1 ELSE 0 END), 0) FROM bill_lines")).one()
    if missing:
        raise BillingError(f"Нет тарифа для строк начислений за {period:%m.%Y} (строк без "
                           f"тарифа: {missing}): заполните тарифы и диапазоны потребления, "
                           "затем повторите расчёт.")
    if doubled:
        raise BillingError(f"Тарифы за {period:%m.%Y} пересекаются по датам действия: одной "
                           "строке начислений подходит больше одного тарифа. Исправьте "
                           "справочник тарифов, затем повторите расчёт.")


def _drop_scratch(connection) -> None:
    for name in SCRATCH:
        connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
