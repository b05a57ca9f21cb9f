"""Implausible readings are held «на проверке» (app.services.reading_checks): each rule (the
meter's digit capacity, a spike over the average month, the ceiling of the connected power),
on each entrance (the cabinet, the guest form, the app's queue in JSON, the API, the back
office), kept out of billing until staff accept them; a plausible reading is untouched."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import models as m
from app.services import billing, readings
from app.services.reading_checks import NOTE_LENGTH, Limits
from app.services.readings import Rules, Window
from tests.factories import PASSWORD
from tests.test_api import API, bearer, login

TODAY = dt.date(2026, 11, 20)  # 51 days from October 1st, the world's last reading (1234)
NOVEMBER = dt.date(2026, 11, 1)
NBSP = "\u00a0"
HOUSEHOLD = Rules(Window(15, 25), Limits(Decimal("5"), Decimal("15"), Decimal("150")))
#: 15 kW x 24 h x 51 days: the most a household connection draws from October 1st to TODAY.
CEILING = 15 * 24 * 51


@pytest.fixture
def today(monkeypatch):
    for module in ("readings", "admin_metering", "api_readings"):
        monkeypatch.setattr(f"app.views.{module}.local_today", lambda: TODAY)
    return TODAY


@pytest.fixture
def meter(session, two_branches):
    """Krasnodar's household meter (6 digits), its one reading 1234 in October."""
    krd, _ = two_branches
    return session.get(m.Meter, krd.ids["Meter"])


def with_history(session, meter, values=range(1000, 1600, 100)):
    """Accepted readings May..October: 100 kWh a month on average."""
    session.execute(m.Reading.__table__.delete().where(m.Reading.meter_id == meter.id))
    for month, value in zip(range(5, 11), values):
        session.add(m.Reading(meter_id=meter.id, period=dt.date(2026, month, 1),
                              t1=Decimal(value), source="web", status="accepted"))
    session.commit()


def assess(session, meter, value, rules=HOUSEHOLD, **kwargs):
    return readings.assess(session, meter, {"t1": str(value)}, TODAY, rules, **kwargs)


def kinds(assessment) -> list[str]:
    return [doubt.kind for doubt in assessment.doubts]


def november(session, meter_id) -> m.Reading | None:
    session.expire_all()
    return session.scalar(select(m.Reading).where(m.Reading.meter_id == meter_id,
                                                  m.Reading.period == NOVEMBER))


# The rule, over a session


def test_a_plausible_reading_is_accepted_as_before(session, meter):
    with_history(session, meter)
    result = assess(session, meter, 1620)
    assert not result.held and not result.needs_confirmation and result.doubts == []
    saved = readings.submit(session, meter, result, confirmed=False, source="web",
                            user_id=None, ip=None)
    assert (saved.status, saved.review_note) == ("accepted", None)


def test_a_value_longer_than_the_display_is_held(session, meter):
    loose = Rules(HOUSEHOLD.window, Limits(Decimal(10**6), Decimal(10**6), Decimal(10**6)))
    result = assess(session, meter, 1234567, loose)
    assert kinds(result) == ["capacity"] and result.needs_confirmation
    assert result.doubts[0].text == ("На табло счётчика 6 разрядов, а в показании больше "
                                     "цифр. Возможно, введены цифры после запятой.")
    with pytest.raises(readings.ReadingError, match="Подтвердите"):
        readings.submit(session, meter, result, confirmed=False, source="web", user_id=None,
                        ip=None)
    saved = readings.submit(session, meter, result, confirmed=True, source="web",
                            user_id=None, ip=None)
    assert saved.status == "flagged" and saved.review_note == result.doubts[0].text


def test_a_value_no_meter_can_show_is_refused(session, meter):
    with pytest.raises(readings.ReadingError, match="не может быть больше 9 цифр"):
        assess(session, meter, 10**9)


def test_a_spike_over_the_average_month_is_held(session, meter):
    with_history(session, meter)
    result = assess(session, meter, 2100)  # 600 kWh against 100 a month
    assert kinds(result) == ["spike"]
    assert result.doubts[0].text == (f"Расход 600{NBSP}кВт·ч более чем в 5 раз выше обычного: "
                                     f"в среднем 100{NBSP}кВт·ч в месяц.")
    assert not assess(session, meter, 2000).held  # 500: five times, not more


