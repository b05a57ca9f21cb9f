"""The resident's cabinet: the overview, the readings form with its estimate, readings without
signing in, and the resident's own lists; every route tried with another user's ids."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models import Charge, Invoice, Meter, Payment, PersonalAccount, Reading
from app.services import tariffs

IN_WINDOW = dt.date(2026, 11, 20)


def page_text(response) -> str:
    return response.get_data(as_text=True).replace("\u00a0", " ")


@pytest.fixture
def today(monkeypatch):
    """Pin the cabinet's idea of today (the reading window counts local days)."""
    def _set(day: dt.date):
        monkeypatch.setattr("app.views.cabinet.local_today", lambda: day)
        monkeypatch.setattr("app.views.readings.local_today", lambda: day)
    _set(IN_WINDOW)
    return _set


def readings_of(session, meter_id):
    return session.execute(select(Reading).where(Reading.meter_id == meter_id)
                           .order_by(Reading.period)).scalars().all()


def test_overview_shows_balance_last_bill_and_meter_status(client, owner, today):
    _user, krd, _nvr = owner
    home = page_text(client.get("/cabinet/"))
    assert "Лицевой счёт 230000000001" in home and "230000000002" not in home
    assert "Задолженность 235,00 ₽" in home
    assert "<dt>Начислено за октябрь 2026</dt><dd>735,00 ₽</dd>" in home
    assert "Ждём показания" in home and "(до 25 числа)" in home
    today(dt.date(2026, 11, 27))
    assert "Показания не переданы" in page_text(client.get("/cabinet/"))
    today(dt.date(2026, 11, 3))
    assert "Приём показаний ещё не начался" in page_text(client.get("/cabinet/"))
    for href in (f"/cabinet/readings/{krd.ids['PersonalAccount']}",):
        assert href in home


def test_reading_is_checked_priced_then_saved(client, session, owner, today):
    _user, krd, _nvr = owner
    url = f"/cabinet/readings/{krd.ids['PersonalAccount']}"
    meter_id = krd.ids["Meter"]
    form = page_text(client.get(url))
    assert "Предыдущее: <b>1234</b> на октябрь 2026" in form
    check = page_text(client.post(url, data={f"m{meter_id}_t1": "1 334", "action": "check"}))
    assert "Итого расход" in check
    assert '<td class="text-right" data-label="Расход">100 кВт·ч</td>' in check
    assert "Ориентировочно к начислению" in check and "735,00" in check
    assert "1-й, в пределах нормы" in check
    assert len(readings_of(session, meter_id)) == 1, "checking must not save"
    done = client.post(url, data={f"m{meter_id}_t1": "1334", "action": "confirm"})
    assert done.status_code == 302
    saved = readings_of(session, meter_id)[-1]
    assert (saved.period, saved.t1, saved.status) == (dt.date(2026, 11, 1), Decimal("1334"),
                                                     "accepted")
    assert "Показания переданы" in page_text(client.get("/cabinet/"))


@pytest.mark.parametrize("value, message", [
    ("1334,5", "введите целое число киловатт-часов"),
    ("-5", "не может быть отрицательным"),
    ("двенадцать", "показание должно быть числом"),
    ("", "введите показание"),
    ("1000", "показание меньше предыдущего (1234)"),
    ("1000000000", "в показании не может быть больше 9 цифр"),
])
def test_bad_values_get_a_clear_message_and_change_nothing(client, session, owner, today,
                                                           value, message):
    _user, krd, _nvr = owner
    url = f"/cabinet/readings/{krd.ids['PersonalAccount']}"
    for action in ("check", "confirm"):
        r = client.post(url, data={f"m{krd.ids['Meter']}_t1": value, "action": action})
        assert r.status_code == 200 and message in page_text(r)
    assert len(readings_of(session, krd.ids["Meter"])) == 1


def test_outside_the_window_nothing_is_taken(client, session, owner, today):
    _user, krd, _nvr = owner
    today(dt.date(2026, 11, 27))
    r = client.post(f"/cabinet/readings/{krd.ids['PersonalAccount']}",
                    data={f"m{krd.ids['Meter']}_t1": "1300", "action": "confirm"})
    assert "Показания принимаются с 15 по 25 число месяца" in page_text(r)
    assert "Следующий приём начнётся 15.12.2026" in page_text(r)
    assert len(readings_of(session, krd.ids["Meter"])) == 1


