"""Writing the demo's rows fast: uniform tuples written set-based (PostgreSQL ``COPY``, SQLite
multi-row ``INSERT``) by a background thread while the next chunk is generated; secondary
indexes and PostgreSQL's foreign keys dropped for the load and rebuilt once at the end. No ORM
objects, no query per row."""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy import insert, text
from sqlalchemy.engine import Connection

from app import models as m


class BulkWriter:
    """Writes uniform tuples of wire values (str, int, None; booleans as ``true``/``false``,
    timestamps as a day plus ``clock()``) to a table, the fastest way the connection allows:
    COPY on PostgreSQL with psycopg 3, multi-row INSERT ... VALUES on SQLite (one statement
    per few hundred rows: SQLite re-evaluates the CHECK constraints' IN lists per statement, so
    executemany would pay that per row), Core executemany elsewhere."""

    SQLITE_MAX_PARAMS = 30_000

    def __init__(self, connection: Connection):
        self.connection = connection
        dialect = connection.dialect
        if dialect.name == "sqlite":
            self.mode, self.true, self.false = "sqlite", 1, 0
        elif dialect.name == "postgresql" and dialect.driver == "psycopg":
            self.mode, self.true, self.false = "copy", True, False
        else:
            self.mode, self.true, self.false = "core", True, False

    def clock(self) -> list[str]:
        """The time part of a UTC timestamp for each second of a day, as this database takes
        it after the date (SQLAlchemy's own format on SQLite)."""
        tail = ".000000" if self.mode == "sqlite" else "+00"
        return [f" {h:02d}:{mnt:02d}:{sec:02d}{tail}"
                for h in range(24) for mnt in range(60) for sec in range(60)]

    def _dbapi(self):
        return self.connection.connection.driver_connection

    def write(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        if not rows:
            return
        names = ", ".join(columns)
        if self.mode == "sqlite":
            batch = max(1, min(500, self.SQLITE_MAX_PARAMS // len(columns)))
            one = "(" + ", ".join("?" * len(columns)) + ")"
            cursor = self._dbapi().cursor()
            try:
                for start in range(0, len(rows), batch):
                    part = rows[start:start + batch]
                    cursor.execute(f"INSERT INTO {table} ({names}) VALUES "
                                   + ", ".join([one] * len(part)),
                                   [v for row in part for v in row])
            finally:
                cursor.close()
        elif self.mode == "copy":
            with self._dbapi().cursor() as cursor:
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        else:
            target = m.Model.metadata.tables[table]
            self.connection.execute(insert(target), [dict(zip(columns, r)) for r in rows])


class Pipeline:
    """Writes a chunk in a background thread while the next one is generated: SQLite lets go
    of the GIL inside its steps and PostgreSQL works in its own process, so both cores work.
    A SQLite database in memory cannot change threads: it is written in line."""

    def __init__(self, writer: BulkWriter):
        self.writer = writer
        url = writer.connection.engine.url
        in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
        self.pool = None if in_memory else ThreadPoolExecutor(1, "demo-writer")
        self.pending: Future | None = None

    def _write(self, tables: list[tuple[str, tuple, list]]) -> None:
        for table, columns, rows in tables:
            self.writer.write(table, columns, rows)

    def put(self, tables: list[tuple[str, tuple, list]]) -> None:
        self.wait()
        if self.pool is None:
            self._write(tables)
        else:
            self.pending = self.pool.submit(self._write, tables)

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.wait()
            elif self.pending is not None:
                self.pending.exception()  # let the write finish before the rollback
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
        return False


class fast_load:  # noqa: N801 - used as a context manager
    """Make a big load cheap, inside the load's transaction (a failure rolls it all back):
    drop the secondary indexes of the bulk tables and build them again at the end (one sort
    each instead of millions of B-tree inserts); on PostgreSQL also drop the foreign keys and
    add them back, validated in one pass each, then ANALYZE; on SQLite give the page cache
    room."""

    BULK_TABLES = ("premises", "personal_account", "meter", "reading", "charge", "invoice",
                   "payment")

    def __init__(self, connection: Connection):
        self.connection = connection
        self.indexes: list[tuple[str, str]] = []  # (name, CREATE INDEX statement)
        self.foreign_keys: list[tuple[str, str, str]] = []  # (table, name, definition)
        self.cache_size = None

    def __enter__(self):
        c, tables = self.connection, list(self.BULK_TABLES)
        if c.dialect.name == "postgresql":
            self.foreign_keys = [tuple(row) for row in c.execute(text(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(:t)"
            ), {"t": tables})]
            self.indexes = [tuple(row) for row in c.execute(text(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i "
                "WHERE i.schemaname = current_schema() AND i.tablename = ANY(:t) "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname "
                "AND k.conrelid = i.tablename::regclass)"), {"t": tables})]
            for table, name, _ in self.foreign_keys:
                c.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
        elif c.dialect.name == "sqlite":
            if not c.connection.driver_connection.in_transaction:
                c.exec_driver_sql("BEGIN")  # pysqlite begins only before DML, not DDL
            marks = ", ".join("?" * len(tables))
            self.indexes = [tuple(row) for row in c.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                f"AND tbl_name IN ({marks})", tuple(tables))]
            self.cache_size = c.exec_driver_sql("PRAGMA cache_size").scalar()
            c.exec_driver_sql("PRAGMA cache_size = -262144")  # 256 MiB
        for name, _ in self.indexes:
            c.exec_driver_sql(f'DROP INDEX "{name}"')
        return self

    def __exit__(self, exc_type, exc, tb):
        c = self.connection
        if exc_type is None:
            for _, statement in self.indexes:
                # A partitioned table's index is defined ON ONLY the parent: built that way
                # again it would cover no month's table (and stay invalid); ON builds it on
                # every month's table too.
                c.exec_driver_sql(statement.replace(" ON ONLY ", " ON ", 1))
            for table, name, definition in self.foreign_keys:
                c.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
            if c.dialect.name == "postgresql":  # the planner knows nothing of the new rows yet
                c.exec_driver_sql(f"ANALYZE {', '.join(self.BULK_TABLES)}, organization, contract")
        if self.cache_size is not None:
            c.exec_driver_sql(f"PRAGMA cache_size = {int(self.cache_size)}")
        return False


def sync_sequences(connection: Connection, tables: Sequence[str]) -> None:
    """Move PostgreSQL's id sequences past the ids the seed gave explicitly."""
    if connection.dialect.name != "postgresql":
        return
    for table in tables:
        connection.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"))