def test_the_spike_counts_the_months_since_the_previous_reading(session, meter):
    with_history(session, meter, values=[1000, 1100, 1200, 1300])  # May..August
    assert not assess(session, meter, 1300 + 1500).held  # 3 months: at most 5 x 100 x 3
    result = assess(session, meter, 1300 + 1501)
    assert kinds(result) == ["spike"] and " за 3 месяца " in result.doubts[0].text


def test_the_ceiling_of_the_connected_power(session, meter):
    """No average (one reading): the connection's ceiling is the only limit."""
    assert not assess(session, meter, 1234 + CEILING).held
    result = assess(session, meter, 1234 + CEILING + 1)
    assert kinds(result) == ["ceiling"]
    assert result.doubts[0].text == (
        f"Расход 18{NBSP}361{NBSP}кВт·ч больше возможного при мощности 15 кВт за 51 день: "
        f"не более 18{NBSP}360{NBSP}кВт·ч.")


def test_an_organizations_point_of_supply_has_its_own_power(session, two_branches):
    krd, _ = two_branches
    point = session.get(m.Meter, krd.ids["OrganizationMeter"])  # last reading 5678
    assert not assess(session, point, 5678 + CEILING + 1).held
    assert kinds(assess(session, point, 5678 + CEILING * 10 + 1)) == ["ceiling"]


def test_a_past_period_entered_by_staff_ends_with_its_month(session, meter):
    """October 1st to November 30th at most, whatever day it is entered on."""
    period = dt.date(2026, 11, 1)
    later = dt.date(2027, 3, 3)
    days = 61
    assert not readings.assess(session, meter, {"t1": str(1234 + 15 * 24 * days)}, later,
                               HOUSEHOLD, period=period).held
    assert readings.assess(session, meter, {"t1": str(1234 + 15 * 24 * days + 1)}, later,
                           HOUSEHOLD, period=period).held


def test_the_absurd_value_of_the_issue_names_every_reason_in_one_note(session, meter):
    with_history(session, meter)
    meter.digit_capacity = 6
    result = assess(session, meter, 9_999_999)
    assert kinds(result) == ["capacity", "spike", "ceiling"]
    saved = readings.submit(session, meter, result, confirmed=True, source="web",
                            user_id=None, ip=None)
    assert saved.status == "flagged" and len(saved.review_note) <= NOTE_LENGTH
    assert "разрядов" in saved.review_note and "выше обычного" in saved.review_note


# Billing


def run(session):
    return billing.run_period(session, NOVEMBER, norm_kwh=100, estimate_months=3, due_day=10,
                              today=dt.date(2026, 11, 29))


def metered(session, account_id) -> list[tuple]:
    return session.execute(select(m.Charge.kind, m.Charge.kwh).where(
        m.Charge.account_id == account_id, m.Charge.period == NOVEMBER)).all()


def held_spike(session, meter) -> m.Reading:
    """November's 2100 after 100 kWh months: 600 kWh, held (and within the first range)."""
    with_history(session, meter)
    held = readings.submit(session, meter, assess(session, meter, 2100), confirmed=True,
                           source="web", user_id=None, ip=None)
    assert held.status == "flagged"
    return held


def test_billing_skips_a_held_reading(session, meter):
    held_spike(session, meter)
    run(session)
    assert metered(session, meter.account_id) == [("average", Decimal("100.000"))]


def test_billing_charges_a_held_reading_once_staff_accept_it(session, meter):
    held = held_spike(session, meter)
    assert readings.review(session, [held.id], "accepted", None, None) == 1
    run(session)
    assert metered(session, meter.account_id) == [("metered", Decimal("600.000"))]


def test_billing_charges_a_plausible_reading_at_once(session, meter):
    with_history(session, meter)
    readings.submit(session, meter, assess(session, meter, 1620), confirmed=False,
                    source="web", user_id=None, ip=None)
    run(session)
    assert metered(session, meter.account_id) == [("metered", Decimal("120.000"))]


# The cabinet's form, the guest form and the app's queue


def test_the_cabinet_asks_then_holds_and_shows_the_status(client, session, owner, today):
    _user, krd, _nvr = owner
    account, meter_id = krd.ids["PersonalAccount"], krd.ids["Meter"]
    url = f"/cabinet/readings/{account}"
    field = f"m{meter_id}_t1"
    check = client.post(url, data={field: "30000", "action": "check"}).get_data(as_text=True)
    assert "Будет сохранено со статусом «На проверке»." in check
    assert "больше возможного при мощности 15" in check
    assert "Цифры верны — передать показания на проверку специалисту" in check
    unticked = client.post(url, data={field: "30000", "action": "confirm"})
    assert "Подтвердите показания" in unticked.get_data(as_text=True)
    assert november(session, meter_id) is None
    saved = client.post(url, data={field: "30000", "action": "confirm", "confirmed": "1"},
                        follow_redirects=True).get_data(as_text=True)
    assert "Показания сохранены со статусом «На проверке»" in saved
    assert november(session, meter_id).status == "flagged"
    page = client.get(url).get_data(as_text=True)
    assert "За ноябрь 2026 переданы: 30000 — на проверке." in page
    assert "до проверки они не попадут в счёт" in page
    history = client.get("/cabinet/readings-history/list/").get_data(as_text=True)
    assert "На проверке" in history and "больше возможного при мощности" in history


