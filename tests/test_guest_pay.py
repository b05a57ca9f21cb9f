"""Paying without signing in (/pay/): the whole flow through the sandbox gateway, credited
once whatever the notifications do; refused input (amount, contact, an unknown or closed
account) answered alike and changing nothing; the address masked; the per-IP throttle; CSRF;
a guest order's refund receipt; the cabinet's orders out of reach."""
from __future__ import annotations

import html
import re
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import urlparse

import pytest
from sqlalchemy import func, select

from app import models as m
from app.services import guest_payments, payment_states
from app.services.throttle import RULES
from tests.test_payments import (
    DECLINED_CARD,
    OK_CARD,
    audits,
    balance,
    deliver,
    order_rows,
    pay_card,
)

FULL_ADDRESS = "Краснодар, ул. Красная, д. 1, кв. 1"
HOLDER = "Иванов Краснодар"
KRD_NUMBER = "230000000001"
IP_LIMIT = int(RULES["guest_reading"][1].split()[0])


@pytest.fixture
def krd(two_branches):
    return two_branches[0].ids["PersonalAccount"]


def text(response) -> str:
    """The page with entities read and no-break spaces as spaces."""
    return re.sub("[\u00a0\u202f]", " ", html.unescape(response.get_data(as_text=True)))


def step1(client, account=KRD_NUMBER, amount="1 234,56", contact="ivanov@mail.ru",
          ip="127.0.0.1"):
    return client.post("/pay/", data={"account": account, "amount": amount,
                                      "contact": contact},
                       environ_base={"REMOTE_ADDR": ip})


def to_gateway(client, method="card") -> str:
    """«Оплатить» on the check page; returns the sandbox page's path."""
    response = client.post("/pay/check", data={"method": method})
    assert response.status_code == 302, text(response)
    path = urlparse(response.headers["Location"]).path
    assert path.startswith("/sandbox-pay/sb_")
    return path


def orders(session) -> list[m.PaymentOrder]:
    session.expire_all()
    return list(session.execute(select(m.PaymentOrder)).scalars())


# The whole flow ----------------------------------------------------------------------------


def test_the_whole_flow_credits_the_account_once(client, session, krd, sandbox):
    before = balance(session, krd)
    form = text(client.get("/pay/"))
    assert "Номер лицевого счёта" in form and "Электронная почта или телефон для чека" in form
    response = step1(client, account="2300 0000 0001")
    assert response.status_code == 302 and response.location.endswith("/pay/check")

    check = text(client.get("/pay/check"))
    assert "Проверьте платёж" in check and KRD_NUMBER in check
    assert "Краснодар, ул. Красная" in check
    assert "235,00 ₽" in check, "the debt: 735,00 charged, 500,00 paid"
    assert "1 234,56 ₽" in check and "ivanov@mail.ru" in check
    assert FULL_ADDRESS not in check and "кв." not in check and HOLDER not in check
    assert orders(session) == [], "nothing is created before «Оплатить»"

    page = to_gateway(client)
    [order] = orders(session)
    assert (order.user_id, order.amount, order.receipt_email) == (None, Decimal("1234.56"),
                                                                  "ivanov@mail.ru")
    record = sandbox.store.get(page.rsplit("/", 1)[1])
    assert record["receipt"]["customer"] == {"email": "ivanov@mail.ru"}
    assert record["return_url"].endswith(f"/pay/result/{order.order_key}")
    assert [(r.account_id, r.user_id, r.status) for r in order_rows(session)] == [
        (krd, None, "pending")]

    back = pay_card(client, page, OK_CARD)
    assert urlparse(back).path == f"/pay/result/{order.order_key}"
    result = text(client.get(back))  # the notification has not come yet: asks the gateway
    assert "Оплачен." in result and "Платёж прошёл" in result and "1 234,56 ₽" in result
    assert "Краснодар, ул. Красная" in result
    assert FULL_ADDRESS not in result and HOLDER not in result
    for _ in range(2):  # the notification, then a repeat of it
        assert deliver(client, sandbox.sent[0]).status_code == 200
    assert balance(session, krd) == before - Decimal("1234.56")
    assert [r.status for r in order_rows(session)] == ["succeeded"]
    assert len(audits(session, "payment.succeeded")) == 1
    assert client.get("/pay/check").status_code == 302, "the draft is used up"


