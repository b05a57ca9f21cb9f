"""The ledger's keys checked once a month, set-based, on PostgreSQL: a month's tables are
written without foreign keys while its branches are billed, and when the last branch is done
the month's keys are added and validated in one pass; a row pointing at nothing fails the
period with the row named and leaves the month incomplete (ledger_partitions.check_month,
billing_runs.complete_period)."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app import models as m
from app.extensions import db
from app.services import billing_runs, ledger_partitions
from app.services.ledger_partitions import LedgerKeysError
from tests.test_billing_workers import ledger
from tests.test_migrations import pg_answers, pg_server_url

NOV = dt.date(2026, 11, 1)
TODAY = dt.date(2026, 11, 30)
KEYS = {"charge_p2026_11_account_id_fkey", "charge_p2026_11_meter_id_fkey",
        "invoice_p2026_11_account_id_fkey"}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def on_postgres(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the ledger's keys are per month on PostgreSQL only")


@pytest.fixture
def november(on_postgres, session, two_branches):
    """Both branches with November's readings, and November's tables made and open (their
    keys dropped, should an earlier test on this database have completed the month)."""
    krd, nvr = two_branches
    for world, value in ((krd, "1334"), (nvr, "1500")):
        session.add(m.Reading(meter_id=world.ids["Meter"], period=NOV, t1=D(value),
                              source="web"))
    session.commit()
    connection = session.connection()
    ledger_partitions.ensure_months(connection, [NOV])
    for _table, partition, column, _ref in ledger_partitions.expected_keys(
            ledger_partitions.existing(connection), NOV):
        connection.execute(text(f"ALTER TABLE {partition} DROP CONSTRAINT IF EXISTS "
                                f"{ledger_partitions.key_name(partition, column)}"))
    return krd, nvr


def keys(session) -> dict[str, bool]:
    """November's foreign keys as pg_constraint has them: name -> convalidated."""
    return dict(session.execute(text(
        "SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' "
        "AND conrelid::regclass::text IN ('charge_p2026_11', 'invoice_p2026_11')")).all())


def run(app, session, branch=None):
    return billing_runs.run_branches(session, NOV, app.config, today=TODAY, branch=branch)


def code_of(session, world) -> str:
    return session.get(m.Branch, world.branch_id).code


def bad_charge(session, account_id=999_999) -> int:
    return session.execute(text(
        "INSERT INTO charge (account_id, period, kwh, amount, kind, created_at) "
        "VALUES (:a, :p, 0, 1.00, 'adjustment', now()) RETURNING id"),
        {"a": account_id, "p": NOV}).scalar_one()


def test_the_last_branch_validates_the_months_keys_once(app, session, november):
    krd, nvr = november
    first = run(app, session, code_of(session, krd))
    assert [o.result.invoices for o in first] == [2]
    # One branch billed: the month is open, its rows written with no keys to check.
    assert keys(session) == {}
    assert billing_runs.complete_period(session, NOV) is None
    assert not ledger_partitions.is_checked(session.connection(), NOV)

    second = run(app, session, code_of(session, nvr))
    assert [o.result.invoices for o in second] == [2]
    assert keys(session) == dict.fromkeys(KEYS, True)
    assert ledger_partitions.is_checked(session.connection(), NOV)
    # Complete already: nothing is validated twice.
    assert billing_runs.complete_period(session, NOV) == []
    # Rows are no longer accepted unchecked.
    with pytest.raises(Exception, match="foreign key"):
        with session.begin_nested():
            bad_charge(session)


def test_a_bad_key_in_an_open_month_fails_the_period_with_the_row_named(app, session,
                                                                       november):
    krd, nvr = november
    run(app, session, code_of(session, krd))
    bad = bad_charge(session)  # accepted: the month is open
    with pytest.raises(LedgerKeysError) as caught:
        run(app, session, code_of(session, nvr))
    message = str(caught.value)
    assert "Ключи месяца 11.2026 не прошли проверку, строк с ошибкой: 1" in message
    assert f"строка начислений {bad} (лицевой счёт с id 999999 не существует)" in message
    assert "Месяц остаётся незавершённым" in message
    # The branch's own rows are kept; the month is marked incomplete: keys there, not valid.
    nvr_account = nvr.ids["PersonalAccount"]
    assert session.execute(select(m.Invoice.id).where(
        m.Invoice.account_id == nvr_account, m.Invoice.period == NOV)).scalar() is not None
    assert keys(session) == dict.fromkeys(KEYS, False)
    assert not ledger_partitions.is_checked(session.connection(), NOV)

    # Put right, the period run again (it bills nothing new) completes the month.
    session.execute(text("DELETE FROM charge WHERE id = :i"), {"i": bad})
    again = run(app, session)
    assert [o.result.invoices for o in again] == [0, 0]
    assert keys(session) == dict.fromkeys(KEYS, True)