def test_a_plausible_reading_in_the_cabinet_is_accepted(client, session, owner, today):
    _user, krd, _nvr = owner
    url, field = f"/cabinet/readings/{krd.ids['PersonalAccount']}", f"m{krd.ids['Meter']}_t1"
    check = client.post(url, data={field: "1300", "action": "check"}).get_data(as_text=True)
    assert "«На проверке»" not in check
    client.post(url, data={field: "1300", "action": "confirm"})
    assert november(session, krd.ids["Meter"]).status == "accepted"
    assert "За ноябрь 2026 переданы: 1300 — приняты." in client.get(url).get_data(as_text=True)


def test_the_guest_form_holds_the_same_way(client, session, two_branches, today):
    krd, _ = two_branches
    client.post("/readings/", data={"account": "230000000001", "serial": "SN-krd-1"})
    field = f"m{krd.ids['Meter']}_t1"
    done = client.post("/readings/meter", data={field: "1234567", "action": "confirm",
                                                "confirmed": "1"}, follow_redirects=True)
    assert "Спасибо, показания получены." in done.get_data(as_text=True)
    reading = november(session, krd.ids["Meter"])
    assert reading.status == "flagged" and "6 разрядов" in reading.review_note


def test_the_queue_holds_a_value_longer_than_the_display(client, session, owner, today):
    _user, krd, _nvr = owner
    url, field = f"/cabinet/readings/{krd.ids['PersonalAccount']}", f"m{krd.ids['Meter']}_t1"
    headers = {"Accept": "application/json"}
    asked = client.post(url, data={field: "12345678", "action": "confirm"}, headers=headers)
    assert asked.status_code == 409 and asked.json["status"] == "confirm"
    assert "На табло счётчика 6 разрядов" in asked.json["message"]
    assert november(session, krd.ids["Meter"]) is None
    sent = client.post(url, data={field: "12345678", "action": "confirm", "confirmed": "1"},
                       headers=headers)
    assert sent.json["status"] == "accepted" and sent.json["held"] is True
    assert november(session, krd.ids["Meter"]).status == "flagged"
    plain = client.post(url, data={field: "1300", "action": "confirm"}, headers=headers)
    assert plain.json["held"] is False and plain.json["message"] == "Показания приняты."
    assert november(session, krd.ids["Meter"]).status == "accepted"


# The API


@pytest.fixture
def resident_api(client, session, make_user_fn, two_branches):
    from app.services.binding import bind_accounts

    krd, _ = two_branches
    user = make_user_fn("api-resident", "Resident", kind="resident", phone="+79181110022")
    bind_accounts(session, user.id, [("230000000001", "SN-krd-1")], None)
    token = login(client, "+7 918 111-00-22", password=PASSWORD).json["access_token"]
    return bearer(token), krd


def test_the_api_tells_held_and_why_then_shows_the_status(client, session, resident_api,
                                                          today):
    headers, krd = resident_api
    body = {"account_id": krd.ids["PersonalAccount"],
            "meters": [{"meter_id": krd.ids["Meter"], "t1": "30000"}]}
    (check,) = client.post(f"{API}/reading/check", json=body,
                           headers=headers).json["assessments"]
    assert check["held"] is True and check["spike"] is True and check["needs_confirmation"]
    assert check["held_reasons"] == [
        f"Расход 28{NBSP}766{NBSP}кВт·ч больше возможного при мощности 15 кВт за 51 день: "
        f"не более 18{NBSP}360{NBSP}кВт·ч."]
    saved = client.post(f"{API}/reading/", json={**body, "confirmed": True}, headers=headers)
    assert saved.status_code == 201
    assert saved.json["message"].startswith("Показания сохранены со статусом «На проверке»")
    (reading,) = saved.json["result"]
    assert reading["status"] == "flagged"
    assert reading["review_note"] == check["held_reasons"][0]
    shown = client.get(f"{API}/reading/{reading['id']}", headers=headers).json["result"]
    assert shown["status"] == "flagged"