def test_outside_the_window_the_form_is_shut_with_one_line_saying_when_it_opens(
        app, client, owner, today):
    _user, krd, _nvr = owner
    app.config.update(READING_WINDOW_FIRST_DAY=5, READING_WINDOW_LAST_DAY=10)
    today(dt.date(2026, 11, 27))
    body = client.get(f"/cabinet/readings/{krd.ids['PersonalAccount']}").get_data(as_text=True)
    text = " ".join(re.sub(r"<[^>]+>", " ", body).split())
    assert "Сейчас показания не принимаются: приём откроется 05.12.2026 (принимаем с 5 по 10 " \
           "число месяца)." in text
    assert text.count("не принимаются") == 1 and "Показания принимаются" not in text
    assert re.search(r"<fieldset\s+disabled>", body), "the inputs and the button are off"
    today(dt.date(2026, 12, 7))
    body = client.get(f"/cabinet/readings/{krd.ids['PersonalAccount']}").get_data(as_text=True)
    assert "не принимаются" not in body and "<fieldset>" in body
    assert "Показания принимаются с 5 по 10 число месяца" in " ".join(body.split())


def test_implausible_and_rollover_need_confirmation(client, session, owner, today):
    _user, krd, _nvr = owner
    url = f"/cabinet/readings/{krd.ids['PersonalAccount']}"
    field = f"m{krd.ids['Meter']}_t1"
    check = page_text(client.post(url, data={field: "21234", "action": "check"}))
    assert "Показания выглядят неправдоподобно" in check and 'name="confirmed"' in check
    refused = client.post(url, data={field: "21234", "action": "confirm"})
    assert "Подтвердите показания" in page_text(refused)
    assert len(readings_of(session, krd.ids["Meter"])) == 1
    client.post(url, data={field: "21234", "action": "confirm", "confirmed": "1"})
    assert readings_of(session, krd.ids["Meter"])[-1].status == "flagged"

    session.execute(Reading.__table__.update().where(
        Reading.period == dt.date(2026, 10, 1), Reading.meter_id == krd.ids["Meter"]
    ).values(t1=Decimal("999900")))
    session.commit()
    rollover = page_text(client.post(url, data={field: "50", "action": "check"}))
    assert "перешёл через ноль" in rollover and 'data-label="Расход">150 кВт·ч</td>' in rollover
    client.post(url, data={field: "50", "action": "confirm", "confirmed": "1"})
    latest = readings_of(session, krd.ids["Meter"])[-1]
    assert latest.t1 == Decimal("50") and latest.status == "accepted", "replaces the held one"


def test_estimate_follows_ranges_and_zone_rates(session, two_branches):
    krd, _nvr = two_branches
    account = session.get(PersonalAccount, krd.ids["PersonalAccount"])
    period = dt.date(2026, 11, 1)
    assert tariffs.estimate(session, account, 1, {"t1": Decimal("100")}, period).total \
        == Decimal("735.00")
    assert tariffs.estimate(session, account, 2, {"t1": Decimal("1"), "t2": Decimal("1")},
                            period) is None, "no two-zone tariff in force: no estimate"


def test_readings_without_signing_in(client, session, two_branches, today):
    krd, _nvr = two_branches
    wrong = client.post("/readings/", data={"account": "230000000001", "serial": "SN-NVR-2"})
    assert "Не нашли счётчик с таким номером" in page_text(wrong)
    assert client.get("/readings/meter").status_code == 302
    right = client.post("/readings/", data={"account": "2300 0000 0001", "serial": "sn-krd-1"})
    assert right.location.endswith("/readings/meter")
    form = page_text(client.get("/readings/meter"))
    assert "ул. Красная" in form
    assert "Иванов" not in form and "кв. 1" not in form, "no personal data beyond the street"
    field = f"m{krd.ids['Meter']}_t1"
    assert "735,00" in page_text(client.post("/readings/meter",
                                             data={field: "1334", "action": "check"}))
    done = client.post("/readings/meter", data={field: "1334", "action": "confirm"})
    assert done.location.endswith("/readings/done")
    saved = readings_of(session, krd.ids["Meter"])[-1]
    assert saved.t1 == Decimal("1334") and saved.submitted_by_id is None
    client.get("/readings/done")
    assert client.get("/readings/meter").status_code == 302, "the proof lasts one submission"