def test_a_branch_run_again_after_completion_still_works(app, session, november):
    krd, _nvr = november
    run(app, session)
    whole = ledger(session)
    assert keys(session) == dict.fromkeys(KEYS, True)
    account = krd.ids["PersonalAccount"]
    for table in (m.Charge, m.Invoice):
        session.execute(table.__table__.delete().where(
            table.account_id == account, table.period == NOV))
    session.commit()
    again = run(app, session, code_of(session, krd))
    assert [(o.result.accounts, o.result.invoices) for o in again] == [(1, 1)]
    assert ledger(session) == whole
    assert keys(session) == dict.fromkeys(KEYS, True)


@pytest.mark.committed  # each thread's run commits on a connection of its own
def test_two_branches_billed_at_once_complete_the_month_once(app, session, november):
    krd, nvr = november
    session.commit()  # November's open tables, for the threads to see
    errors, barrier = [], threading.Barrier(2)

    def bill(code: str) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                billing_runs.run_branches(db.session, NOV, app.config, today=TODAY,
                                          branch=code)
            except Exception as error:  # reported to the test below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=bill, args=(code_of(session, w),)) for w in (krd, nvr)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    session.expire_all()
    charges, invoices = ledger(session)
    assert len(charges) == 4 and len(invoices) == 4
    assert keys(session) == dict.fromkeys(KEYS, True)


@pytest.mark.committed  # a job's run and its completion commit
def test_a_branch_job_that_finds_a_bad_key_fails_with_the_row_named(app, session, november):
    krd, _nvr = november
    session.commit()
    bad = bad_charge(session, account_id=888_888)
    session.commit()
    jobs = billing_runs.start_jobs(session, NOV, app.config, None)
    session.expire_all()
    failed = [job for job in jobs if session.get(m.BackgroundJob, job.id).status == "failed"]
    assert len(failed) == 1  # the last branch to finish, which found the period billed
    message = session.get(m.BackgroundJob, failed[0].id).message
    assert f"строка начислений {bad} (лицевой счёт с id 888888 не существует)" in message
    state = billing_runs.period_state(session, NOV, [session.get(m.BackgroundJob, j.id)
                                                     for j in jobs])
    assert not state.complete
    assert not ledger_partitions.is_checked(session.connection(), NOV)
    session.rollback()
    session.execute(text("DELETE FROM charge WHERE id = :i"), {"i": bad})
    session.commit()
    rerun = billing_runs.start_jobs(session, NOV, app.config, None, branch=code_of(session, krd))
    session.expire_all()
    assert session.get(m.BackgroundJob, rerun[0].id).status == "done"
    assert ledger_partitions.is_checked(session.connection(), NOV)


@pytest.mark.committed  # the writer holding the meters is another connection
def test_adding_the_keys_waits_for_a_writer_only_so_long(app, session, november, monkeypatch):
    """A meter write in flight holds up adding the keys (SHARE ROW EXCLUSIVE on meter) at
    most LOCK_TIMEOUT per attempt: then the month is left as it was, open, with a reason."""
    session.commit()
    monkeypatch.setattr(ledger_partitions, "LOCK_TIMEOUT", "200ms")
    monkeypatch.setattr(ledger_partitions.time, "sleep", lambda _seconds: None)
    with db.engine.connect() as writer:
        writer.execute(text("LOCK TABLE meter IN ROW EXCLUSIVE MODE"))
        started = time.monotonic()
        with pytest.raises(LedgerKeysError, match="Ключи месяца 11.2026 не добавлены: таблицы "
                                                  "заняты"):
            ledger_partitions.check_month(db.engine, NOV)
        assert time.monotonic() - started < 5  # three attempts of 200 ms, not the 20 s default
        assert keys(session) == {}
        session.rollback()
    assert sorted(ledger_partitions.check_month(db.engine, NOV)) == sorted(KEYS)
    assert keys(session) == dict.fromkeys(KEYS, True)


def test_only_the_postgresql_parents_keys_are_left_out_of_the_schema_comparison():
    """migrations/env.py and tests/test_migrations.py compare the models' keys of charge and
    invoice on SQLite, and not on PostgreSQL's partitioned parents, which have none."""
    charge_key = next(iter(m.Charge.__table__.foreign_keys)).constraint
    payment_key = next(iter(m.Payment.__table__.foreign_keys)).constraint
    on_pg, on_sqlite = ledger_partitions.compared("postgresql"), ledger_partitions.compared(
        "sqlite")
    assert not on_pg(charge_key, None, "foreign_key_constraint", False, None)
    assert on_pg(payment_key, None, "foreign_key_constraint", False, None)
    assert on_sqlite(charge_key, None, "foreign_key_constraint", False, None)


@pytest.mark.postgres
def test_the_benchmark_checks_the_months_keys_and_prints_its_ratios():
    if not pg_answers(pg_server_url()):
        pytest.skip("PostgreSQL does not answer")
    done = subprocess.run(
        [sys.executable, "bench/billing_run.py", "--only", "postgresql", "--accounts", "300",
         "--history-months", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.count("completion (the month's keys validated: 3)") == 2
    assert "keys validated after" in out
    assert "ratio billing_postgresql " in out and "ratio history_flat_postgresql " in out
