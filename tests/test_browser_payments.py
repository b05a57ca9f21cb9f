"""Paying by card in headless Chromium with each sandbox test card: the sandbox's hosted page
notifies the live portal over HTTP (signed), sends the payer back, and the cabinet shows the
new balance; two accounts in one payment; the PDF confirmation."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app import models as m
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def live_overrides(tmp_path):
    return {"SANDBOX_PAY_DIR": str(tmp_path / "sandbox")}


@pytest.fixture
def payer(session, two_branches, make_user_fn):
    krd, nvr = two_branches
    user = make_user_fn("payer", "Resident", kind="resident", phone="+79185550088")
    for world in (krd, nvr):
        session.add(m.AccountBinding(user_id=user.id, account_id=world.ids["PersonalAccount"]))
    session.commit()
    return user


def submit(page, selector="button[type=submit]"):
    with page.expect_navigation():
        page.locator(selector).first.click()


def statuses(session) -> list[str]:
    session.expire_all()
    return [p.status for p in session.execute(
        select(m.Payment).where(m.Payment.gateway == "sandbox").order_by(m.Payment.id)).scalars()]


def card(page, number: str):
    page.fill("input[name=number]", number)
    page.fill("input[name=expiry]", "12/30")
    page.fill("input[name=cvc]", "123")


def test_pays_with_each_sandbox_card(browser_page, session, payer, two_branches, shots):
    krd, nvr = two_branches
    page = browser_page
    console = []  # the Content-Security-Policy's refusals land here (app/headers.py)
    page.on("console", lambda message: console.append(message.text))
    page.goto("/auth/")
    page.fill("input[name=login]", "9185550088")
    page.fill("input[name=password]", PASSWORD)
    submit(page)
    assert page.url.endswith("/cabinet/")

    # 1. declined card: nothing is paid
    page.get_by_role("link", name=re.compile("Оплатить")).first.click()
    page.wait_for_url(re.compile(r"/cabinet/pay/\d+"))
    assert page.locator(f"input[name=amount_{krd.ids['PersonalAccount']}]").input_value() \
        == "235,00"
    shots(page, "30-pay-form")
    submit(page, "text=Перейти к оплате")
    assert "/sandbox-pay/sb_" in page.url
    shots(page, "31-sandbox-page")
    card(page, "4000 0000 0000 0002")
    submit(page, "button[name=pay]")
    assert "/cabinet/pay/result/" in page.url
    assert "Платёж не прошёл" in page.content()
    shots(page, "32-declined")
    assert statuses(session) == ["canceled"]

    # 2. 3-D Secure card: a wrong code, then the right one
    page.get_by_role("link", name=re.compile("Попробовать ещё раз")).click()
    submit(page, "text=Перейти к оплате")
    card(page, "4000 0000 0000 3220")
    submit(page, "button[name=pay]")
    assert page.url.endswith("/3ds")
    page.fill("input[name=code]", "11111")
    submit(page, "button[name=confirm]")
    assert "Неверный код" in page.content()
    shots(page, "33-3ds")
    page.fill("input[name=code]", "12345")
    submit(page, "button[name=confirm]")
    assert "Платёж прошёл" in page.content()
    assert statuses(session) == ["canceled", "succeeded"]

    # 3. the succeeding card, two accounts in one payment
    page.goto(f"/cabinet/pay/{krd.ids['PersonalAccount']}")
    page.check(f"#account-{nvr.ids['PersonalAccount']}")
    page.fill(f"input[name=amount_{krd.ids['PersonalAccount']}]", "100")
    page.fill(f"input[name=amount_{nvr.ids['PersonalAccount']}]", "235,00")
    submit(page, "text=Перейти к оплате")
    assert "335,00" in page.content()
    card(page, "4111 1111 1111 1111")
    shots(page, "34-sandbox-two-accounts")
    submit(page, "button[name=pay]")
    body = page.content()
    assert "Платёж прошёл" in body and "230000000001" in body and "230000000002" in body
    shots(page, "35-result")
    assert statuses(session) == ["canceled", "succeeded", "succeeded", "succeeded"]
    # the notification came over HTTP from the sandbox page, signed, and was believed once
    session.expire_all()
    assert len(session.execute(select(m.AuditEvent).where(
        m.AuditEvent.action == "payment.succeeded")).scalars().all()) == 2
    assert session.execute(select(m.AuditEvent).where(
        m.AuditEvent.action == "payment.notification_rejected")).first() is None

    with page.expect_download() as download_info:
        page.evaluate("""() => { const a = document.querySelector('a[href$=".pdf"]');
                                  a.setAttribute('download', 'receipt.pdf'); a.click(); }""")
    assert download_info.value.path().read_bytes().startswith(b"%PDF")

    page.goto("/cabinet/")
    shots(page, "36-cabinet-after")
    # krd: 735 charged, 500 + 235 (3-D Secure) + 100 paid; nvr: 735 - 500 - 235
    body = page.content().replace("\xa0", " ")
    assert "Переплата 100,00" in body and "Задолженности нет" in body
    assert [text for text in console if "Content Security Policy" in text] == []
