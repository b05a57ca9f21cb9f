"""The suite's databases: one migrated template per run, one clone of it per pytest-xdist
worker, dropped at the end; and the outer transaction each test runs in.

A run's databases are named after its id (``LK_TEST_RUN_ID``, made by the controlling
process), so two runs on one server never touch each other's data."""
from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url

RUN_ID_ENV = "LK_TEST_RUN_ID"
PREFIX = "lk_test_"


def run_id() -> str:
    """This run's id, shared by the controller and its workers through the environment."""
    return os.environ.setdefault(RUN_ID_ENV, uuid.uuid4().hex[:10])


def _server(url: URL) -> URL:
    """The maintenance database of the server ``url`` points at."""
    return url.set(database="postgres")


def _admin(url: URL):
    return create_engine(_server(url), isolation_level="AUTOCOMMIT")


def build_template(base_url: str, shared_dir: Path, migrate) -> str:
    """The run's template, built once whichever worker asks first: the schema by the
    migrations and the roles synced (``migrate(url)`` does both). Returns its URL."""
    url = make_url(base_url)
    with FileLock(str(shared_dir / f"{PREFIX}{run_id()}.lock")):
        if url.get_backend_name() == "sqlite":
            template = url.set(database=str(shared_dir / f"{PREFIX}{run_id()}_template.sqlite3"))
            if not Path(template.database).exists():
                migrate(template.render_as_string(hide_password=False))
            return template.render_as_string(hide_password=False)
        template = url.set(database=f"{PREFIX}{run_id()}_template")
        marker = shared_dir / f"{PREFIX}{run_id()}_template.built"
        if not marker.exists():
            engine = _admin(url)
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{template.database}"')
            engine.dispose()
            migrate(template.render_as_string(hide_password=False))
            marker.touch()
        return template.render_as_string(hide_password=False)


def clone(template_url: str, worker: str, folder: Path) -> str:
    """The worker's own database, a copy of the template: a file copy on SQLite, CREATE
    DATABASE ... TEMPLATE on PostgreSQL."""
    template = make_url(template_url)
    if template.get_backend_name() == "sqlite":
        target = folder / f"{worker}.sqlite3"
        shutil.copyfile(template.database, target)
        return template.set(database=str(target)).render_as_string(hide_password=False)
    name = f"{PREFIX}{run_id()}_{worker}"
    engine = _admin(template)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"')
    engine.dispose()
    return template.set(database=name).render_as_string(hide_password=False)


def drop(url_string: str) -> None:
    url = make_url(url_string)
    if url.get_backend_name() == "sqlite":
        Path(url.database).unlink(missing_ok=True)
        return
    engine = _admin(url)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    engine.dispose()


def drop_run(base_url: str | None) -> None:
    """Every PostgreSQL database of this run (the template and any worker's left behind)."""
    if not base_url or make_url(base_url).get_backend_name() != "postgresql":
        return
    url = make_url(base_url)
    engine = _admin(url)
    with engine.connect() as conn:
        names = conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :run"),
                             {"run": f"{PREFIX}{run_id()}%"}).scalars().all()
        for name in names:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


def sessions_may_join(session_factory) -> None:
    """Let the scoped session's sessions run on a connection handed to them.

    Flask-SQLAlchemy's ``get_bind`` always answers with the app's engine; this answers with
    the session's own ``bind`` when one is configured (a test's outer connection), and as
    before otherwise."""
    base = session_factory.class_

    class JoinableSession(base):
        def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
            if bind is None and isinstance(self.bind, Connection):
                return self.bind
            return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)

    session_factory.class_ = JoinableSession


@contextmanager
def outer_transaction(db):
    """SQLAlchemy's "join a session into an external transaction" recipe: every session made
    while this is open works on one connection inside a transaction that is rolled back at
    the end; their commits release SAVEPOINTs. Nothing a test writes outlives it."""
    connection = db.engine.connect()
    connection.name = connection.engine.name  # Flask-AppBuilder asks a bind for its name
    outer = connection.begin()
    if connection.dialect.name == "sqlite":
        # pysqlite begins a transaction only before a write, and a SAVEPOINT outside one
        # would be released for good: begin a real one now.
        connection.exec_driver_sql("BEGIN")
    factory = db.session.session_factory
    settings = dict(factory.kw)
    db.session.remove()
    factory.configure(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield connection
    finally:
        db.session.remove()
        factory.kw.clear()
        factory.kw.update(settings)
        outer.rollback()
        connection.close()


def give_up_waiting_on_locks(engine) -> None:
    """On PostgreSQL a statement waits at most 20 s for a lock: a test that waits on its own
    outer transaction fails with an error instead of hanging the suite."""
    if engine.dialect.name != "postgresql":
        return

    @event.listens_for(engine, "connect")
    def _lock_timeout(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '20s'")
        dbapi_connection.commit()
