"""Large reconciliation acts (app.services.act_jobs): the streamed ledger says exactly what the
small path says, an act above ACT_INLINE_ROWS_MAX is built by a background job and downloaded
from the same link when done, never by another organization, and the exporter is fed an
iterator, not a list."""
from __future__ import annotations

import datetime as dt
import io
import os
import random
import time
from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import unquote

import openpyxl
import pytest
from flask import g
from sqlalchemy import func, select

from app import models as m
from app.plugins.act_xlsx import XlsxActExporter, write_act
from app.services import act_exports, act_jobs, acts, background
from tests.test_acts import (
    XLSX,
    add_payment,
    back_office,
    document_rows,
    local,
    make_act,
    new_contract,
    sign_in_business,
)

PERIOD = (dt.date(2025, 1, 1), dt.date(2025, 12, 31))


@pytest.fixture
def files(app, tmp_path):
    folder = tmp_path / "act_exports"
    app.config["ACT_EXPORT_DIR"] = str(folder)
    return folder


@pytest.fixture
def no_worker(monkeypatch):
    """Jobs stay queued, as with a real worker that has not taken them yet; returns a call
    that runs the queued ones, as the worker would."""
    from app import tasks

    monkeypatch.setattr(tasks.run_background_job, "delay", lambda job_id: None)

    def work(session):
        for job_id in session.execute(select(m.BackgroundJob.id).where(
                m.BackgroundJob.status == "queued")).scalars().all():
            background.execute(session, job_id)
        session.expire_all()
    return work


def rich_ledger(session, world, seed: int = 7):
    """A contract whose ledger has every kind of row: invoices, corrections both ways,
    uninvoiced and negative charges, payments on month ends and two on one day, refunded and
    undated ones, invoice numbers where one is the other's prefix."""
    rng = random.Random(seed)
    org, contract, accounts = new_contract(session, world, accounts=3, director="Орлов О. О.")
    for month in range(1, 13):
        period = dt.date(2025, month, 1)
        for index, account in enumerate(accounts):
            amount = Decimal(rng.randint(-3000, 90000)) / 100
            if (index, month) == (2, 6):
                amount = Decimal("-12.34")  # a refund of a charge, not invoiced yet
            session.add(m.Charge(account_id=account.id, period=period, amount=amount,
                                 kind="metered"))
            if index == 2 and month % 3 == 0:
                continue  # not invoiced yet
            invoiced = amount + {0: Decimal("1.11"), 1: Decimal("-2.22")}.get(
                (month + index) % 4, 0)  # corrected after the invoice, down or up
            session.add(m.Invoice(account_id=account.id, period=period,
                                  number=f"L{account.id}-{month}" if index else f"L{month}",
                                  charged=invoiced, due_date=period + dt.timedelta(days=40)))
            add_payment(session, account, Decimal(rng.randint(100, 50000)) / 100,
                        local(2025, month, 10 + index))
        add_payment(session, accounts[0], "10.00", local(2025, month, 20, 9))
        add_payment(session, accounts[1], "20.00", local(2025, month, 20, 9))  # same moment
    session.add(m.Charge(account_id=accounts[0].id, period=dt.date(2024, 12, 1),
                         amount=Decimal("555.55"), kind="metered"))       # the opening
    add_payment(session, accounts[0], "111.11", local(2024, 12, 31, 23, 59))
    add_payment(session, accounts[1], "77.00", local(2025, 3, 31, 23))  # a month's last day
    add_payment(session, accounts[1], "999.00", local(2025, 4, 2), status="refunded")
    add_payment(session, accounts[2], "33.33", local(2025, 5, 5), paid_at_known=False)
    session.commit()
    return org, contract


def test_streamed_ledger_is_the_small_path_row_for_row(app, session, two_branches):
    krd, _ = two_branches
    _org, contract = rich_ledger(session, krd)
    for start, end in (PERIOD, (dt.date(2025, 3, 15), dt.date(2025, 8, 31)),
                       (dt.date(2025, 4, 1), dt.date(2025, 4, 29))):
        small = acts.ledgers(session, [contract.id], start, end)[contract.id]
        streamed = act_jobs.streamed_ledger(session, contract.id, start, end)
        assert isinstance(streamed.rows, Iterator)
        assert list(streamed.rows) == small.rows
        assert (streamed.count, streamed.opening, streamed.debit_total,
                streamed.credit_total) == (len(small.rows), small.opening, small.debit_total,
                                           small.credit_total)
    year = acts.ledgers(session, [contract.id], *PERIOD)[contract.id].rows
    kinds = {(r.document.split()[0], r.debit is None) for r in year}
    assert {("Счёт", False), ("Корректировка", False), ("Корректировка", True),
            ("Начисление", False), ("Начисление", True), ("Оплата", True)} <= kinds
    assert {r.document.split()[0] for r in small.rows} == {"Оплата"}  # April, its last day out


