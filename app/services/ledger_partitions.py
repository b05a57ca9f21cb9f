"""The ledger's monthly tables on PostgreSQL: ``charge`` and ``invoice`` are range-partitioned
by period (migration f7c3a9e1b5d2), one table per month plus a default one for anything
outside them. A month's rows, and their indexes, live in its own table, so writing a month
costs the same after years of history, and an old month can be detached and archived whole.

A month's tables are made before its billing run, each in a short transaction of its own:
creating a partition locks the parent table, and inside the run's long transaction that lock
would hold every cabinet page that reads charges until the commit. SQLite keeps plain tables.

The ledger's foreign keys (to the account, to the meter) belong to each month's table, not to
the parent (migration d6e8f0a2c4b6): a month's tables are made without them, so its billing
runs, one per branch and in parallel, write rows without a lookup and a row lock per key; when
the period is billed whole, check_month adds the month's keys NOT VALID and validates them,
one set-based pass over that month only (app.services.billing_runs.complete_period). A month
whose keys are there and validated is complete; later rows into it are checked row by row.
The default table always has its keys.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.services.billing_guards import BillingError
from app.services.periods import add_months

log = logging.getLogger(__name__)

#: The ledger tables partitioned by period on PostgreSQL.
PARTITIONED = ("charge", "invoice")
#: How long making a month's table may wait for the parent's lock before giving up (rows of a
#: month without its table go to the default one, and are moved when the table is made).
LOCK_TIMEOUT = "3s"

#: Each ledger table's foreign keys: (column, referenced table, how a row of it is named).
KEYS = {
    "charge": (("account_id", "personal_account", "лицевой счёт"),
               ("meter_id", "meter", "прибор учёта")),
    "invoice": (("account_id", "personal_account", "лицевой счёт"),),
}
#: How check_month names an offending row of each table, and how many rows it names.
ROW_NAMES = {"charge": "строка начислений", "invoice": "счёт"}
NAMED_ROWS = 5
#: How many times check_month tries for its locks (LOCK_TIMEOUT each) before giving up.
LOCK_ATTEMPTS = 3

_PARTITION = re.compile(r"^(charge|invoice)_p(\d{4}_\d{2}|default)$")


def partition_name(table: str, month: dt.date) -> str:
    return f"{table}_p{month:%Y_%m}"


def is_partition(name: str) -> bool:
    """Whether a table is one of the ledger's monthly (or default) partitions: not a table of
    the models, so schema comparisons leave it out."""
    return bool(_PARTITION.match(name or ""))


def existing(connection: Connection) -> set[str]:
    """The names of the ledger's partitions that exist."""
    return set(connection.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname IN ('charge', 'invoice')"))
        .scalars())


