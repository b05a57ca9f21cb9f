"""The ledger's monthly tables on PostgreSQL: ``charge`` and ``invoice`` are range-partitioned
by period (migration f7c3a9e1b5d2), one table per month plus a default one for anything
outside them. A month's rows, and their indexes, live in its own table, so writing a month
costs the same after years of history, and an old month can be detached and archived whole.

A month's tables are made before its billing run, each in a short transaction of its own:
creating a partition locks the parent table, and inside the run's long transaction that lock
would hold every cabinet page that reads charges until the commit. SQLite keeps plain tables.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from app.services.periods import add_months

#: The ledger tables partitioned by period on PostgreSQL.
PARTITIONED = ("charge", "invoice")
#: How long making a month's table may wait for the parent's lock before giving up (rows of a
#: month without its table go to the default one, and are moved when the table is made).
LOCK_TIMEOUT = "3s"

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