def test_repeated_notifications_credit_once(client, session, krd, sandbox):
    before = balance(session, krd)
    step1(client, amount="235")
    back = pay_card(client, to_gateway(client), OK_CARD)
    for _ in range(3):
        assert deliver(client, sandbox.sent[0]).status_code == 200
    assert "Платёж прошёл" in text(client.get(back))
    assert text(client.get(back)).count("Оплачен.") == 1
    assert balance(session, krd) == before - Decimal("235.00")
    assert [r.status for r in order_rows(session)] == ["succeeded"]
    assert len(audits(session, "payment.succeeded")) == 1


def test_a_declined_card_credits_nothing_and_offers_to_try_again(client, session, krd,
                                                                  sandbox):
    before = balance(session, krd)
    step1(client, amount="235")
    back = pay_card(client, to_gateway(client), DECLINED_CARD)
    assert deliver(client, sandbox.sent[0]).status_code == 200
    result = text(client.get(back))
    assert "Платёж не прошёл" in result and "Попробовать ещё раз" in result
    assert balance(session, krd) == before


def test_sbp_and_a_phone_for_the_receipt(client, session, krd, sandbox):
    assert step1(client, amount="100", contact="8 (918) 555-00-77").status_code == 302
    check = text(client.get("/pay/check"))
    assert "+7 918 555-00-77" in check
    assert 'name="method" value="sbp"' in check
    page = to_gateway(client, method="sbp")
    record = sandbox.store.get(page.rsplit("/", 1)[1])
    assert record["receipt"]["customer"] == {"phone": "79185550077"}
    [order] = orders(session)
    assert (order.receipt_email, order.receipt_phone) == (None, "79185550077")
    assert [r.method for r in order_rows(session)] == ["sbp"]


def test_the_form_comes_back_filled_to_change_it(client, krd, sandbox):
    step1(client, account="2300 0000 0001", amount="99,5")
    form = text(client.get("/pay/"))
    assert f'value="{KRD_NUMBER}"' in form and 'value="99,50"' in form
    assert 'value="ivanov@mail.ru"' in form


def test_a_refund_receipt_goes_to_the_guests_contact(client, session, krd, sandbox):
    step1(client, amount="50", contact="Refund@Mail.ru")
    pay_card(client, to_gateway(client), OK_CARD)
    deliver(client, sandbox.sent[0])
    [row] = order_rows(session)
    assert payment_states.refund(session, [row.id], actor_id=None).done == [row.id]
    record = sandbox.store.get(row.external_id)
    assert record["refunds"][0]["receipt"]["customer"] == {"email": "refund@mail.ru"}


# Refused input: a Russian message, nothing changed ---------------------------------------


@pytest.mark.parametrize("raw, message", [
    ("", "Укажите сумму."),
    ("0", "Сумма должна быть больше нуля."),
    ("12,345", "Сумма — число рублей, копейки через запятую"),
    ("-5", "Сумма — число рублей, копейки через запятую"),
    ("1e3", "Сумма — число рублей, копейки через запятую"),
    ("сто", "Сумма — число рублей, копейки через запятую"),
    ("600 000", "Одним платежом можно оплатить не более 500 000 руб."),
])
def test_bad_amounts_are_refused(client, session, krd, sandbox, raw, message):
    response = step1(client, amount=raw)
    assert response.status_code == 200
    body = text(response)
    assert message in body and 'class="form-group has-error"' in body
    assert client.get("/pay/check").status_code == 302
    assert orders(session) == [] and audits(session, "payment.guest_not_found") == []


