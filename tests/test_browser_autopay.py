"""Autopay in headless Chromium: from the cabinet's home to «Автоплатёж», the consent, the
sandbox's card page with the box «Сохранить карту для автоплатежа», back to autopay switched
on with the card shown; then a run charges the next bill and «Платежи» marks it. Screenshots
at 360 and 1366 px wide."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from app import models as m
from app.services import autopay
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

PHONE, WIDE = {"width": 360, "height": 760}, {"width": 1366, "height": 900}


@pytest.fixture
def live_overrides(tmp_path):
    """The live portal's sandbox keeps its records where the ``sandbox`` fixture looks."""
    return {"SANDBOX_PAY_DIR": str(tmp_path / "sandbox")}


@pytest.fixture
def payer(session, two_branches, make_user_fn):
    user = make_user_fn("autopayer", "Resident", kind="resident", phone="+79185550089")
    for world in two_branches:
        session.add(m.AccountBinding(user_id=user.id, account_id=world.ids["PersonalAccount"]))
    session.commit()
    return user


def submit(page, selector="button[type=submit]"):
    with page.expect_navigation():
        page.locator(selector).first.click()


def both_widths(page, shots, name: str) -> None:
    for label, size in (("360", PHONE), ("1366", WIDE)):
        page.set_viewport_size(size)
        shots(page, f"{name}-{label}")
    page.set_viewport_size(WIDE)


def test_turns_autopay_on_through_the_sandbox_page(browser_page, session, payer, two_branches,
                                                  sandbox, shots):
    account = two_branches[0].ids["PersonalAccount"]
    page = browser_page
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.goto("/auth/")
    page.fill("input[name=login]", "9185550089")
    page.fill("input[name=password]", PASSWORD)
    submit(page)
    assert page.url.endswith("/cabinet/")

    page.get_by_role("link", name="Автоплатёж").first.click()
    page.wait_for_url(re.compile(rf"/cabinet/autopay/{account}$"))
    assert "Согласен(на)" in page.content()
    both_widths(page, shots, "60-autopay-off")
    page.check(f"#consent-{account}")
    submit(page, "text=Включить и оплатить")
    assert "/sandbox-pay/sb_" in page.url
    box = page.get_by_label("Сохранить карту для автоплатежа")
    assert box.is_visible() and not box.is_checked()
    page.fill("input[name=number]", "4111 1111 1111 1111")
    page.fill("input[name=expiry]", "12/28")
    page.fill("input[name=cvc]", "123")
    box.check()
    both_widths(page, shots, "61-sandbox-consent")
    submit(page, "button[name=pay]")
    page.wait_for_url(re.compile(rf"/cabinet/autopay/{account}$"))
    text = page.content()
    assert "Автоплатёж включён" in text and "•••• 1111, до 12/28" in text
    both_widths(page, shots, "62-autopay-on")

    session.expire_all()
    setting = session.execute(select(m.AutopaySetting)).scalar_one()
    assert setting.status == "active" and setting.method.card_last4 == "1111"

    # The next bill is charged by the run, once, and «Платежи» says it was autopay.
    session.add(m.Charge(account_id=account, period=dt.date(2026, 11, 1),
                         amount=Decimal("640.00"), kind="adjustment", kwh=Decimal("0")))
    session.add(m.Invoice(number="INV-AUTO-202611", account_id=account,
                          period=dt.date(2026, 11, 1), charged=Decimal("640.00"),
                          amount_due=Decimal("640.00"), due_date=dt.date(2026, 12, 10)))
    session.commit()
    assert autopay.run(session, dt.date(2026, 12, 9)).charged == 1
    page.goto("/cabinet/payments/list/")
    assert page.get_by_text("Автоплатёж").count() == 1
    both_widths(page, shots, "63-payments-autopay")
    assert not [c for c in console if "Content Security Policy" in c]
