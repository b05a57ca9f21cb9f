"""The rules of meter readings, as a service over a session."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models import Invoice, Meter, Reading
from app.services import readings
from app.services.reading_checks import Limits
from app.services.readings import ReadingError, Rules, Window

WINDOW = Window(15, 25)
RULES = Rules(WINDOW, Limits(Decimal("5"), Decimal("15"), Decimal("150")))
IN_WINDOW = dt.date(2026, 11, 20)
NOVEMBER = dt.date(2026, 11, 1)


@pytest.fixture
def meter(session, two_branches):
    """The Krasnodar meter with accepted readings 1000 (May) ... 1500 (October): 100 kWh a
    month on average."""
    krd, _ = two_branches
    meter = session.get(Meter, krd.ids["Meter"])
    session.execute(Reading.__table__.delete())
    for month, value in zip(range(5, 11), range(1000, 1600, 100)):
        session.add(Reading(meter_id=meter.id, period=dt.date(2026, month, 1),
                            t1=Decimal(value), source="web", status="accepted"))
    session.commit()
    return meter


def assess(session, meter, values, today=IN_WINDOW):
    return readings.assess(session, meter, values, today, RULES)


def test_plain_reading_is_accepted_for_this_month(session, meter):
    result = assess(session, meter, {"t1": "1620"})
    assert result.period == NOVEMBER
    assert result.previous == {"t1": Decimal(1500)}
    assert result.consumption == {"t1": Decimal(120)} and not result.needs_confirmation
    saved = readings.submit(session, meter, result, confirmed=False, source="web",
                            user_id=None, ip=None)
    assert saved.status == "accepted" and saved.t1 == Decimal(1620)


@pytest.mark.parametrize("today, message", [
    (dt.date(2026, 11, 14), "Следующий приём начнётся 15.11.2026"),
    (dt.date(2026, 11, 26), "Следующий приём начнётся 15.12.2026"),
    (dt.date(2026, 12, 31), "Следующий приём начнётся 15.01.2027"),
])
def test_outside_the_window_is_refused(session, meter, today, message):
    with pytest.raises(ReadingError, match=message):
        assess(session, meter, {"t1": "1620"}, today=today)


@pytest.mark.parametrize("window, today, opens", [
    (Window(15, 25), dt.date(2026, 11, 15), dt.date(2026, 11, 15)),
    (Window(1, 5), dt.date(2026, 12, 6), dt.date(2027, 1, 1)),
    (Window(31, 31), dt.date(2027, 2, 1), dt.date(2027, 2, 28)),  # February has no 31st
    (Window(30, 30), dt.date(2028, 1, 31), dt.date(2028, 2, 29)),
])
def test_the_next_window_follows_the_settings(window, today, opens):
    assert window.next_opening(today) == opens
    assert window.closed_message(today).startswith(
        f"Показания принимаются с {window.first_day} по {window.last_day} число месяца.")


@pytest.mark.parametrize("raw, message", [
    ("", "введите показание"),
    ("abc", "должно быть числом"),
    ("-5", "не может быть отрицательным"),
    ("1620,5", "целое число"),
    ("1000000000", "не может быть больше 9 цифр"),
    ("1400", "меньше предыдущего"),
])
def test_bad_values_get_clear_messages(session, meter, raw, message):
    with pytest.raises(ReadingError, match=message):
        assess(session, meter, {"t1": raw})
    assert session.execute(select(func.count(Reading.id))).scalar_one() == 6


def test_rollover_needs_confirmation(session, meter):
    session.execute(Reading.__table__.update().where(Reading.period == dt.date(2026, 10, 1))
                    .values(t1=Decimal(999950)))
    session.commit()
    result = assess(session, meter, {"t1": "30"})
    assert result.rollover_zones == ["t1"] and result.consumption == {"t1": Decimal(80)}
    with pytest.raises(ReadingError, match="Подтвердите"):
        readings.submit(session, meter, result, confirmed=False, source="web", user_id=None,
                        ip=None)
    saved = readings.submit(session, meter, result, confirmed=True, source="web",
                            user_id=None, ip=None)
    assert saved.status == "accepted"


def test_spike_needs_confirmation_and_goes_to_review(session, meter):
    result = assess(session, meter, {"t1": "2100"})
    assert result.held and result.total == Decimal(600)
    saved = readings.submit(session, meter, result, confirmed=True, source="web",
                            user_id=None, ip=None)
    assert saved.status == "flagged"


def test_resubmission_replaces_until_billed(session, meter):
    first = assess(session, meter, {"t1": "1600"})
    readings.submit(session, meter, first, confirmed=False, source="web", user_id=None, ip=None)
    second = assess(session, meter, {"t1": "1610"})
    readings.submit(session, meter, second, confirmed=False, source="web", user_id=None,
                    ip=None)
    rows = session.execute(select(Reading).where(Reading.period == NOVEMBER)).scalars().all()
    assert [r.t1 for r in rows] == [Decimal(1610)]
    session.add(Invoice(number="INV-X", account_id=meter.account_id, period=NOVEMBER,
                        due_date=dt.date(2026, 12, 10)))
    session.commit()
    third = assess(session, meter, {"t1": "1620"})
    with pytest.raises(ReadingError, match="уже выставлен.* Передайте его с 15 по 25 число"):
        readings.submit(session, meter, third, confirmed=False, source="web", user_id=None,
                        ip=None)


def test_two_zone_meter_needs_both_registers(session, meter):
    meter.zones = 2
    session.commit()
    with pytest.raises(ReadingError, match="Ночь \\(T2\\): введите показание"):
        assess(session, meter, {"t1": "1620"})


def test_staff_accept_or_reject_flagged_readings_of_their_branch(client, session, login,
                                                                 make_user_fn, two_branches):

    krd, nvr = two_branches
    session.execute(Reading.__table__.update().values(status="flagged"))
    session.commit()
    make_user_fn("operator", "Staff", branch_id=krd.branch_id)
    login("operator")
    r = client.post("/readingview/action_post", data={
        "action": "accept_flagged", "rowid": [krd.ids["Reading"], nvr.ids["Reading"]]})
    assert r.status_code == 302
    statuses = dict(session.execute(select(Reading.id, Reading.status).where(
        Reading.id.in_([krd.ids["Reading"], nvr.ids["Reading"]]))).all())
    assert statuses == {krd.ids["Reading"]: "accepted", nvr.ids["Reading"]: "flagged"}
    client.post("/readingview/action_post", data={"action": "reject_flagged",
                                                  "rowid": [krd.ids["Reading"]]})
    session.expire_all()
    assert session.get(Reading, krd.ids["Reading"]).status == "accepted", "only flagged ones"
    client.post("/logout/")
    make_user_fn("finance", "Finance")
    login("finance")
    client.post("/readingview/action_post", data={"action": "reject_flagged",
                                                  "rowid": [nvr.ids["Reading"]]})
    session.expire_all()
    assert session.get(Reading, nvr.ids["Reading"]).status == "flagged", "finance only reads"
