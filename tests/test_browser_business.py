"""The organization's cabinet end to end in headless Chromium: sign in with the branch (the
app's QR code on the form), contracts with balances, a point of supply's charges and bills,
a bill downloaded, a reading passed after its estimate, payments, and a message to the
branch (refused empty first)."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from app import models as m
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def live_overrides():
    """Readings are taken every day of the month here, whatever day the test runs."""
    return {"READING_WINDOW_FIRST_DAY": 1, "READING_WINDOW_LAST_DAY": 31}


def submit(page, selector="button[type=submit]"):
    with page.expect_navigation():
        page.locator(selector).first.click()


def test_organization_signs_in_reads_bills_passes_readings_and_writes(
        browser_page, session, make_user_fn, two_branches, shots):
    krd, nvr = two_branches
    first = session.get(m.PersonalAccount, krd.ids["OrganizationAccount"])
    second = m.PersonalAccount(number="231000000011", holder_name="ООО «Ромашка-Краснодар»",
                               premises_id=first.premises_id, branch_id=krd.branch_id,
                               tariff_group_id=first.tariff_group_id,
                               contract_id=krd.ids["Contract"], status="active",
                               opened_on=dt.date(2025, 1, 1))
    session.add(second)
    session.flush()
    session.add_all([
        m.Charge(account_id=second.id, period=dt.date(2026, 10, 1), amount=Decimal("300.30")),
        m.Payment(account_id=second.id, amount=Decimal("400.00"), method="bank",
                  status="succeeded", external_id="ext-krd-2"),
    ])
    session.commit()
    user = make_user_fn("romashka", "Business", kind="business",
                        organization_id=krd.ids["Organization"])
    account, meter = krd.ids["OrganizationAccount"], krd.ids["OrganizationMeter"]
    page = browser_page

    page.goto("/business/login")
    assert page.locator("figure.app-qr svg").is_visible()
    assert "Мобильное приложение для организаций" in page.content()
    page.fill("input[name=login]", "romashka")
    page.fill("input[name=password]", PASSWORD)
    page.select_option("select[name=branch]", label="Краснодарэнергосбыт")
    shots(page, "40-business-signin")
    submit(page)
    assert page.url.endswith("/business/")

    text = page.locator("body").inner_text().replace("\u00a0", " ")
    assert "ООО «Ромашка-Краснодар»" in text and "Договор № Д-krd-1" in text
    # 882.00 - 450.00 and 300.30 - 400.00: the contract owes their sum
    assert "Задолженность 332,30 ₽" in text and "Д-nvr-1" not in text
    assert "432,00" in text and "-99,70" in text and "Итого по договору" in text
    assert "230000000001" not in text  # a household's account of the same branch
    shots(page, "41-business-contracts")

    page.get_by_role("link", name=re.compile("Начисления и счета")).first.click()
    page.wait_for_url(f"**/business/account/{account}")
    text = page.locator("body").inner_text()
    assert "октябрь 2026" in text and "INV-krd-ORG-202610" in text
    shots(page, "42-business-account")

    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Скачать счёт")).first.click()
    assert download.value.suggested_filename == "Счёт_231000000001_2026-10.pdf"
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")

    page.get_by_role("link", name=re.compile("Передать показания")).first.click()
    page.wait_for_url(f"**/business/readings/{account}")
    page.fill(f"input[name=m{meter}_t1]", "5778")
    shots(page, "43-business-reading-form")
    submit(page, "button[value=check]")
    text = page.locator("body").inner_text()
    assert "Итого расход" in text and "Ориентировочно к начислению" in text
    shots(page, "44-business-reading-check")
    submit(page, "button[value=confirm]")
    assert page.url.endswith(f"/business/account/{account}")
    assert "Показания приняты." in page.content()
    saved = session.execute(select(m.Reading).where(m.Reading.meter_id == meter)
                            .order_by(m.Reading.period.desc())).scalars().first()
    session.refresh(saved)
    assert (saved.t1, saved.submitted_by_id) == (Decimal("5778"), user.id)

    page.get_by_role("link", name=re.compile("Платежи")).first.click()
    page.wait_for_url("**/business/payments")
    shots(page, "45-business-payments")

    page.get_by_role("link", name="Обращения", exact=True).click()
    page.wait_for_url("**/business/feedback")
    submit(page)
    assert "Укажите тему обращения." in page.content()
    shots(page, "46-business-feedback-refused")
    page.fill("input[name=topic]", "Начисления и счета")
    page.select_option("select[name=account]", value=str(account))
    page.fill("textarea[name=message]", "Просим направить акт сверки за 2026 год и пояснить "
                                        "начисление за октябрь.")
    submit(page)
    assert "отправлено в Краснодарэнергосбыт" in page.content()
    shots(page, "47-business-feedback-sent")
    row = session.execute(select(m.Feedback).where(m.Feedback.user_id == user.id)).scalar_one()
    assert (row.branch_id, row.account_id, row.status) == (krd.branch_id, account, "new")
