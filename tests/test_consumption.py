"""The resident's consumption page: monthly kWh per zone and money charged, as a chart drawn by
a locally served Chart.js, a table, .xlsx and .csv; nobody else's account is reachable."""
from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import openpyxl
import pytest
from sqlalchemy import select

from app import models as m
from app.services import accounts, consumption
from app.views.formats import local_today
from tests.factories import PASSWORD

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHART_JS = "/static/vendor/chartjs/chart.umd.min.js"


def charge(account_id, period, meter_id, zone, kwh, amount, range_no=1, kind="metered"):
    kwh, amount = Decimal(kwh), Decimal(amount)
    return m.Charge(account_id=account_id, period=period, meter_id=meter_id, zone=zone,
                    range_no=range_no, kwh=kwh, amount=amount, kind=kind,
                    rate=(amount / kwh).quantize(Decimal("0.0001")) if kwh else None)


@pytest.fixture
def world(session, two_branches, make_user_fn):
    """A resident with the Krasnodar account bound: a one-zone meter for a year (two ranges a
    month), then a two-zone one with a gap month and a money-only adjustment, plus a charge
    long before the window. A stranger holds the Novorossiysk account."""
    krd, nvr = two_branches
    account_id = krd.ids["PersonalAccount"]
    owner = make_user_fn("consumer", "Resident", kind="resident")
    stranger = make_user_fn("stranger", "Resident", kind="resident")
    session.add_all([m.AccountBinding(user_id=owner.id, account_id=account_id),
                     m.AccountBinding(user_id=stranger.id,
                                      account_id=nvr.ids["PersonalAccount"])])
    session.delete(session.get(m.Charge, krd.ids["Charge"]))  # a fixed date: not ours to place
    old = session.get(m.Meter, krd.ids["Meter"])
    old.active = False
    two_zone = m.Meter(serial="SN-KRD-2Z", account_id=account_id, zones=2, digit_capacity=6)
    session.add(two_zone)
    session.flush()
    now = local_today().replace(day=1)
    rows = []
    for back in range(12, 6, -1):  # one-zone meter, months -12..-7
        period = consumption.add_months(now, -back)
        rows += [charge(account_id, period, old.id, "T1", "150", "1102.50"),
                 charge(account_id, period, old.id, "T1", "30.5", "274.81", range_no=2)]
    for back in (6, 5, 3, 2):  # two-zone meter; month -4 has no energy charge
        period = consumption.add_months(now, -back)
        rows += [charge(account_id, period, two_zone.id, "T1", "100", "850.00"),
                 charge(account_id, period, two_zone.id, "T2", "60", "264.60")]
    rows.append(charge(account_id, consumption.add_months(now, -5), None, None, "0", "-50.00",
                       range_no=None, kind="adjustment"))
    rows.append(charge(account_id, consumption.add_months(now, -30), old.id, "T1", "999",
                       "9999.99"))
    session.add_all(rows)
    session.commit()
    return {"owner": owner, "stranger": stranger, "account_id": account_id,
            "foreign_id": nvr.ids["PersonalAccount"], "now": now}


def expected_by_month(session, account_id, now):
    """The ledger summed in Python, row by row: what every view of the page must show."""
    first, last = consumption.window(now)
    kwh, amount = defaultdict(Decimal), defaultdict(Decimal)
    charges = select(m.Charge).where(m.Charge.account_id == account_id)
    for row in session.execute(charges).scalars():
        if first <= row.period <= last:
            kwh[row.period] += row.kwh
            amount[row.period] += row.amount
    return kwh, amount


def sign_in(client, login="consumer"):
    r = client.post("/auth/", data={"login": login, "password": PASSWORD})
    assert r.status_code == 302, r.get_data(as_text=True)


def dec(text: str) -> Decimal:
    return Decimal(text.replace(",", "."))


# The service -------------------------------------------------------------------------------


def test_monthly_totals_equal_the_ledger(session, world):
    account = accounts.bound_account(session, world["owner"].id, world["account_id"])
    data = consumption.monthly(session, account, today=world["now"])
    kwh, amount = expected_by_month(session, world["account_id"], world["now"])

    assert data.series == ("Круглосуточно", "День", "Ночь")
    assert [r.period for r in data.rows] == [
        consumption.add_months(world["now"], -back) for back in range(12, 1, -1)]
    for row in data.rows:
        assert row.total_kwh == kwh.get(row.period, 0)
        assert row.amount == amount.get(row.period, 0)
        assert isinstance(row.amount, Decimal)
    assert data.total_amount == sum(amount.values())
    assert data.total_kwh == sum(kwh.values()) == sum(data.kwh_totals)
    assert data.total_amount == sum(r.amount for r in data.rows)
    # the gap month is a zero row, and the money-only adjustment counts only in money
    gap = next(r for r in data.rows if r.period == consumption.add_months(world["now"], -4))
    assert gap.total_kwh == 0 and gap.amount == 0
    adjusted = next(r for r in data.rows if r.period == consumption.add_months(world["now"], -5))
    assert adjusted.kwh == (0, Decimal("100.000"), Decimal("60.000"))
    assert adjusted.amount == Decimal("1064.60")


def test_access_is_only_through_a_binding(session, world):
    assert accounts.bound_account(session, world["owner"].id, world["account_id"]) is not None
    assert accounts.bound_account(session, world["owner"].id, world["foreign_id"]) is None
    assert accounts.bound_account(session, world["stranger"].id, world["account_id"]) is None
    assert accounts.bound_account(session, world["owner"].id, 987654) is None


