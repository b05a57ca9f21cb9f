"""Migrations: `flask db upgrade` on an empty database builds exactly the schema of the models,
`downgrade base` removes it, and upgrading again works; on SQLite and on PostgreSQL."""
from __future__ import annotations

import os
import secrets

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_appbuilder import Model
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

import app.models  # noqa: F401  (registers the tables)
from app import create_app
from app.extensions import db

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
    migrate_args = {"compare_type": True, "compare_server_default": False}
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts=migrate_args),
                                Model.metadata)


def tables(engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def round_trip(url: str, tmp_path) -> None:
    flask_app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url,
                            "DEV_OUTBOX_DIR": str(tmp_path / "outbox")})
    with flask_app.app_context():
        engine = db.engine
        assert tables(engine) == set(), "the database must start empty"

        upgrade()
        assert tables(engine) == PORTAL_TABLES | {"alembic_version"}
        assert schema_differences(engine) == []

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