def _job(session) -> m.BackgroundJob:
    return session.execute(select(m.BackgroundJob).where(
        m.BackgroundJob.kind == act_jobs.JOB_KIND).order_by(m.BackgroundJob.id.desc())
    ).scalars().first()


@pytest.mark.committed  # a job writes its progress on a connection of its own
def test_large_act_is_built_in_the_background_for_its_organization_only(
        app, client, session, two_branches, make_user_fn, login, files, no_worker,
        monkeypatch):
    krd, nvr = two_branches
    org, contract = rich_ledger(session, krd)
    act = make_act(session, org, contract, *PERIOD, status="ready")
    rows = act_jobs.count_rows(session, act)
    assert rows > 60
    seen = []
    original = XlsxActExporter.export

    def spy(self, data, stream):
        seen.append(data.rows)
        return original(self, data, stream)

    monkeypatch.setattr(XlsxActExporter, "export", spy)
    sign_in_business(client, make_user_fn, org, "org-large")
    url = f"/business/acts/{act.id}.xlsx"

    # At the threshold the act is still built in the request, as every small act.
    app.config["ACT_INLINE_ROWS_MAX"] = rows
    now = client.get(url)
    assert now.status_code == 200 and now.mimetype == XLSX and _job(session) is None
    assert isinstance(seen.pop(), list)

    app.config["ACT_INLINE_ROWS_MAX"] = rows - 1
    asked = client.get(url, follow_redirects=True)
    body = asked.get_data(as_text=True)
    assert asked.request.path == "/business/acts/"
    assert f"Акт сверки № {act.id} большой ({rows} строк) — он готовится." in body
    assert "Excel (.xlsx): готовится" in body
    again = client.get(url, follow_redirects=True).get_data(as_text=True)
    assert f"Акт сверки № {act.id} ещё готовится (0 %)." in again
    assert session.scalar(select(func.count(m.BackgroundJob.id))) == 1

    no_worker(session)
    job = _job(session)
    assert (job.status, job.message) == ("done", f"Готово: акт сверки № {act.id}, {rows} строк.")
    rows_given = seen.pop()
    assert not isinstance(rows_given, list | tuple) and isinstance(rows_given, Iterator)
    done = client.get(url)
    assert done.status_code == 200 and done.mimetype == XLSX
    assert unquote(done.headers["Content-Disposition"]).endswith(
        f"Акт_сверки_{contract.number}_2025-01-01_2025-12-31.xlsx")
    assert "готовится" not in client.get("/business/acts/").get_data(as_text=True)
    assert session.scalar(select(func.count(m.AuditEvent.id)).where(
        m.AuditEvent.action == "act.downloaded", m.AuditEvent.object_id == str(act.id))) == 2

    # The file says what the small path says: the same rows, turnovers and balances.
    small = io.BytesIO()
    write_act(acts.act_data(session, act), small)
    expected = openpyxl.load_workbook(small).active
    got = openpyxl.load_workbook(io.BytesIO(done.data)).active
    expected_rows, expected_end = document_rows(expected)
    got_rows, got_end = document_rows(got)
    assert got_rows == expected_rows and len(got_rows) == rows
    for offset in (0, 1):  # «Обороты за период», «Сальдо конечное»
        assert [got.cell(got_end + offset, c).value for c in range(1, 6)] == \
            [expected.cell(expected_end + offset, c).value for c in range(1, 6)]
    assert got.cell(got_end + 3, 1).value == expected.cell(expected_end + 3, 1).value

    # Another organization reaches neither the act nor its file; its own small act downloads.
    stranger = app.test_client()
    g.pop("_login_user", None)  # the test's app context outlives a request: forget its user
    other = session.get(m.Organization, nvr.ids["Organization"])
    sign_in_business(stranger, make_user_fn, other, "org-other")
    assert stranger.get(url).status_code == 404
    assert stranger.get(f"/business/acts/{act.id}.pdf").status_code == 404
    own = session.get(m.ReconciliationAct, nvr.ids["ReconciliationAct"])
    acts.decide(session, own, None, "ready")
    assert stranger.get(f"/business/acts/{own.id}.xlsx").status_code == 200
    assert act_jobs.latest_job(session, own, "xlsx") is None
    # Nor does finance of another branch; finance of the act's branch gets the same file.
    client.post("/logout/")
    back_office(client, make_user_fn, login, "Finance", nvr.branch_id)
    assert client.get(f"/reconciliationactview/document/{act.id}/xlsx").status_code == 404
    client.post("/logout/")
    back_office(client, make_user_fn, login, "Finance", krd.branch_id)
    card = client.get(f"/reconciliationactview/show/{act.id}").get_data(as_text=True)
    assert "файл большого акта сформирован" in card
    office = client.get(f"/reconciliationactview/document/{act.id}/xlsx")
    assert office.status_code == 200 and office.data == done.data

    # The file goes with the branch exports, after ACT_EXPORT_KEEP_DAYS; then it is made anew.
    path = act_jobs.job_file(job)
    old = time.time() - (app.config["ACT_EXPORT_KEEP_DAYS"] + 1) * 86400
    os.utime(path, (old, old))
    assert act_exports.prune_archives() == 1 and act_jobs.job_file(job) is None
    anew = client.get(f"/reconciliationactview/document/{act.id}/xlsx", follow_redirects=True)
    assert "он готовится" in anew.get_data(as_text=True)
    assert session.scalar(select(func.count(m.BackgroundJob.id))) == 2