@pytest.mark.parametrize("zones, zone, label", [
    (1, "T1", "Круглосуточно"), (2, "T1", "День"), (2, "T2", "Ночь"),
    (3, "T1", "Пик"), (3, "T2", "Ночь"), (3, "T3", "Полупик"), (2, None, "Без зоны"),
])
def test_zone_labels(zones, zone, label):
    assert consumption.zone_label(zones, zone) == label


def test_window_is_24_months_ending_this_month():
    assert consumption.window(dt.date(2026, 11, 29)) == (dt.date(2024, 12, 1),
                                                         dt.date(2026, 11, 1))


# The web -----------------------------------------------------------------------------------


def test_page_shows_a_locally_served_chart_and_a_table_that_adds_up(client, session, world):
    sign_in(client)
    r = client.get(f"/cabinet/consumption/{world['account_id']}")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    chart_js = re.search(r'src="(/static/vendor/chartjs/chart\.umd\.min[.\w]*\.js)"', page)
    assert chart_js, "the chart script, served from this portal (a hashed name)"
    assert re.search(r'src="/static/js/consumption[.\w]*\.js"', page)
    assert not re.search(r"<script[^>]+src=[\"'](https?:)?//", page), "a script from elsewhere"
    assert 'type="application/json" id="consumption-data"' in page
    for label in ("Круглосуточно", "День", "Ночь"):
        assert f"{label}, кВт·ч" in page
    _kwh, amount = expected_by_month(session, world["account_id"], world["now"])
    total = f"{sum(amount.values()):,.2f}".replace(",", "\u00a0").replace(".", ",")
    assert re.search(rf">Итого</td>.*{re.escape(total)}\u00a0₽</td>", page, re.S)
    assert client.get(chart_js.group(1)).status_code == 200
    assert client.get(CHART_JS).status_code == 200
    assert client.get("/static/js/consumption.js").status_code == 200


def test_csv_parses_and_matches_the_ledger(client, session, world):
    sign_in(client)
    r = client.get(f"/cabinet/consumption/{world['account_id']}/csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    assert r.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Месяц", "Круглосуточно, кВт·ч", "День, кВт·ч", "Ночь, кВт·ч",
                       "Всего, кВт·ч", "Начислено, руб."]
    kwh, amount = expected_by_month(session, world["account_id"], world["now"])
    body, totals = rows[1:-1], rows[-1]
    for period_text, *zones, total_kwh, charged in body:
        period = dt.datetime.strptime(period_text, "%d.%m.%Y").date()
        assert dec(total_kwh) == sum(dec(z) for z in zones) == kwh.get(period, 0)
        assert dec(charged) == amount.get(period, 0)
    assert totals[0] == "Итого"
    assert dec(totals[-1]) == sum(amount.values()) == sum(dec(row[-1]) for row in body)
    assert dec(totals[-2]) == sum(kwh.values())


def test_xlsx_opens_and_holds_the_rows(client, session, world):
    sign_in(client)
    r = client.get(f"/cabinet/consumption/{world['account_id']}/xlsx")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(r.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Месяц" and rows[0][-1] == "Начислено, руб."
    kwh, amount = expected_by_month(session, world["account_id"], world["now"])
    body = rows[1:-1]
    assert len(body) == 11
    for period, *_zones, total_kwh, charged in body:
        assert Decimal(str(total_kwh)) == kwh.get(period.date(), 0)
        assert Decimal(str(charged)).quantize(Decimal("0.01")) == amount.get(period.date(), 0)
    assert rows[-1][0] == "Итого"
    assert Decimal(str(rows[-1][-1])).quantize(Decimal("0.01")) == sum(amount.values())


@pytest.mark.parametrize("suffix", ["", "/xlsx", "/csv"])
def test_another_users_or_unbound_account_is_404(client, world, suffix):
    sign_in(client)
    assert client.get(f"/cabinet/consumption/{world['foreign_id']}{suffix}").status_code == 404
    assert client.get(f"/cabinet/consumption/987654{suffix}").status_code == 404


@pytest.mark.parametrize("suffix", ["", "/xlsx", "/csv"])
def test_anonymous_visitor_goes_to_the_resident_sign_in(client, world, suffix):
    r = client.get(f"/cabinet/consumption/{world['account_id']}{suffix}")
    assert r.status_code == 302
    assert urlparse(r.headers["Location"]).path == "/auth/"


def test_an_account_without_charges_shows_a_note_not_a_chart(client, session, world):
    session.execute(m.Charge.__table__.delete().where(
        m.Charge.account_id == world["account_id"]))
    session.commit()
    sign_in(client)
    page = client.get(f"/cabinet/consumption/{world['account_id']}").get_data(as_text=True)
    assert "начислений по этому счёту нет" in page and CHART_JS not in page


# In a browser ------------------------------------------------------------------------------


@pytest.mark.browser
def test_chart_renders_in_a_browser(browser_page, world, tmp_path):
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda req: errors.append(req.url)
            if not req.url.startswith(("http://127.0.0.1", "data:")) else None)
    page.goto("/auth/")
    page.fill("input[name=login]", "consumer")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.locator("button[type=submit]").first.click()
    page.goto(f"/cabinet/consumption/{world['account_id']}")
    page.wait_for_function("() => window.Chart && Chart.getChart('consumption-chart')")
    drawn = page.evaluate("""() => {
        const chart = Chart.getChart('consumption-chart');
        return {sets: chart.data.datasets.map(d => d.label), points: chart.data.labels.length};
    }""")
    assert drawn == {"sets": ["Круглосуточно", "День", "Ночь", "Начислено, руб."], "points": 11}
    assert errors == []
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "consumption.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == PNG_SIGNATURE
