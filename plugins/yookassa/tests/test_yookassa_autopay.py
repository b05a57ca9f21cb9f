"""Autopay through YooKassa against the loopback API: the first payment asks to save the card
and its answer carries the saved method; later payments by ``payment_method_id`` are final in
the answer and follow the Idempotence-Key rules (same key and body: the same payment; same key,
another body: refused)."""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from app.services.payments import GatewayError, PaymentRequest, Receipt, ReceiptItem
from lk_yookassa import YooKassaGateway
from lk_yookassa.testing import SECRET, SHOP, FakeYooKassa


@pytest.fixture
def fake():
    server = FakeYooKassa()
    yield server
    server.close()


@pytest.fixture
def gateway(fake):
    return YooKassaGateway(SHOP, SECRET, fake.url, timeout=2.0, backoff=0.01)


def request(key: str | None = None, amount: str = "735.00", **kw) -> PaymentRequest:
    key = key or str(uuid.uuid4())
    receipt = Receipt(items=(ReceiptItem("Электроэнергия, лицевой счёт 230000000001",
                                         Decimal(amount), 11),), email="ivanov@example.ru")
    return PaymentRequest(amount=Decimal(amount), currency="RUB",
                          description="Оплата электроэнергии, л/с 230000000001",
                          account="230000000001", return_url=kw.pop("return_url", ""),
                          idempotence_key=key, receipt=receipt,
                          metadata={"order_key": key}, **kw)


def saved_card(fake, gateway) -> str:
    """A first payment with the consent, paid on the checkout: returns the method id."""
    first = gateway.create_payment(request(save_payment_method=True,
                                           return_url="https://lk.example.ru/back"))
    fake.succeed(first.external_id)
    method = gateway.fetch_status(first.external_id).saved_method
    assert method is not None and method.saved
    return method.id


def test_the_gateway_says_it_saves_cards(gateway):
    assert gateway.saves_methods is True


def test_the_first_payment_asks_to_save_the_card(fake, gateway):
    created = gateway.create_payment(request(save_payment_method=True,
                                             return_url="https://lk.example.ru/back"))
    body = fake.posts("/v3/payments")[0]["body"]
    assert body["save_payment_method"] is True
    assert body["payment_method_data"] == {"type": "bank_card"}
    assert body["confirmation"]["return_url"] == "https://lk.example.ru/back"
    assert created.status == "pending" and created.confirmation_url
    fake.succeed(created.external_id, last4="4477", expiry=("11", "2029"))
    paid = gateway.fetch_status(created.external_id)
    assert paid.status == "succeeded"
    method = paid.saved_method
    assert (method.saved, method.card_last4, method.expiry_month, method.expiry_year,
            method.card_type) == (True, "4477", 11, 2029, "MasterCard")
    assert method.id in fake.methods


def test_an_ordinary_payment_asks_for_nothing_and_carries_no_saved_card(fake, gateway):
    created = gateway.create_payment(request(return_url="https://lk.example.ru/back"))
    body = fake.posts("/v3/payments")[0]["body"]
    assert "save_payment_method" not in body and "payment_method_id" not in body
    fake.succeed(created.external_id)
    assert gateway.fetch_status(created.external_id).saved_method is None


def test_a_payment_by_the_saved_method_is_final_without_confirmation(fake, gateway):
    method_id = saved_card(fake, gateway)
    charged = gateway.create_payment(request(payment_method_id=method_id))
    body = fake.posts("/v3/payments")[-1]["body"]
    assert body["payment_method_id"] == method_id
    assert "confirmation" not in body and "payment_method_data" not in body
    assert "save_payment_method" not in body
    assert (charged.status, charged.amount, charged.confirmation_url) == \
        ("succeeded", Decimal("735.00"), None)
    assert charged.paid_at is not None


def test_same_key_and_body_answer_the_same_payment_another_body_is_refused(fake, gateway):
    method_id = saved_card(fake, gateway)
    key = str(uuid.uuid4())
    first = gateway.create_payment(request(key, payment_method_id=method_id))
    again = gateway.create_payment(request(key, payment_method_id=method_id))
    assert again.external_id == first.external_id
    charged = [p for p in fake.payments.values() if p["status"] == "succeeded"
               and p["amount"]["value"] == "735.00" and "confirmation" not in p]
    assert len(charged) == 1
    with pytest.raises(GatewayError, match="invalid_request"):
        gateway.create_payment(request(key, amount="800.00", payment_method_id=method_id))


def test_an_unknown_outcome_is_retried_under_the_same_key_and_charges_once(fake, gateway):
    method_id = saved_card(fake, gateway)
    fake.fail_after = [500]  # charged, but the answer is lost
    charged = gateway.create_payment(request(payment_method_id=method_id))
    assert charged.status == "succeeded"
    keys = {r["headers"]["Idempotence-Key"] for r in fake.posts("/v3/payments")[-2:]}
    assert len(keys) == 1
    assert sum(1 for p in fake.payments.values() if "confirmation" not in p) == 1


@pytest.mark.parametrize(("decline", "today", "reason"), [
    ("insufficient_funds", (2026, 12), "insufficient_funds"),
    (None, (2029, 1), "card_expired"),
])
def test_refusals_come_back_with_their_reason(fake, gateway, decline, today, reason):
    method_id = saved_card(fake, gateway)
    if decline:
        fake.methods[method_id]["decline"] = decline
    fake.today = today
    refused = gateway.create_payment(request(payment_method_id=method_id))
    assert (refused.status, refused.cancellation_reason) == ("canceled", reason)


def test_forgetting_a_method_calls_nothing(fake, gateway):
    method_id = saved_card(fake, gateway)
    before = len(fake.requests)
    gateway.forget_method(method_id)
    assert len(fake.requests) == before
