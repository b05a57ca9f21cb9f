"""Meter verification (поверка): the one rule (the date itself still counts), the warnings on the
cabinet's overview and the readings form for the user's own meters only, a reading of an
overdue meter kept but not billed, the application «Поверка или замена прибора учёта» opened
prefilled from the warning, and the notice METER_VERIFICATION_WARN_DAYS ahead, sent once per
meter and date (also through `flask notices send`)."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app import models as m
from app.services import histories, notice_events, verification

TODAY = dt.date(2026, 11, 20)  # the reading window is open
SOON = TODAY + dt.timedelta(days=30)
PAST = dt.date(2026, 11, 1)


def text(response) -> str:
    return response.get_data(as_text=True).replace("\u00a0", " ")


def emails(tmp_path) -> list[dict]:
    folder = tmp_path / "outbox"
    found = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] \
        if folder.exists() else []
    return [n for n in found if n["channel"] == "dev-email"]


@pytest.fixture
def today(monkeypatch):
    for where in ("cabinet", "readings", "applications"):
        monkeypatch.setattr(f"app.views.{where}.local_today", lambda: TODAY)


@pytest.fixture
def meters(session, owner, today):
    """The owner's Krasnodar meter and the neighbour's Novorossiysk one, whose verification
    dates a test sets: set(krd_due, nvr_due)."""
    _user, krd, nvr = owner
    own, other = session.get(m.Meter, krd.ids["Meter"]), session.get(m.Meter, nvr.ids["Meter"])

    def _set(own_due, other_due=PAST):
        own.verification_due, other.verification_due = own_due, other_due
        session.commit()
        return own, other

    return _set


# The rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize("due, overdue, warned", [
    (None, False, False),
    (TODAY + dt.timedelta(days=61), False, False),
    (TODAY + dt.timedelta(days=60), False, True),
    (TODAY, False, True),  # verified «до» today: still counts today
    (TODAY - dt.timedelta(days=1), True, True),
])
def test_one_rule_for_python_sql_and_the_meters_history(session, two_branches, due, overdue,
                                                        warned):
    krd, _ = two_branches
    meter = session.get(m.Meter, krd.ids["Meter"])
    meter.verification_due = due
    session.commit()
    assert verification.overdue(due, TODAY) is overdue
    assert [d.overdue for d in verification.warnings([meter], TODAY, 60)] == (
        [overdue] if warned else [])
    in_sql = session.scalars(select(m.Meter.id).where(
        m.Meter.id == meter.id, verification.due_clause(m.Meter.verification_due, TODAY, 60),
        verification.overdue_clause(m.Meter.verification_due, TODAY) == overdue)).all()
    assert in_sql == ([meter.id] if warned else [])
    assert (histories.meter_status(meter, TODAY).label == "Истёк срок поверки") is overdue


# The overview and the readings form ----------------------------------------------------------


def test_overview_warns_of_own_meters_only_with_the_application_link(client, meters):
    own, other = meters(SOON)
    home = text(client.get("/cabinet/"))
    assert (f"Срок поверки счётчика № {own.serial} — до {SOON:%d.%m.%Y}. Подайте заявку на "
            "поверку или замену, чтобы начисления шли по показаниям.") in home
    assert f"/cabinet/applications/new?kind=verification&amp;meter={own.id}" in home
    assert other.serial not in home and f"meter={other.id}" not in home

    meters(PAST, SOON)
    home = text(client.get("/cabinet/"))
    assert (f"Срок поверки счётчика № {own.serial} истёк 01.11.2026: показания этого счётчика "
            "не принимаются к расчёту, начисления идут по среднему, затем по нормативу.") in home
    assert 'class="alert alert-danger verification-due"' in home
    assert other.serial not in home

    meters(TODAY + dt.timedelta(days=61))
    assert "Срок поверки" not in text(client.get("/cabinet/"))


def test_readings_form_warns_and_an_overdue_reading_is_kept_but_not_billed(
        client, session, owner, meters):
    _user, krd, nvr = owner
    own, _other = meters(SOON)
    url = f"/cabinet/readings/{krd.ids['PersonalAccount']}"
    form = text(client.get(url))
    assert f"Срок поверки счётчика № {own.serial} — до {SOON:%d.%m.%Y}." in form
    assert f"meter={own.id}" in form
    check = text(client.post(url, data={f"m{own.id}_t1": "1334", "action": "check"}))
    assert "Показания не попадут в расчёт" not in check and "Ориентировочно к начислению" in check
    assert client.get(f"/cabinet/readings/{nvr.ids['PersonalAccount']}").status_code == 404

    meters(PAST)
    check = text(client.post(url, data={f"m{own.id}_t1": "1334", "action": "check"}))
    note = (f"Срок поверки счётчика № {own.serial} истёк 01.11.2026: его показания сохраняются, "
            "но к расчёту не принимаются")
    assert "Показания не попадут в расчёт." in check and note in check
    assert "Ориентировочно к начислению" not in check  # no estimate of a reading not billed
    done = client.post(url, data={f"m{own.id}_t1": "1334", "action": "confirm"},
                       follow_redirects=True)
    assert "Показания приняты. " + note in text(done)
    saved = session.scalars(select(m.Reading).where(m.Reading.meter_id == own.id,
                                                    m.Reading.period == TODAY.replace(day=1)))
    assert [(r.t1, r.status) for r in saved] == [(Decimal("1334"), "accepted")]

    queued = client.post(url, data={f"m{own.id}_t1": "1340"},
                         headers={"Accept": "application/json"})
    answer = queued.get_json()
    assert answer["status"] == "accepted" and note in answer["message"].replace("\u00a0", " ")


# The application ----------------------------------------------------------------------------


def test_the_link_opens_the_application_prefilled_for_own_meters_only(client, session, owner,
                                                                      meters):
    user, krd, _nvr = owner
    own, other = meters(PAST, SOON)
    page = text(client.get(f"/cabinet/applications/new?kind=verification&meter={own.id}"))
    assert "<h2>Заявка на поверку или замену прибора учёта</h2>" in page
    assert '<option value="verification" selected>Поверка или замена прибора учёта' in page
    assert f'<option value="{krd.branch_id}" selected>' in page
    assert "Краснодар, ул. Красная, д. 1, кв. 1" in page
    assert (f"Прошу провести поверку или заменить счётчик № {own.serial} (лицевой счёт "
            "230000000001, срок поверки истёк 01.11.2026).") in page

    foreign = text(client.get(f"/cabinet/applications/new?kind=verification&meter={other.id}"))
    assert other.serial not in foreign and "Новороссийск, ул. Красная" not in foreign
    assert '<option value="verification" selected>' in foreign
    for junk in ("x", "9" * 30, "-1"):
        assert client.get(f"/cabinet/applications/new?kind=nope&meter={junk}").status_code == 200

    # Neither the cadastral number nor scans are needed for it: the premises are known.
    sent = client.post(f"/cabinet/applications/new?kind=verification&meter={own.id}", data={
        "kind": "verification", "branch_id": str(krd.branch_id), "applicant_name": "Тест Owner",
        "address": "Краснодар, ул. Красная, д. 1, кв. 1", "cadastral_number": "",
        "phone": "+7 918 555-00-99", "email": "", "comment": "Счётчик № SN-krd-1"})
    assert sent.status_code == 302, text(sent)
    application = session.scalars(select(m.ContractApplication)
                                  .where(m.ContractApplication.user_id == user.id)).one()
    assert (application.kind, application.cadastral_number, application.attachments) == (
        "verification", None, [])


# The notice -----------------------------------------------------------------------------------


def test_the_notice_goes_once_per_meter_and_date_to_the_right_users(app, session, owner,
                                                                    meters, tmp_path):
    user, _krd, _nvr = owner
    own, other = meters(SOON, TODAY + dt.timedelta(days=90))
    assert notice_events.meter_verification_due(session, TODAY) == 1
    [letter] = emails(tmp_path)
    assert letter["to"] == user.email
    assert letter["subject"] == f"Скоро истекает срок поверки счётчика № {own.serial}"
    assert f"поверка до {SOON:%d.%m.%Y}" in letter["text"]
    assert (f"{app.config['PORTAL_URL'].rstrip('/')}/cabinet/applications/new"
            f"?kind=verification&meter={own.id}") in letter["text"]
    assert other.serial not in letter["text"]

    for day in (TODAY, TODAY + dt.timedelta(days=1)):  # a retried run, the next day's run
        assert notice_events.meter_verification_due(session, day) == 0
    own.verification_due = SOON + dt.timedelta(days=7)  # a new date: warned again
    other.verification_due = TODAY - dt.timedelta(days=1)  # already past: the pages say it
    session.commit()
    assert notice_events.meter_verification_due(session, TODAY) == 1
    assert len(emails(tmp_path)) == 2


def test_the_cli_sends_it_once(runner, meters, tmp_path):
    meters(SOON, SOON)
    args = ["notices", "send", "meter-verification-due", "--date", TODAY.isoformat()]
    first = runner.invoke(args=args)
    assert first.exit_code == 0, first.output
    assert "Уведомлений «meter-verification-due» отправлено: 2." in first.output
    assert "отправлено: 0." in runner.invoke(args=args).output
    assert len(emails(tmp_path)) == 2


def test_warnings_take_any_meter_like_row():
    row = SimpleNamespace(id=7, serial="A-1", verification_due=TODAY)
    [due] = verification.warnings([row], TODAY, 0)
    assert (due.meter_id, due.overdue) == (7, False)
    assert verification.reading_note(row, TODAY) is None
    assert "истёк 20.11.2026" in verification.reading_note(row, TODAY + dt.timedelta(days=1))