def partitioned(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    return bool(connection.execute(text(
        "SELECT 1 FROM pg_partitioned_table t JOIN pg_class c ON c.oid = t.partrelid "
        "WHERE c.relname = 'charge'")).scalar())


def ensure_months(bind: Engine | Connection, months: Iterable[dt.date]) -> list[str]:
    """Make the monthly tables of ``months`` that do not exist yet, for both ledger tables;
    returns the names made. Rows of such a month already in the default table are moved into
    it in the same transaction. Each month is its own short transaction when ``bind`` is an
    engine; a month whose lock cannot be had in LOCK_TIMEOUT is left for the next call (its
    rows go to the default table meanwhile, nothing is lost)."""
    if bind.dialect.name != "postgresql":
        return []
    made: list[str] = []
    if isinstance(bind, Connection):
        if partitioned(bind):
            have = existing(bind)
            for month in months:
                made += _make_month(bind, month, have)
        return made
    with bind.connect() as connection:
        if not partitioned(connection):
            return []
        have = existing(connection)
        connection.rollback()
    for month in months:
        if all(partition_name(t, month) in have for t in PARTITIONED):
            continue
        try:
            with bind.begin() as connection:
                connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                made += _make_month(connection, month, have)
        except Exception:  # the lock was not had in time: the next run makes it
            continue
    return made


def _make_month(connection: Connection, month: dt.date, have: set[str]) -> list[str]:
    start, end = month.replace(day=1), add_months(month, 1)
    made = []
    for table in PARTITIONED:
        name = partition_name(table, start)
        if name in have:
            continue
        bounds = {"start": start, "end": end}
        connection.execute(text(
            f"CREATE TEMP TABLE ledger_moved ON COMMIT DROP AS SELECT * FROM {table}_pdefault "
            f"WHERE period >= :start AND period < :end"), bounds)
        connection.execute(text(
            f"DELETE FROM {table}_pdefault WHERE period >= :start AND period < :end"), bounds)
        connection.execute(text(
            f"CREATE TABLE {name} PARTITION OF {table} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"))
        connection.execute(text(f"INSERT INTO {table} SELECT * FROM ledger_moved"))
        connection.execute(text("DROP TABLE ledger_moved"))
        have.add(name)
        made.append(name)
    return made


def months_around(period: dt.date, ahead: int = 2) -> list[dt.date]:
    """The period's month and the ``ahead`` months after it: made before a run, so that the
    next runs, and corrections dated ahead, find their tables there."""
    return [add_months(period, k) for k in range(ahead + 1)]


class LedgerKeysError(BillingError):
    """A month's ledger rows whose keys point at nothing: the month stays incomplete."""


def key_name(partition: str, column: str) -> str:
    return f"{partition}_{column}_fkey"


def compared(dialect: str) -> Callable[..., bool]:
    """Alembic's ``include_object`` for a database of ``dialect``: on PostgreSQL the ledger's
    foreign keys are its monthly tables' own, not the parent's, so the models' keys of
    ``charge`` and ``invoice`` are not looked for on the parent there (on SQLite they are)."""
    def include(obj, _name, type_, _reflected, _compare_to) -> bool:
        return not (dialect == "postgresql" and type_ == "foreign_key_constraint"
                    and obj.table.name in PARTITIONED)
    return include


def month_keys(connection: Connection, month: dt.date) -> dict[str, bool]:
    """The month's foreign keys that exist, by name: whether each is validated."""
    names = [partition_name(t, month.replace(day=1)) for t in PARTITIONED]
    return dict(connection.execute(text(
        "SELECT k.conname, k.convalidated FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid "
        "WHERE k.contype = 'f' AND c.relname = ANY(:names)"), {"names": names}).all())


def expected_keys(have: set[str], month: dt.date) -> list[tuple[str, str, str, str]]:
    """(table, partition, column, referenced table) of every key the month's existing tables
    must have."""
    out = []
    for table in PARTITIONED:
        partition = partition_name(table, month)
        if partition in have:
            out += [(table, partition, column, ref) for column, ref, _ in KEYS[table]]
    return out


def is_checked(connection: Connection, month: dt.date) -> bool:
    """Whether the month is complete: every key of its tables there and validated."""
    month = month.replace(day=1)
    keys = month_keys(connection, month)
    return all(keys.get(key_name(p, c)) for _t, p, c, _r in
               expected_keys(existing(connection), month))


def check_month(bind: Engine | Connection, month: dt.date) -> list[str]:
    """Give the month's tables their foreign keys and validate them; returns the names of the
    keys validated now ([] when the month was complete already, or off PostgreSQL).

    First the keys missing are added NOT VALID, in a short transaction: that takes SHARE ROW
    EXCLUSIVE on the referenced tables (account and meter writes wait, for a moment; reads
    never), waiting at most LOCK_TIMEOUT, LOCK_ATTEMPTS times. Then VALIDATE, in a transaction
    of its own: one anti-join over the month's rows under SHARE UPDATE EXCLUSIVE on its tables
    and ROW SHARE on the referenced ones, which blocks no reader and no writer of either. A row
    pointing at nothing raises LedgerKeysError naming the rows; the keys stay NOT VALID (the
    month incomplete, its new rows checked one by one) until the rows are put right and this
    runs again. Two callers at once (the last two branches of a period) take turns on an
    advisory lock of the month. On a connection (a transaction already open, as in tests) all
    of it happens there, the validation in a savepoint."""
    if bind.dialect.name != "postgresql":
        return []
    month = month.replace(day=1)
    if isinstance(bind, Connection):
        if not partitioned(bind):
            return []
        _add_keys(bind, month)
        try:
            with bind.begin_nested():
                return _validate(bind, month)
        except IntegrityError as error:
            raise _violation(bind, month) from error
    with bind.connect() as connection:
        if not partitioned(connection):
            return []
        connection.rollback()
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            with bind.begin() as connection:
                connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                _add_keys(connection, month)
            break
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) != "55P03":  # not a lock timeout
                raise
            if attempt == LOCK_ATTEMPTS:
                log.warning("ledger keys of %s not added: %s", f"{month:%Y-%m}", error.orig)
                raise LedgerKeysError(
                    f"Ключи месяца {month:%m.%Y} не добавлены: таблицы заняты другими "
                    "изменениями. Месяц остаётся незавершённым; запустите расчёт периода "
                    "снова.") from error
            time.sleep(attempt)
    try:
        with bind.begin() as connection:
            return _validate(connection, month)
    except IntegrityError as error:
        with bind.connect() as connection:
            raise _violation(connection, month) from error


