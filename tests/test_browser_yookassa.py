"""Paying through the YooKassa plugin in headless Chromium: the pay form sends the payer to
YooKassa's checkout (a loopback stand-in, lk_yookassa.testing), YooKassa notifies the live
portal over HTTP, the portal believes only its own GET of the payment, and the payer comes
back to the result page. Once by СБП (paid) and once by card (cancelled on the checkout)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app import models as m
from tests.factories import PASSWORD

lk_yookassa_testing = pytest.importorskip("lk_yookassa.testing")

pytestmark = pytest.mark.browser


@pytest.fixture
def yookassa():
    fake = lk_yookassa_testing.FakeYooKassa()
    yield fake
    fake.close()


@pytest.fixture
def live_overrides(yookassa):
    return {"PAYMENT_GATEWAY": "yookassa", "YOOKASSA_SHOP_ID": lk_yookassa_testing.SHOP,
            "YOOKASSA_SECRET_KEY": lk_yookassa_testing.SECRET, "YOOKASSA_API_URL": yookassa.url,
            "YOOKASSA_NOTIFY_IPS": "127.0.0.1", "YOOKASSA_METHODS": "card,sbp",
            "YOOKASSA_BACKOFF": "0.01"}


def submit(page, selector: str):
    with page.expect_navigation():
        page.locator(selector).first.click()


def payments(session) -> list[tuple[str, str]]:
    session.expire_all()
    return [(p.method, p.status) for p in session.execute(
        select(m.Payment).where(m.Payment.gateway == "yookassa").order_by(m.Payment.id)
    ).scalars()]


def test_pays_by_sbp_and_cancels_a_card_payment_at_yookassa(
        browser_page, live_server, yookassa, session, owner, shots):
    yookassa.notify_url = f"{live_server}/payments/yookassa/notify"  # CSRF is on here
    _user, krd, _nvr = owner
    account_id = krd.ids["PersonalAccount"]
    page = browser_page
    page.goto("/auth/")
    page.fill("input[name=login]", "owner")
    page.fill("input[name=password]", PASSWORD)
    submit(page, "button[type=submit]")

    page.goto(f"/cabinet/pay/{account_id}")
    assert page.locator("input[name=method][value=card]").is_checked()
    page.check("input[name=method][value=sbp]")
    page.fill(f"input[name=amount_{account_id}]", "235,00")
    shots(page, "40-pay-form-sbp")
    submit(page, "text=Перейти к оплате")
    assert page.url.startswith(f"{yookassa.url}/checkout/")
    assert page.locator(".method").inner_text() == "СБП"
    assert "235.00" in page.locator("h1").inner_text()
    submit(page, "button[name=pay]")
    assert "/cabinet/pay/result/" in page.url
    assert "Платёж прошёл" in page.content()
    shots(page, "41-yookassa-result")
    assert payments(session) == [("sbp", "succeeded")]
    assert yookassa.notified == [200]
    # the portal asked YooKassa itself before crediting
    assert any(r["method"] == "GET" and r["path"].startswith("/v3/payments/")
               for r in yookassa.requests)

    page.goto(f"/cabinet/pay/{account_id}")
    page.fill(f"input[name=amount_{account_id}]", "10")
    submit(page, "text=Перейти к оплате")
    assert page.locator(".method").inner_text() == "Банковская карта"
    submit(page, "button[name=cancel]")
    assert "Платёж не прошёл" in page.content()
    assert payments(session) == [("sbp", "succeeded"), ("card", "canceled")]
    sent = [r["body"]["payment_method_data"] for r in yookassa.posts("/v3/payments")]
    assert sent == [{"type": "sbp"}, {"type": "bank_card"}]
    page.goto("/cabinet/")
    assert "Задолженности нет" in page.content()  # 735 charged, 500 + 235 paid
