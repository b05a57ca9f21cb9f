"""Migrations: `flask db upgrade` on an empty database builds exactly the schema of the models,
`downgrade base` removes it, and upgrading again works; on SQLite and on PostgreSQL."""
from __future__ import annotations

import importlib.util
import os
import re
import secrets
import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_appbuilder import Model
from flask_migrate import downgrade, upgrade
from sqlalchemy import CheckConstraint, inspect
from sqlalchemy.engine import make_url

import app.models  # noqa: F401  (registers the tables)
from app import MIGRATIONS_DIR, create_app
from app.extensions import db
from app.models import ExactMoney
from app.services.ledger_partitions import compared, is_partition

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PORTAL_TABLES = {t.name for t in Model.metadata.sorted_tables}


def libpq_dsn(url: str) -> str:
    """A SQLAlchemy URL (any PostgreSQL driver) as a libpq connection string."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    return url if url.startswith("postgresql") else PG_DEFAULT


def pg_answers(url: str) -> bool:
    try:
        import psycopg

        psycopg.connect(libpq_dsn(url), connect_timeout=3).close()
        return True
    except Exception:
        return False


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'migrate.sqlite3'}"


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database, created for this test and dropped after it."""
    import psycopg

    server = pg_server_url()
    if not pg_answers(server):
        pytest.skip(f"PostgreSQL does not answer at {make_url(server).render_as_string()}")
    name = f"lk_mig_{secrets.token_hex(4)}"
    with psycopg.connect(libpq_dsn(server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(drivername="postgresql+psycopg", database=name) \
            .render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq_dsn(server), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def schema_differences(engine) -> list:
    """What `flask db migrate` would generate: differences between the database and the models."""
    migrate_args = {"compare_type": True, "compare_server_default": False,
                    "include_name": lambda name, type_, _parents: not (
                        type_ == "table" and is_partition(name)),
                    "include_object": compared(engine.dialect.name)}
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts=migrate_args),
                                Model.metadata)


def check_differences(engine) -> list[tuple[str, str]]:
    """(table, constraint) of every named CHECK constraint of the models whose quoted values
    (a Choices list: a source, a kind, a status) the database does not hold exactly; alembic's
    comparison does not look at CHECK constraints."""
    inspector = inspect(engine)
    differences = []
    for table in Model.metadata.sorted_tables:
        held = {c["name"]: set(re.findall(r"'([^']*)'", c["sqltext"]))
                for c in inspector.get_check_constraints(table.name)}
        for constraint in table.constraints:
            if isinstance(constraint, CheckConstraint) and isinstance(constraint.name, str):
                wanted = set(re.findall(r"'([^']*)'", str(constraint.sqltext)))
                if held.get(constraint.name) != wanted:
                    differences.append((table.name, constraint.name))
    return differences


def tables(engine) -> set[str]:
    """The tables, the ledger's monthly partitions on PostgreSQL aside."""
    return {name for name in inspect(engine).get_table_names() if not is_partition(name)}


def round_trip(url: str, tmp_path) -> None:
    flask_app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url,
                            "DEV_OUTBOX_DIR": str(tmp_path / "outbox")})
    with flask_app.app_context():
        engine = db.engine
        assert tables(engine) == set(), "the database must start empty"

        upgrade()
        assert tables(engine) == PORTAL_TABLES | {"alembic_version"}
        assert schema_differences(engine) == []
        assert check_differences(engine) == []

        downgrade(revision="base")
        assert tables(engine) - {"alembic_version"} == set()

        upgrade()
        assert tables(engine) == PORTAL_TABLES | {"alembic_version"}
        assert schema_differences(engine) == []
        engine.dispose()


def test_portal_tables_are_known():
    assert {"ab_user", "ab_role", "branch", "personal_account", "reading", "payment",
            "audit_event"} <= PORTAL_TABLES


def test_upgrade_downgrade_upgrade_on_sqlite(sqlite_url, tmp_path):
    round_trip(sqlite_url, tmp_path)


@pytest.mark.postgres
def test_upgrade_downgrade_upgrade_on_postgresql(postgres_url, tmp_path):
    round_trip(postgres_url, tmp_path)


