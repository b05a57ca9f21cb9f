"""The ledger's monthly tables on PostgreSQL: the migration turns charge and invoice with their
rows into tables partitioned by period and back; a billing run writes its month into the
month's own table; a month made later takes its rows out of the default table."""
from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal as D

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, event, func, select, text

from app import create_app
from app import models as m
from app.extensions import db
from app.services import billing, ledger_partitions
from tests.test_migrations import postgres_url  # noqa: F401  (a fresh database per test)

NOV = dt.date(2026, 11, 1)


def where(connection, table: str, key: str) -> list[tuple]:
    """(partition, key) of every row of a ledger table."""
    return connection.execute(text(
        f"SELECT tableoid::regclass::text, {key} FROM {table} ORDER BY {key}")).all()


@pytest.fixture
def on_postgres(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the ledger is partitioned on PostgreSQL only")


def test_a_run_writes_its_month_into_the_months_own_tables(on_postgres, session, two_branches):
    billing.run_period(session, NOV, norm_kwh=100, estimate_months=3, due_day=10,
                       today=dt.date(2026, 11, 30))
    connection = session.connection()
    months = {row[0] for row in where(connection, "charge", "period")
              if row[1] == NOV} | {row[0] for row in where(connection, "invoice", "period")
                                   if row[1] == NOV}
    assert months == {"charge_p2026_11", "invoice_p2026_11"}
    assert {"charge_p2027_01", "invoice_p2027_01"} <= ledger_partitions.existing(connection)


def test_a_month_made_later_takes_its_rows_from_the_default_table(on_postgres, session,
                                                                 two_branches):
    krd, _nvr = two_branches
    far = dt.date(2035, 3, 1)
    session.add(m.Charge(account_id=krd.ids["PersonalAccount"], period=far, amount=D("1.00"),
                         kind="adjustment", note="Проверка"))
    session.flush()
    connection = session.connection()
    assert [r[0] for r in where(connection, "charge", "period") if r[1] == far] == [
        "charge_pdefault"]
    made = ledger_partitions.ensure_months(connection, [far])
    assert made == ["charge_p2035_03", "invoice_p2035_03"]
    assert [r[0] for r in where(connection, "charge", "period") if r[1] == far] == [
        "charge_p2035_03"]
    assert ledger_partitions.ensure_months(connection, [far]) == []


@pytest.mark.postgres
def test_the_migration_moves_the_rows_into_monthly_tables_and_back(postgres_url,  # noqa: F811
                                                                   tmp_path):
    flask_app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": postgres_url,
                            "DEV_OUTBOX_DIR": str(tmp_path / "outbox")})
    with flask_app.app_context():
        upgrade(revision="f6b2d8a4c1e7")
        engine = create_engine(postgres_url)
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO branch (id, code, name, city) VALUES (1, 'krd', 'Филиал', 'Город');"
                "INSERT INTO tariff_group (id, code, name) VALUES (1, 'u', 'Население');"
                "INSERT INTO premises (id, branch_id, locality, locality_type, street, house, "
                "electric_stove, residents) VALUES (1, 1, 'Город', 'urban', 'ул.', '1', false, 1);"
                "INSERT INTO personal_account (id, number, holder_name, premises_id, branch_id, "
                "tariff_group_id, status, large_family, opened_on) VALUES "
                "(1, '230000000001', 'Абонент', 1, 1, 1, 'active', false, '2020-01-01')"))
            for month in (dt.date(2019, 5, 1), NOV):
                conn.execute(text(
                    "INSERT INTO charge (account_id, period, kwh, amount, kind, created_at) "
                    "VALUES (1, :p, 0, 10.50, 'adjustment', now())"), {"p": month})
                conn.execute(text(
                    "INSERT INTO invoice (number, account_id, period, opening_balance, charged, "
                    "paid, amount_due, due_date, issued_at) VALUES "
                    "(:n, 1, :p, 0, 10.50, 0, 10.50, :p, now())"),
                    {"p": month, "n": f"{month:%Y%m}-1"})
        upgrade()
        with engine.begin() as conn:
            assert where(conn, "charge", "period") == [
                ("charge_p2019_05", dt.date(2019, 5, 1)), ("charge_p2026_11", NOV)]
            assert [r[0] for r in where(conn, "invoice", "period")] == [
                "invoice_p2019_05", "invoice_p2026_11"]
            # The ids go on from where they were, and the keys hold.
            new_id = conn.execute(text(
                "INSERT INTO charge (account_id, period, kwh, amount, kind, created_at) VALUES "
                "(1, '2026-12-01', 0, 1, 'adjustment', now()) RETURNING id")).scalar()
            assert new_id == 3
            # The keys are each month's table's own (migration d6e8f0a2c4b6): the months
            # holding rows, and the default table, have them; the parent and an empty month
            # (open until its billing completes) do not.
            keys = dict(conn.execute(text(
                "SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' "
                "AND conrelid::regclass::text LIKE 'charge%'")).all())
            assert keys == {f"charge_p{m}_{c}_fkey": True
                            for m in ("2019_05", "2026_11", "default")
                            for c in ("account_id", "meter_id")}
            with pytest.raises(Exception, match="foreign key"):
                with conn.begin_nested():
                    conn.execute(text(
                        "INSERT INTO charge (account_id, period, kwh, amount, kind, created_at) "
                        "VALUES (99, '2026-11-01', 0, 1, 'adjustment', now())"))
        downgrade(revision="c5d7f9b1e3a5")
        with engine.begin() as conn:  # the keys back on the parent, every month's inherited
            assert {r[0] for r in conn.execute(text(
                "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conparentid = 0 "
                "AND conrelid::regclass::text LIKE 'charge%'"))} == {
                "charge_account_id_fkey", "charge_meter_id_fkey"}
        downgrade(revision="f6b2d8a4c1e7")
        with engine.begin() as conn:
            assert not ledger_partitions.partitioned(conn)
            assert [r[1] for r in where(conn, "charge", "period")] == [
                dt.date(2019, 5, 1), NOV, dt.date(2026, 12, 1)]
            assert {r[0] for r in where(conn, "invoice", "period")} == {"invoice"}
        engine.dispose()
        db.engine.dispose()