def _lock(connection: Connection, month: dt.date) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('ledger_keys'), :m)"),
                       {"m": month.year * 12 + month.month})


def _add_keys(connection: Connection, month: dt.date) -> None:
    _lock(connection, month)
    keys = month_keys(connection, month)
    for _table, partition, column, ref in expected_keys(existing(connection), month):
        name = key_name(partition, column)
        if name not in keys:
            connection.execute(text(
                f"ALTER TABLE {partition} ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
                f"REFERENCES {ref} (id) NOT VALID"))


def _validate(connection: Connection, month: dt.date) -> list[str]:
    _lock(connection, month)
    keys = month_keys(connection, month)
    done = []
    for _table, partition, column, _ref in expected_keys(existing(connection), month):
        name = key_name(partition, column)
        if name in keys and not keys[name]:
            connection.execute(text(f"ALTER TABLE {partition} VALIDATE CONSTRAINT {name}"))
            done.append(name)
    return done


def offending_rows(connection: Connection, month: dt.date,
                   limit: int = NAMED_ROWS) -> tuple[list[str], int]:
    """The month's rows whose keys point at nothing, named (at most ``limit``), and how many
    there are: one anti-join per key over the month's table."""
    named, count = [], 0
    have = existing(connection)
    for table, partition, column, ref in expected_keys(have, month):
        what = {c: w for c, _r, w in KEYS[table]}[column]
        label = "number" if table == "invoice" else "id"
        orphans = (f"FROM {partition} x WHERE x.{column} IS NOT NULL AND NOT EXISTS "
                   f"(SELECT 1 FROM {ref} r WHERE r.id = x.{column})")
        count += connection.execute(text(f"SELECT COUNT(*) {orphans}")).scalar_one()
        rows = connection.execute(text(
            f"SELECT x.{label}, x.{column} {orphans} ORDER BY x.id LIMIT :n"),
            {"n": max(limit - len(named), 0)}).all()
        named += [f"{ROW_NAMES[table]} {key} ({what} с id {value} не существует)"
                  for key, value in rows]
    return named, count


def _violation(connection: Connection, month: dt.date) -> LedgerKeysError:
    named, count = offending_rows(connection, month)
    message = (f"Ключи месяца {month:%m.%Y} не прошли проверку, строк с ошибкой: {count}: "
               f"{'; '.join(named)}. Месяц остаётся незавершённым: исправьте или удалите эти "
               "строки и запустите расчёт периода снова.")
    log.error("ledger keys of %s: %s", f"{month:%Y-%m}", message)
    return LedgerKeysError(message)