@pytest.mark.parametrize("raw", ["", "ivanov@", "ivanov mail.ru", "12345", "+1 202 555 0100"])
def test_a_contact_for_the_receipt_is_required(client, session, krd, sandbox, raw):
    body = text(step1(client, contact=raw))
    assert guest_payments.CONTACT_HINT in body
    assert client.get("/pay/check").status_code == 302 and orders(session) == []


def test_an_account_number_is_required(client, krd, sandbox):
    body = text(step1(client, account="  "))
    assert "Укажите номер лицевого счёта" in body
    assert client.get("/pay/check").status_code == 302


def test_unknown_closed_and_mistyped_accounts_get_one_answer(client, session, two_branches,
                                                             sandbox):
    nvr = session.get(m.PersonalAccount, two_branches[1].ids["PersonalAccount"])
    nvr.status = "closed"
    session.commit()
    typed = {"unknown": "239999999999", "closed": nvr.number, "mistyped": "23000000000A"}
    pages = {}
    for kind, number in typed.items():
        response = step1(client, account=number)
        assert response.status_code == 200, kind
        assert guest_payments.NOT_FOUND in text(response), kind
        pages[kind] = re.sub(r'nonce="[^"]+"', "", text(response).replace(number, "NUMBER"))
        assert client.get("/pay/check").status_code == 302, kind
    assert pages["unknown"] == pages["closed"] == pages["mistyped"]
    assert len(audits(session, "payment.guest_not_found")) == 3
    assert orders(session) == []


def test_nothing_of_the_holder_appears_but_the_street(client, session, krd, sandbox):
    step1(client)
    account = session.get(m.PersonalAccount, krd)
    assert account.premises.address == FULL_ADDRESS and account.holder_name == HOLDER
    page = text(client.get("/pay/check"))
    for secret in (FULL_ADDRESS, HOLDER, "Иванов", "д. 1", "кв. 1"):
        assert secret not in page, secret


def test_the_masking_rule():
    place = SimpleNamespace(locality="ст. Динская", street="ул. Красная")
    assert guest_payments.masked_address(place) == "ст. Динская, ул. Красная"
    assert guest_payments.masked_address(SimpleNamespace(locality="х. Ленина", street="")) \
        == "х. Ленина"


# The throttle ------------------------------------------------------------------------------


def test_look_ups_are_throttled_per_address_found_or_not(client, session, krd, sandbox):
    ip = "203.0.113.7"
    for n in range(IP_LIMIT - 1):
        step1(client, account=f"2399999{n:05d}", ip=ip)
    assert step1(client, ip=ip).status_code == 302, "the last allowed look-up finds it"
    blocked = step1(client, ip=ip)
    assert blocked.status_code == 200
    assert "Слишком много попыток за короткое время" in text(blocked)
    assert re.search(r"через \d+ мин\.", text(blocked))
    # «Оплатить» counts too (a replayed session cookie still holds the draft)
    refused = client.post("/pay/check", data={"method": "card"},
                          environ_base={"REMOTE_ADDR": ip})
    assert "Слишком много попыток" in text(refused)
    assert orders(session) == [] and sandbox.sent == []
    assert step1(client, ip="203.0.113.8").status_code == 302, "another address is not held"


# Form protection, gateway off, other people's orders ----------------------------------------


def test_the_forms_need_the_csrf_token(make_app, two_branches):
    client = make_app(WTF_CSRF_ENABLED=True).test_client()
    assert step1(client).status_code == 400
    page = text(client.get("/pay/"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/pay/", data={"csrf_token": token, "account": KRD_NUMBER,
                                          "amount": "10", "contact": "ivanov@mail.ru"})
    assert response.status_code == 302
    assert client.post("/pay/check", data={"method": "card"}).status_code == 400
    check = text(client.get("/pay/check"))
    assert 'name="csrf_token"' in check