def test_guessing_meters_without_signing_in_is_throttled(make_app, two_branches):
    client = make_app().test_client()
    for serial in ("A1", "A2", "A3", "A4", "A5"):
        client.post("/readings/", data={"account": "230000000001", "serial": serial})
    blocked = client.post("/readings/", data={"account": "230000000001", "serial": "SN-KRD-1"})
    assert "Слишком много неудачных попыток найти счётчик" in page_text(blocked)


RESIDENT_LISTS = {
    "/cabinet/charges": Charge,
    "/cabinet/invoices": Invoice,
    "/cabinet/payments": Payment,
    "/cabinet/readings-history": Reading,
    "/cabinet/meters": Meter,
}


@pytest.mark.parametrize("base, model", RESIDENT_LISTS.items())
def test_resident_lists_hold_own_rows_only(client, session, owner, base, model):
    _user, krd, nvr = owner
    own, other = krd.ids[model.__name__], nvr.ids[model.__name__]
    listing = client.get(f"{base}/list/")
    assert listing.status_code == 200
    assert f"{base}/show/{own}" in page_text(listing)
    assert f"{base}/show/{other}" not in page_text(listing)
    assert client.get(f"{base}/show/{own}").status_code == 200
    assert client.get(f"{base}/show/{other}").status_code == 404
    for forbidden in (f"{base}/add", f"{base}/edit/{own}", f"{base}/delete/{own}"):
        assert client.get(forbidden).status_code in (403, 404)


def test_every_cabinet_route_refuses_another_users_account(client, session, owner, today):
    _user, krd, nvr = owner
    other = nvr.ids["PersonalAccount"]
    meter = nvr.ids["Meter"]
    assert client.get(f"/cabinet/readings/{other}").status_code == 404
    assert client.post(f"/cabinet/readings/{other}",
                       data={f"m{meter}_t1": "2000", "action": "confirm"}).status_code == 404
    assert client.post(f"/cabinet/unbind/{other}").status_code == 404
    assert len(readings_of(session, meter)) == 1
    assert session.execute(select(func.count()).select_from(Reading)).scalar_one() == 4


def test_anonymous_visitors_are_sent_to_the_residents_sign_in(app, two_branches):
    client = app.test_client()
    for url in ["/cabinet/", "/cabinet/readings/1", "/cabinet/charges/list/",
                "/cabinet/meters/show/1"]:
        r = client.get(url)
        assert r.status_code == 302 and "/auth/" in r.location, url


def test_staff_cannot_use_resident_pages(client, login, make_user_fn, two_branches):
    make_user_fn("operator", "Staff", branch_id=two_branches[0].branch_id)
    login("operator")
    assert client.get("/cabinet/charges/list/").status_code in (302, 403)


def test_forecast_from_the_months_reading_or_the_average(client, session, owner, today):
    _user, krd, _nvr = owner
    meter = krd.ids["Meter"]
    assert "Прогноз" not in page_text(client.get("/cabinet/")), "one reading: no history yet"
    for month, value in ((7, "934"), (8, "1034"), (9, "1134")):
        session.add(Reading(meter_id=meter, period=dt.date(2026, month, 1), t1=Decimal(value),
                            source="web"))
    session.commit()
    home = page_text(client.get("/cabinet/"))
    assert ("<dt>Прогноз за ноябрь 2026, по среднему расходу</dt>\n      "
            "<dd>≈ 735,00 ₽ · 100 кВт·ч</dd>") in home
    assert "До 2-го диапазона потребления осталось\n    1 000 кВт·ч" in home
    client.post(f"/cabinet/readings/{krd.ids['PersonalAccount']}",
                data={f"m{meter}_t1": "1534", "action": "confirm"})
    home = page_text(client.get("/cabinet/"))
    assert "<dt>Прогноз за ноябрь 2026</dt>\n      <dd>≈ 2 205,00 ₽ · 300 кВт·ч</dd>" in home
