"""A period billed by two Celery workers on Redis, one branch each, at the same time: the
ledger comes out exactly as one process billing every branch would write it."""
from __future__ import annotations

import datetime as dt
import secrets
import time
from decimal import Decimal as D

import pytest
from celery import Celery
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app import models as m
from app.services import background, billing, billing_runs
from tests.test_jobs import _start_worker, _stop

NOV = dt.date(2026, 11, 1)


def ledger(session) -> tuple[list, list]:
    session.expire_all()
    charges = session.execute(select(
        m.Charge.account_id, m.Charge.meter_id, m.Charge.zone, m.Charge.range_no, m.Charge.kwh,
        m.Charge.rate, m.Charge.amount, m.Charge.kind).where(m.Charge.period == NOV)
        .order_by(m.Charge.account_id, m.Charge.zone, m.Charge.range_no)).all()
    invoices = session.execute(select(
        m.Invoice.account_id, m.Invoice.number, m.Invoice.opening_balance, m.Invoice.charged,
        m.Invoice.paid, m.Invoice.amount_due, m.Invoice.due_date).where(m.Invoice.period == NOV)
        .order_by(m.Invoice.account_id)).all()
    return charges, invoices


def wait(results, workers, logs, seconds=90):
    deadline = time.monotonic() + seconds
    while not all(r.ready() for r in results):
        for worker, log in zip(workers, logs, strict=True):
            assert worker.poll() is None, f"a worker died:\n{log.read_text()}"
        assert time.monotonic() < deadline, "\n".join(log.read_text() for log in logs)
        time.sleep(0.1)


@pytest.mark.redis
@pytest.mark.committed  # worker processes read and write the data
def test_two_workers_bill_two_branches_as_one_process_would(
        app, session, two_branches, database_url, redis_url, tmp_path):
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        pytest.skip("worker processes cannot share an in-memory SQLite database")
    krd, nvr = two_branches
    for world, value in ((krd, "1334"), (nvr, "1500")):
        session.add(m.Reading(meter_id=world.ids["Meter"], period=NOV, t1=D(value),
                              source="web"))
    session.commit()
    queues = [f"lk-bill-{secrets.token_hex(4)}" for _ in range(2)]
    logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
    env = {"READING_WINDOW_LAST_DAY": "31"}
    workers = [_start_worker(redis_url, database_url, queue, tmp_path, log, **env)
               for queue, log in zip(queues, logs, strict=True)]
    client = Celery("lk-test-billing", broker=redis_url, backend=redis_url)
    try:
        # Both workers up before any billing is sent, so that the two runs overlap.
        wait([client.send_task("lk_portal.ping_database", queue=q) for q in queues],
             workers, logs)
        jobs = [background.create(session, billing_runs.JOB_KIND, f"Расчёт: {w.branch_id}",
                                  {"period": NOV.isoformat(), "branch_id": w.branch_id},
                                  None) for w in (krd, nvr)]
        results = [client.send_task("lk_portal.run_background_job", args=[job.id], queue=q)
                   for job, q in zip(jobs, queues, strict=True)]
        wait(results, workers, logs)
        session.expire_all()
        assert [r.get(timeout=5) for r in results] == ["done", "done"], [
            session.get(m.BackgroundJob, job.id).message for job in jobs]
    finally:
        client.close()
        codes = [_stop(worker) for worker in workers]
    assert codes == [0, 0]
    for result, log in zip(results, logs, strict=True):  # each worker ran its own branch
        assert f"lk_portal.run_background_job[{result.id}] succeeded" in log.read_text()
    session.expire_all()
    assert [session.get(m.BackgroundJob, j.id).message for j in jobs] == [
        "Период 11.2026: лицевых счетов 2, строк начислений 2, счетов 2."] * 2
    by_workers = ledger(session)
    assert len(by_workers[0]) == 4 and len(by_workers[1]) == 4

    session.execute(m.Charge.__table__.delete().where(m.Charge.period == NOV))
    session.execute(m.Invoice.__table__.delete().where(m.Invoice.period == NOV))
    session.commit()
    billing.run_period(session, NOV, norm_kwh=100, estimate_months=3, due_day=10,
                       today=dt.date(2026, 11, 30))
    assert ledger(session) == by_workers


def test_the_command_bills_branch_by_branch_and_one_alone(app, runner, session, two_branches):
    krd, nvr = two_branches
    code = session.get(m.Branch, krd.branch_id).code
    alone = runner.invoke(args=["billing", "run", "--period", "2026-11", "--branch", code])
    assert alone.exit_code == 0, alone.output
    assert "Период 11.2026: лицевых счетов 2, строк начислений 2, счетов 2." in alone.output
    rest = runner.invoke(args=["billing", "run", "--period", "2026-11"])
    assert rest.exit_code == 0, rest.output
    # The branch billed alone is not billed twice; the other one is billed now.
    assert "Период 11.2026: лицевых счетов 2, строк начислений 2, счетов 2." in rest.output
    assert session.get(m.Branch, nvr.branch_id).name in rest.output
    unknown = runner.invoke(args=["billing", "run", "--period", "2026-11", "--branch", "xx"])
    assert unknown.exit_code != 0 and "Филиал «xx» не найден" in unknown.output


@pytest.mark.committed  # a job writes its progress on a connection of its own
def test_a_large_branch_is_billed_in_parts_as_one_run_would(app, client, session, login,
                                                           make_user_fn, two_branches):
    krd, nvr = two_branches
    for world, value in ((krd, "1334"), (nvr, "1500")):
        session.add(m.Reading(meter_id=world.ids["Meter"], period=NOV, t1=D(value),
                              source="web"))
    session.commit()
    billing.run_period(session, NOV, norm_kwh=100, estimate_months=3, due_day=10,
                       today=dt.date(2026, 11, 30))
    whole = ledger(session)
    session.execute(m.Charge.__table__.delete().where(m.Charge.period == NOV))
    session.execute(m.Invoice.__table__.delete().where(m.Invoice.period == NOV))
    session.commit()

    app.config["BILLING_TASK_ACCOUNTS"] = 1  # each branch's two accounts: two parts
    make_user_fn("finance", "Finance")
    login("finance")
    page = client.post("/billingrunview/add/", data={"period": "2026-11"},
                       follow_redirects=True).get_data(as_text=True)
    assert "Расчёт за 11.2026: филиалов 2 (задач 4), готово 4." in page
    assert "рассчитаны все филиалы (2)." in page
    titles = sorted(session.execute(select(m.BackgroundJob.title)).scalars())
    name = session.get(m.Branch, krd.branch_id).name
    assert f"Расчёт начислений за 11.2026: {name} (часть 2 из 2)" in titles
    assert ledger(session) == whole
    with pytest.raises(billing.BillingError, match="Часть 3 из 2 не существует"):
        billing.run_period(session, NOV, norm_kwh=100, estimate_months=3, due_day=10,
                           part=2, parts=2)