def test_without_a_gateway_nothing_is_looked_up(make_app, session, two_branches):
    client = make_app(SANDBOX_PAY_ENABLED=False).test_client()
    page = text(client.get("/pay/"))
    assert "Оплата онлайн сейчас недоступна" in page and 'name="account"' not in page
    body = text(step1(client, account="239999999999"))
    assert guest_payments.NOT_FOUND not in body
    assert audits(session, "payment.guest_not_found") == []


def test_a_cabinet_order_is_not_shown_on_the_public_page(client, session, krd, sandbox,
                                                          make_user_fn):
    user = make_user_fn("payer", "Resident", kind="resident")
    session.add(m.AccountBinding(user_id=user.id, account_id=krd))
    session.commit()
    state = payment_states.start_payment(session, user, [(krd, Decimal("10"))],
                                         return_url=lambda key: f"http://localhost/{key}")
    assert client.get(f"/pay/result/{state.order.order_key}").status_code == 404
    assert client.get("/pay/result/no-such-order").status_code == 404
    assert session.scalar(select(func.count()).select_from(m.PaymentOrder)) == 1


# The pages themselves ----------------------------------------------------------------------


def landmarks(response) -> str:
    """Russian to screen readers, one <main>, one <h1>: the public pages' markup."""
    body = text(response)
    assert response.status_code == 200 and '<html lang="ru">' in body
    assert len(re.findall(r"<main[\s>]", body)) == 1 and len(re.findall(r"<h1[\s>]", body)) == 1
    return body


def test_each_page_is_marked_up_like_the_other_public_pages(client, session, krd, sandbox):
    assert "<h1>Оплата электроэнергии</h1>" in landmarks(client.get("/pay/"))
    step1(client, amount="235")
    assert "<h1>Проверьте платёж</h1>" in landmarks(client.get("/pay/check"))
    to_gateway(client)
    [order] = orders(session)
    result = landmarks(client.get(f"/pay/result/{order.order_key}"))
    assert "<h1>Результат оплаты</h1>" in result and "Ожидает оплаты." in result
    assert 'http-equiv="refresh"' in result, "a pending payment's page refreshes itself"


@pytest.fixture
def live_overrides(tmp_path):
    return {"SANDBOX_PAY_DIR": str(tmp_path / "sandbox")}


@pytest.mark.browser
def test_paying_on_a_360_px_phone(browser, live_server, session, two_branches, shots):
    """Chromium at 360 px: no page is wider than the screen, and the card pays the bill."""
    krd = two_branches[0].ids["PersonalAccount"]
    before = balance(session, krd)
    context = browser.new_context(base_url=live_server, locale="ru-RU",
                                  viewport={"width": 360, "height": 740})
    context.set_default_timeout(45_000)
    page = context.new_page()

    def fits(name: str) -> None:
        shots(page, name)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, name

    def submit(selector: str = "button[type=submit]") -> None:
        with page.expect_navigation():
            page.locator(selector).first.click()

    try:
        page.goto("/pay/")
        fits("guest-pay-1-form")
        page.fill("#account", "2300 0000 0001")
        page.fill("#amount", "235")
        page.fill("#contact", "ivanov@mail.ru")
        submit()
        assert page.url.endswith("/pay/check")
        assert "Краснодар, ул. Красная" in page.content()
        fits("guest-pay-2-check")
        submit()
        assert "/sandbox-pay/sb_" in page.url
        page.fill("input[name=number]", OK_CARD)
        page.fill("input[name=expiry]", "12/30")
        page.fill("input[name=cvc]", "123")
        submit("button[name=pay]")
        assert "/pay/result/" in page.url
        assert "Платёж прошёл" in page.content()
        fits("guest-pay-3-result")
    finally:
        context.close()
    assert balance(session, krd) == before - Decimal("235.00")
    assert [r.status for r in order_rows(session)] == ["succeeded"]