def test_large_act_in_pdf_has_a_limit_and_small_acts_start_no_job(
        app, client, session, two_branches, make_user_fn, files, monkeypatch):
    krd, _ = two_branches
    org, contract = rich_ledger(session, krd)
    act = make_act(session, org, contract, *PERIOD, status="ready")
    sign_in_business(client, make_user_fn, org, "org-pdf")
    app.config["ACT_INLINE_ROWS_MAX"] = 20
    monkeypatch.setattr(act_jobs, "PDF_ROWS_MAX", 30)
    refused = client.get(f"/business/acts/{act.id}.pdf", follow_redirects=True)
    assert f"Акт сверки № {act.id} слишком большой для PDF" in refused.get_data(as_text=True)
    assert "скачайте его в Excel (.xlsx)." in refused.get_data(as_text=True)
    assert _job(session) is None
    app.config["ACT_INLINE_ROWS_MAX"] = 5000
    assert client.get(f"/business/acts/{act.id}.pdf").data.startswith(b"%PDF")
    assert _job(session) is None


@pytest.mark.committed  # a job writes its progress on a connection of its own
def test_the_app_is_told_to_come_back_for_a_large_act_and_its_letter_carries_a_link(
        app, client, session, two_branches, make_user_fn, files, no_worker, monkeypatch,
        tmp_path):
    from tests.test_api import API, bearer, login
    from tests.test_notices import Outbox

    krd, nvr = two_branches
    org, contract = rich_ledger(session, krd)
    act = make_act(session, org, contract, *PERIOD, status="requested")
    requester = make_user_fn("api-large", "Business", kind="business", organization_id=org.id)
    make_user_fn("api-other", "Business", kind="business",
                 organization_id=nvr.ids["Organization"])
    act.requested_by_id = requester.id
    session.commit()
    rows = act_jobs.count_rows(session, act)
    app.config["ACT_INLINE_ROWS_MAX"] = rows - 1
    acts.decide(session, act, None, "ready")
    letter, = Outbox(tmp_path / "outbox").emails(requester.email)
    assert letter["attachments"] == [] and "/business/acts/" in letter["text"]

    own = bearer(login(client, "api-large", krd.branch_id).json["access_token"])
    other = bearer(login(client, "api-other", nvr.branch_id).json["access_token"])
    url = f"{API}/act/{act.id}/file?format=xlsx"
    asked = client.get(url, headers=own)
    assert asked.status_code == 202 and asked.headers["Retry-After"] == "30"
    assert asked.json["message"].startswith(f"Акт сверки № {act.id} большой ({rows} строк)")
    assert client.get(url, headers=other).status_code == 404
    monkeypatch.setattr(act_jobs, "PDF_ROWS_MAX", rows - 1)
    too_big = client.get(f"{API}/act/{act.id}/file?format=pdf", headers=own)
    assert too_big.status_code == 409 and "слишком большой для PDF" in too_big.json["message"]
    no_worker(session)
    done = client.get(url, headers=own)
    assert done.status_code == 200 and done.mimetype == XLSX
    assert len(document_rows(openpyxl.load_workbook(io.BytesIO(done.data)).active)[0]) == rows
