"""The benchmarks' own databases: a benchmark creates the PostgreSQL database and leases (or is
given) the empty Redis database it uses, and drops or empties only those, so that running one
never destroys anybody's data.

A benchmark stopped by SIGTERM (a timeout, say) still cleans up: while one of these is open,
SIGTERM exits through the ``finally`` blocks, as Ctrl-C does."""
from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
#: Environment default of ``--redis-url``; unset, a free database is leased.
REDIS_URL = os.environ.get("BENCH_REDIS_URL")
#: SQLSTATE of CREATE DATABASE when the name is taken: somebody else's database.
DUPLICATE_DATABASE = "42P04"
PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def database_name(value: str) -> str:
    """argparse type of ``--database``: a plain lower-case identifier, safe in SQL."""
    if not PLAIN_NAME.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r}: letters a-z, digits and _ only, not starting with a digit")
    return value


def own_name(prefix: str) -> str:
    """A name of this process's own, so that two runs never meet in one database."""
    return f"{prefix}_{os.getpid()}"


def postgres_answers() -> bool:
    try:
        with _admin().connect():
            return True
    except Exception:  # no server, or refused: the caller says what it does without one
        return False


@dataclass
class Database:
    name: str
    url: str
    #: By this run: then it is this run's to seed, and to drop unless kept.
    created: bool


@contextmanager
def postgres_database(name: str, keep: bool = False,
                      reusable: Callable[[str], bool] | None = None,
                      hint: str = "") -> Iterator[Database]:
    """The database ``name``, created now and dropped at the end (also on error) unless
    ``keep``. One that exists already is used only when ``reusable(url)`` says so, is never
    dropped, and is refused otherwise (SystemExit, with ``hint`` on what would do)."""
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    created = _create(name)
    if not created and not (reusable and reusable(url)):
        raise SystemExit(f"database {name} exists already and is not this run's: it is neither "
                         f"used nor dropped. Pass another --database{hint}, or drop it yourself.")
    with _sigterm_exits():
        try:
            yield Database(name, url, created)
        finally:
            if created and not keep:
                _drop(name)


@contextmanager
def redis_database(url: str | None) -> Iterator[str | None]:
    """An empty Redis database for this run alone, emptied at the end (also on error): ``url``
    when given, refused unless it is empty (its keys would be somebody's), else one leased
    with tests.redis_lease. None when Redis does not answer or no database is free."""
    import redis

    from tests.redis_lease import lease

    if url is None:
        leased = lease()
        if leased is None:
            yield None
            return
        with _sigterm_exits():
            try:
                yield leased.url
            finally:
                leased.release()
        return
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        keys = client.dbsize()
    except (redis.ConnectionError, redis.TimeoutError):
        client.close()
        yield None
        return
    if keys:
        client.close()
        raise SystemExit(f"Redis database {url} holds {keys} keys, not this run's: it is neither "
                         "used nor flushed. Pass an empty one, or no --redis-url (and no "
                         "BENCH_REDIS_URL) to lease a free one.")
    with _sigterm_exits():
        try:
            yield url
        finally:
            client.flushdb()
            client.close()


def _admin():
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _create(name: str) -> bool:
    """True when this call created the database, False when it existed: one statement, so
    that no other run can create it between a check and the creation."""
    engine = _admin()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        return True
    except ProgrammingError as error:
        if getattr(error.orig, "sqlstate", None) == DUPLICATE_DATABASE:
            return False
        raise
    finally:
        engine.dispose()


def _drop(name: str) -> None:
    engine = _admin()
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


@contextmanager
def _sigterm_exits() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(128 + 15))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