def test_a_schema_drift_is_caught(sqlite_url, tmp_path):
    """The comparison is not vacuous: an index missing from the database is reported."""
    flask_app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sqlite_url,
                            "DEV_OUTBOX_DIR": str(tmp_path / "outbox")})
    with flask_app.app_context():
        upgrade()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_audit_at")
        diffs = schema_differences(db.engine)
        assert [(d[0], d[1].name) for d in diffs] == [("add_index", "ix_audit_at")]
        db.engine.dispose()


def test_a_choices_list_behind_the_models_is_caught(sqlite_url, tmp_path, capfd):
    """The CHECK comparison is not vacuous: the schema before the bot's reading source lacks
    it; the migration adds it, and its downgrade refuses while a bot's reading exists."""
    flask_app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sqlite_url,
                            "DEV_OUTBOX_DIR": str(tmp_path / "outbox")})
    with flask_app.app_context():
        upgrade(revision="d6e8f0a2c4b6")
        assert check_differences(db.engine) == [("reading", "ck_reading_source")]
        upgrade(revision="a9c1e3f5b7d8")
        assert check_differences(db.engine) == []
        with db.engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
            conn.exec_driver_sql(
                "INSERT INTO reading (meter_id, period, source, status, t1, submitted_at) "
                "VALUES (1, '2026-11-01', 'bot', 'accepted', 1, '2026-11-20 10:00:00')")
        with pytest.raises(SystemExit):  # flask_migrate's way of reporting a refusal
            downgrade(revision="d6e8f0a2c4b6")
        assert "1 readings from the bot exist" in capfd.readouterr().err
        assert check_differences(db.engine) == []
        db.engine.dispose()


def _migration(filename: str):
    """A migration's module, for its frozen lists."""
    spec = importlib.util.spec_from_file_location(
        filename.removesuffix(".py"), os.path.join(MIGRATIONS_DIR, "versions", filename))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_money_with_float_residue_is_rounded_on_sqlite(sqlite_url, tmp_path):
    """The data migration d2ac992fd6d2 rounds what SQLite stored as 0.1 + 0.2 in every money
    column (its frozen list is every column of the money type of its day; a money column
    added since is in a table made later, born exact) and leaves NULL alone."""
    migration = _migration("d2ac992fd6d2_exact_money.py")
    frozen = {(t, c) for t, columns in migration.MONEY_COLUMNS.items() for c in columns}
    today = {(t.name, c.name) for t in Model.metadata.sorted_tables
             for c in t.columns if isinstance(c.type, ExactMoney)}
    assert frozen <= today
    empty = {("payment_order", "gateway_amount")}
    dummies = {"INT": 1, "CHAR": "x", "TEXT": "x", "DATETIME": "2026-12-01 00:00:00.000000",
               "DATE": "2026-12-01", "BOOL": 0, "NUMERIC": 0, "JSON": "{}"}
    flask_app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": sqlite_url,
                            "DEV_OUTBOX_DIR": str(tmp_path / "outbox")})
    with flask_app.app_context():
        upgrade(revision=migration.down_revision)
        conn = sqlite3.connect(make_url(sqlite_url).database)  # foreign keys not enforced
        conn.execute("PRAGMA ignore_check_constraints = ON")
        tables_then = {name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert not {table for table, _ in today - frozen} & tables_then, \
            "a money column of a table that existed then is missing from the frozen list"
        for table, columns in migration.MONEY_COLUMNS.items():
            row = {name: next(v for k, v in dummies.items() if k in kind.upper())
                   for _, name, kind, notnull, default, pk in conn.execute(
                       f"PRAGMA table_info({table})") if notnull and default is None and not pk}
            row.update({c: None if (table, c) in empty else 0.1 + 0.2 for c in columns})
            conn.execute(f"INSERT INTO {table} ({', '.join(row)}) "
                         f"VALUES ({', '.join('?' * len(row))})", list(row.values()))
        conn.commit()
        assert conn.execute("SELECT amount FROM charge").fetchall() == [(0.30000000000000004,)]
        upgrade()
        for table, columns in migration.MONEY_COLUMNS.items():
            assert conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall() == [
                tuple(None if (table, c) in empty else 0.3 for c in columns)], table
        conn.close()
        db.engine.dispose()