@pytest.mark.committed  # the month's tables are made on a connection of their own
def test_a_run_makes_its_months_tables_before_it_starts(on_postgres, session, two_branches):
    for table in (m.Invoice, m.Charge, m.Payment):
        session.execute(table.__table__.delete())
    session.commit()
    august = dt.date(2025, 8, 1)
    for month in ("2025_08", "2025_09", "2025_10"):  # as before any run of those months
        session.execute(text(f"DROP TABLE IF EXISTS charge_p{month}, invoice_p{month}"))
    session.commit()
    result = billing.run_period(session, august, norm_kwh=100, estimate_months=3,
                                due_day=10, today=dt.date(2026, 11, 30))
    assert result.invoices == 4
    connection = session.connection()
    assert {r[0] for r in where(connection, "charge", "period") if r[1] == august} == {
        "charge_p2025_08"}
    assert {"charge_p2025_10", "invoice_p2025_10"} <= ledger_partitions.existing(connection)


def bill_noting_the_runs_server_process(session, period) -> set[int]:
    """Bill ``period``; the server process ids of the connections that made the scratch
    table."""
    runners: set[int] = set()

    def note_runner(conn, _cursor, statement, *_args):
        if "CREATE TEMP TABLE BILL_ACCOUNTS" in statement.upper():
            runners.add(conn.connection.dbapi_connection.info.backend_pid)

    event.listen(db.engine, "before_cursor_execute", note_runner)
    try:
        billing.run_period(session, period, norm_kwh=100, estimate_months=3, due_day=10,
                           today=dt.date(2026, 11, 30))
    finally:
        event.remove(db.engine, "before_cursor_execute", note_runner)
    return runners


@pytest.mark.committed  # the run's own connections, not a test's outer one
def test_the_runs_connection_with_its_scratch_buffers_is_closed_not_pooled(
        on_postgres, session, two_branches):
    """The run's server process holds up to TEMP_BUFFERS of local buffers while it lives: its
    connection is closed when the run's transaction ends, not kept idle in the pool."""
    [runner] = bill_noting_the_runs_server_process(session, NOV)
    alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
    for _ in range(50):  # a closed connection's server process exits a moment later
        if not session.execute(alive, {"pid": runner}).scalar_one():
            break
        time.sleep(0.02)
    assert not session.execute(alive, {"pid": runner}).scalar_one()
    assert session.execute(select(func.count()).select_from(m.Invoice)
                           .where(m.Invoice.period == NOV)).scalar_one() > 0


@pytest.mark.committed
def test_a_connection_that_used_a_temporary_table_still_bills(on_postgres, session,
                                                              two_branches):
    """temp_buffers cannot be changed once a connection has used a temporary table (as
    ledger_partitions does, moving a month's rows): the run goes on with the buffers it has
    instead of failing."""
    db.engine.dispose()  # the pool's one idle connection will be the one below
    with db.engine.connect() as connection:
        connection.exec_driver_sql("CREATE TEMP TABLE earlier AS SELECT 1 AS x")
        used = connection.connection.dbapi_connection.info.backend_pid
        connection.commit()
    assert bill_noting_the_runs_server_process(session, NOV) == {used}
    assert session.execute(select(func.count()).select_from(m.Invoice)
                           .where(m.Invoice.period == NOV)).scalar_one() > 0
