"""The resident's cabinet end to end in headless Chromium: sign in, bind two accounts (a wrong
meter number first), pass a two-zone reading after seeing its estimate, look at the
consumption chart, and apply for a contract with a scan attached."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import models as m
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

PDF_SCAN = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def live_overrides():
    """Readings are taken every day of the month here, whatever day the test runs."""
    return {"READING_WINDOW_FIRST_DAY": 1, "READING_WINDOW_LAST_DAY": 31}


@pytest.fixture
def two_zone_world(session, two_branches):
    """Novorossiysk's meter is a day/night one, with its tariff and a reading last month."""
    krd, nvr = two_branches
    meter = session.get(m.Meter, nvr.ids["Meter"])
    meter.zones = 2
    session.get(m.Reading, nvr.ids["Reading"]).t2 = Decimal("500")
    group = session.get(m.PersonalAccount, nvr.ids["PersonalAccount"]).tariff_group_id
    for zone, rate in (("T1", "7.3500"), ("T2", "4.4100")):
        session.add(m.Tariff(tariff_group_id=group, zones=2, zone=zone, range_no=1,
                             rate=Decimal(rate), effective_from=dt.date(2025, 7, 1)))
    for season in ("summer",):
        session.add(m.ConsumptionRange(tariff_group_id=group, season=season, range_no=1,
                                       upper_kwh=Decimal("900"),
                                       effective_from=dt.date(2025, 7, 1)))
    session.commit()
    return krd, nvr


def submit(page, selector="button[type=submit]"):
    with page.expect_navigation():
        page.locator(selector).first.click()


def test_resident_binds_reads_sees_chart_and_applies(browser_page, session, make_user_fn,
                                                     two_zone_world, shots):
    krd, nvr = two_zone_world
    user = make_user_fn("resident", "Resident", kind="resident", phone="+79185550011")
    page = browser_page

    page.goto("/auth/")
    page.fill("input[name=login]", "9185550011")
    page.fill("input[name=password]", PASSWORD)
    submit(page)
    assert page.url.endswith("/cabinet/")
    shots(page, "20-cabinet-empty")

    page.get_by_role("link", name=re.compile("Привязать лицевой счёт")).click()
    page.locator("input[name=account]").nth(0).fill("230000000001")
    page.locator("input[name=serial]").nth(0).fill("SN-KRD-1")
    page.get_by_role("button", name=re.compile("Ещё один счёт")).click()
    page.locator("input[name=account]").nth(1).fill("230000000002")
    page.locator("input[name=serial]").nth(1).fill("НЕ-ТОТ-НОМЕР")
    submit(page, "button[type=submit]")
    assert "Не нашли лицевой счёт с таким прибором учёта" in page.content()
    shots(page, "21-bind-wrong-meter")
    page.locator("input[name=serial]").nth(0).fill("SN-NVR-2")
    submit(page, "button[type=submit]")
    assert page.url.endswith("/cabinet/")
    bound = set(session.execute(select(m.AccountBinding.account_id)
                                .where(m.AccountBinding.user_id == user.id)).scalars())
    assert bound == {krd.ids["PersonalAccount"], nvr.ids["PersonalAccount"]}
    shots(page, "22-cabinet-two-accounts")

    page.goto(f"/cabinet/readings/{nvr.ids['PersonalAccount']}")
    meter = nvr.ids["Meter"]
    page.fill(f"input[name=m{meter}_t1]", "1334")
    page.fill(f"input[name=m{meter}_t2]", "560")
    shots(page, "23-reading-form")
    submit(page, "button[value=check]")
    text = page.locator("body").inner_text()
    assert "Итого расход" in text and "160" in text
    assert "Ориентировочно к начислению" in text
    expected = Decimal("100") * Decimal("7.35") + Decimal("60") * Decimal("4.41")
    assert f"{expected:.2f}".replace(".", ",") in text
    shots(page, "24-reading-check")
    submit(page, "button[value=confirm]")
    assert page.url.endswith("/cabinet/") and "Показания приняты." in page.content()
    saved = session.execute(select(m.Reading).where(m.Reading.meter_id == meter)
                            .order_by(m.Reading.period.desc())).scalars().first()
    session.refresh(saved)
    assert (saved.t1, saved.t2, saved.status) == (Decimal("1334"), Decimal("560"), "accepted")

    page.goto(f"/cabinet/consumption/{krd.ids['PersonalAccount']}")
    page.wait_for_function("() => document.querySelector('canvas') && "
                           "document.querySelector('canvas').width > 0")
    assert page.evaluate("() => typeof Chart !== 'undefined'")
    shots(page, "25-consumption")

    page.goto("/cabinet/applications/new")
    page.select_option("select[name=branch_id]", label="Краснодарэнергосбыт")
    page.fill("input[name=applicant_name]", "Петров Пётр Петрович")
    page.fill("input[name=address]", "Краснодар, ул. Садовая, д. 5")
    page.fill("input[name=cadastral_number]", "23:43:0137001:123")
    page.fill("input[name=phone]", "+7 918 555-00-11")
    page.fill("input[name=email]", "petrov@example.ru")
    page.set_input_files("input[name=files]", files=[{
        "name": "паспорт.pdf", "mimeType": "application/pdf", "buffer": PDF_SCAN}])
    shots(page, "26-application-form")
    submit(page, "button[type=submit]")
    shots(page, "27-application-sent")
    application = session.execute(select(m.ContractApplication).where(
        m.ContractApplication.cadastral_number == "23:43:0137001:123")).scalar_one()
    assert application.status == "new"
    assert "Новая" in page.content()