def test_a_plausible_reading_over_the_api_is_accepted(client, session, resident_api, today):
    headers, krd = resident_api
    body = {"account_id": krd.ids["PersonalAccount"],
            "meters": [{"meter_id": krd.ids["Meter"], "t1": "1300"}]}
    (check,) = client.post(f"{API}/reading/check", json=body,
                           headers=headers).json["assessments"]
    assert (check["held"], check["held_reasons"]) == (False, [])
    saved = client.post(f"{API}/reading/", json=body, headers=headers).json
    assert saved["result"][0]["status"] == "accepted"


def test_the_served_spec_documents_the_status(client, make_user_fn):
    make_user_fn("admin", "Admin")
    client.post("/login/", data={"username": "admin", "password": PASSWORD})
    spec = client.get(f"{API}/_openapi").json
    status = spec["components"]["schemas"]["ReadingApi.get"]["properties"]["status"]
    assert status["enum"] == ["accepted", "flagged", "rejected"]
    assert "«На проверке»" in status["description"]


# The back office


@pytest.fixture
def operator(client, make_user_fn, login, two_branches):
    krd, _ = two_branches
    make_user_fn("operator", "Staff", branch_id=krd.branch_id)
    assert login("operator").status_code == 302
    return krd


def staff_form(meter_id: int, t1: str, status: str = "accepted") -> dict:
    return {"meter": str(meter_id), "period": "2026-11-01", "t1": t1, "source": "staff",
            "status": status}


def test_staff_entry_of_an_implausible_value_is_held_with_a_warning(client, session,
                                                                    operator, today):
    meter_id = operator.ids["Meter"]
    response = client.post("/readingview/add", data=staff_form(meter_id, "9999999"),
                           follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Показания сохранены со статусом «На проверке» и не попадут в счёт" in page
    assert "«Принять показания»" in page
    reading = november(session, meter_id)
    assert reading.status == "flagged" and reading.source == "staff"
    assert "6 разрядов" in reading.review_note


def test_staff_entry_of_a_plausible_value_is_accepted(client, session, operator, today):
    client.post("/readingview/add", data=staff_form(operator.ids["Meter"], "1300"))
    reading = november(session, operator.ids["Meter"])
    assert (reading.status, reading.t1) == ("accepted", Decimal("1300"))


def test_staff_entry_below_the_previous_is_refused(client, session, operator, today):
    page = client.post("/readingview/add", data=staff_form(operator.ids["Meter"], "1000"),
                       follow_redirects=True).get_data(as_text=True)
    assert "показание меньше предыдущего (1234)" in page
    assert november(session, operator.ids["Meter"]) is None


def test_staff_accept_a_held_reading_from_the_queue_and_it_is_billed(client, session,
                                                                     operator, today):
    meter_id = operator.ids["Meter"]
    with_history(session, session.get(m.Meter, meter_id))
    client.post("/readingview/add", data=staff_form(meter_id, "2100"))
    held = november(session, meter_id)
    assert held.status == "flagged" and "выше обычного" in held.review_note
    queue = client.get("/readingview/list/?_flt_0_status=flagged").get_data(as_text=True)
    assert "SN-krd-1" in queue
    client.post("/readingview/action_post", data={"action": "accept_flagged",
                                                  "rowid": [held.id]})
    assert november(session, meter_id).status == "accepted"
    run(session)
    account = session.get(m.Meter, meter_id).account_id
    assert metered(session, account) == [("metered", Decimal("600.000"))]


def test_staff_editing_a_held_reading(client, session, operator, today):
    """Changing its figures runs the rule again; accepting it as it is is staff's call."""
    meter_id = operator.ids["Meter"]
    client.post("/readingview/add", data=staff_form(meter_id, "20000"))
    held = november(session, meter_id)
    edit = {"t1": "99999", "status": "accepted", "review_note": ""}
    client.post(f"/readingview/edit/{held.id}", data=edit)
    assert november(session, meter_id).status == "flagged"
    client.post(f"/readingview/edit/{held.id}", data={**edit, "t1": "1300"})
    assert november(session, meter_id).status == "accepted"
    client.post(f"/readingview/edit/{held.id}", data={**edit, "t1": "99999",
                                                      "status": "flagged"})
    client.post(f"/readingview/edit/{held.id}", data={**edit, "t1": "99999"})
    assert november(session, meter_id).status == "accepted"
