"""The YooKassa gateway against a local HTTP server that speaks the same API v3."""
from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from decimal import Decimal

import pytest
from flask import Flask
from flask_appbuilder import Model
from sqlalchemy import create_engine
from werkzeug.test import EnvironBuilder

import lk_yookassa
from app import create_app
from app import models as m
from app.extensions import db
from app.services import payment_states
from app.services.payments import (
    ForgedNotification,
    GatewayError,
    PaymentRequest,
    Receipt,
    ReceiptItem,
)
from app.views.access import sync_roles
from lk_yookassa import YooKassaConfigError, YooKassaGateway
from lk_yookassa.testing import SECRET, SHOP, FakeYooKassa
from tests.factories import build_branch_world, make_user


@pytest.fixture
def fake():
    server = FakeYooKassa()
    yield server
    server.close()


def gateway(fake, secret=SECRET, **kw):
    kw.setdefault("timeout", 2.0)
    kw.setdefault("backoff", 0.01)
    return YooKassaGateway(SHOP, secret, fake.url, **kw)


def request(key=None, amount="1234.50", **kw):
    receipt = Receipt(items=(
        ReceiptItem("Электроэнергия, лицевой счёт 230000000001", Decimal("1000.00"), 11),
        ReceiptItem("Электроэнергия, лицевой счёт 230000000002", Decimal("234.50"), 11)),
        email="ivanov@example.ru")
    key = key or str(uuid.uuid4())
    return PaymentRequest(
        amount=Decimal(amount), currency="RUB",
        description="Оплата электроэнергии, л/с 230000000001, 230000000002",
        account="230000000001,230000000002", return_url=f"https://lk.example.ru/pay/{key}",
        idempotence_key=key, receipt=receipt,
        metadata={"order_key": key, "accounts": "230000000001,230000000002", **kw})


def test_create_sends_documented_request(fake):
    req = request()
    created = gateway(fake).create_payment(req)
    assert created.status == "pending"
    assert created.amount == Decimal("1234.50")
    assert created.confirmation_url == f"{fake.url}/checkout/{created.external_id}"
    assert created.external_id in fake.payments
    sent = fake.posts("/v3/payments")[0]
    expected = "Basic " + base64.b64encode(f"{SHOP}:{SECRET}".encode()).decode()
    assert sent["headers"]["Authorization"] == expected
    assert sent["headers"]["Idempotence-Key"] == req.idempotence_key
    assert sent["headers"]["Content-Type"] == "application/json"
    body = sent["body"]
    assert body["amount"] == {"value": "1234.50", "currency": "RUB"}
    assert body["capture"] is True
    assert body["confirmation"] == {"type": "redirect", "return_url": req.return_url}
    assert body["description"] == req.description
    assert body["metadata"] == {"order_key": req.idempotence_key,
                                "accounts": "230000000001,230000000002"}
    assert "payment_method_data" not in body
    assert body["receipt"]["customer"] == {"email": "ivanov@example.ru"}
    assert "tax_system_code" not in body["receipt"]  # none asked for
    assert body["receipt"]["items"] == [
        {"description": "Электроэнергия, лицевой счёт 230000000001", "quantity": "1.00",
         "amount": {"value": "1000.00", "currency": "RUB"}, "vat_code": 11,
         "payment_mode": "full_payment", "payment_subject": "commodity"},
        {"description": "Электроэнергия, лицевой счёт 230000000002", "quantity": "1.00",
         "amount": {"value": "234.50", "currency": "RUB"}, "vat_code": 11,
         "payment_mode": "full_payment", "payment_subject": "commodity"}]


def test_receipt_by_phone_and_the_payers_choice_of_sbp(fake):
    req = request()
    req = PaymentRequest(**{**req.__dict__, "payment_method": "sbp", "receipt": Receipt(
        items=req.receipt.items, phone="79181234567")})
    gateway(fake, methods="card,sbp").create_payment(req)
    body = fake.posts("/v3/payments")[0]["body"]
    assert body["payment_method_data"] == {"type": "sbp"}
    assert body["receipt"]["customer"] == {"phone": "79181234567"}


def test_card_chosen_when_the_shop_offers_both(fake):
    gw = gateway(fake, methods="card,sbp")
    assert gw.methods == ("card", "sbp")
    gw.create_payment(request())
    assert fake.posts("/v3/payments")[0]["body"]["payment_method_data"] == {"type": "bank_card"}


def test_method_the_shop_has_not_enabled_is_refused(fake):
    req = PaymentRequest(**{**request().__dict__, "payment_method": "sbp"})
    with pytest.raises(GatewayError, match="not enabled"):
        gateway(fake).create_payment(req)
    assert fake.posts("/v3/payments") == []
    with pytest.raises(ValueError, match="unknown payment methods"):
        gateway(fake, methods="card,cash")


def test_repeated_idempotence_key_returns_same_payment(fake):
    req = request()
    first = gateway(fake).create_payment(req)
    second = gateway(fake).create_payment(req)
    assert first.external_id == second.external_id
    assert len(fake.payments) == 1  # no double charge


def test_same_key_other_body_is_refused(fake):
    req = request()
    gateway(fake).create_payment(req)
    with pytest.raises(GatewayError, match="invalid_request"):
        gateway(fake).create_payment(PaymentRequest(**{**req.__dict__,
                                                       "amount": Decimal("1.00")}))
    assert len(fake.payments) == 1


def test_wrong_credentials_are_a_configuration_error(fake, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(YooKassaConfigError, match="YOOKASSA_SECRET_KEY"):
        gateway(fake, secret="wrong-secret-123").create_payment(request())
    assert len(fake.requests) == 1  # not retried
    assert "wrong-secret-123" not in caplog.text
    assert issubclass(YooKassaConfigError, GatewayError)  # the portal's message, not a 500


def test_429_then_success_retries_with_same_key(fake):
    fake.fail = [429]
    fake.retry_after = "0"
    pauses = []
    created = gateway(fake, sleep=pauses.append).create_payment(request())
    posts = fake.posts("/v3/payments")
    assert len(posts) == 2 and len(pauses) == 1
    assert posts[0]["headers"]["Idempotence-Key"] == posts[1]["headers"]["Idempotence-Key"]
    assert created.external_id in fake.payments and len(fake.payments) == 1


def test_500_after_creating_then_success_gives_the_same_payment(fake):
    fake.fail_after = [500]  # the payment was made, the answer was lost: outcome unknown
    created = gateway(fake).create_payment(request())
    assert len(fake.posts("/v3/payments")) == 2
    assert len(fake.payments) == 1
    assert created.external_id == next(iter(fake.payments))


def test_backoff_grows_and_gives_up_with_russian_message(fake):
    fake.fail = [503, 503, 503, 503, 503]
    pauses = []
    with pytest.raises(GatewayError, match="ЮKassa временно недоступна"):
        gateway(fake, retries=3, backoff=0.5, sleep=pauses.append).create_payment(request())
    assert len(fake.requests) == 4
    assert pauses == [0.5, 1.0, 2.0]
    assert not fake.payments


def test_timeout_retries_then_clear_error(fake):
    fake.delay = 0.6
    with pytest.raises(GatewayError, match="не ответила вовремя"):
        gateway(fake, timeout=0.2, retries=1).create_payment(request())
    time.sleep(0.7)  # let the slow handler threads finish
    assert len(fake.posts("/v3/payments")) == 2
    keys = {r["headers"]["Idempotence-Key"] for r in fake.posts("/v3/payments")}
    assert len(keys) == 1  # one payment at most, whatever the server did


def test_unreachable_is_an_error():
    closed = YooKassaGateway(SHOP, SECRET, "http://127.0.0.1:9", timeout=1.0, retries=1,
                             sleep=lambda s: None)
    with pytest.raises(GatewayError, match="недоступна"):
        closed.fetch_status("2d1c1f5e-000f-5000-9000-1b2b4c9f5e70")


def test_fetch_status(fake):
    created = gateway(fake).create_payment(request())
    assert gateway(fake).fetch_status(created.external_id).status == "pending"
    fake.succeed(created.external_id)
    got = gateway(fake).fetch_status(created.external_id)
    assert got.status == "succeeded" and got.amount == Decimal("1234.50")
    assert got.paid_at is not None and got.paid_at.year == 2026
    last = fake.requests[-1]
    assert last["method"] == "GET" and last["path"] == f"/v3/payments/{created.external_id}"
    assert "Idempotence-Key" not in last["headers"]


def test_fetch_status_canceled_reason(fake):
    created = gateway(fake).create_payment(request())
    fake.payments[created.external_id].update(
        status="canceled", cancellation_details={"party": "payment_network",
                                                 "reason": "card_expired"})
    got = gateway(fake).fetch_status(created.external_id)
    assert got.status == "canceled" and got.cancellation_reason == "card_expired"


def test_fetch_unknown_payment_is_an_error(fake):
    with pytest.raises(GatewayError, match="not_found"):
        gateway(fake).fetch_status("no-such-payment")


def test_refund_is_idempotent(fake):
    created = gateway(fake).create_payment(request())
    fake.succeed(created.external_id)
    key = str(uuid.uuid4())
    receipt = Receipt(items=(ReceiptItem("Электроэнергия, лицевой счёт 230000000002",
                                         Decimal("234.50"), 11),), email="ivanov@example.ru")
    first = gateway(fake).refund(created.external_id, Decimal("234.50"), key, receipt)
    second = gateway(fake).refund(created.external_id, Decimal("234.50"), key, receipt)
    assert first.status == "succeeded" and first.amount == Decimal("234.50")
    assert first.external_id == second.external_id and len(fake.refunds) == 1
    sent = fake.posts("/v3/refunds")[0]
    assert sent["headers"]["Idempotence-Key"] == key
    assert sent["body"]["payment_id"] == created.external_id
    assert sent["body"]["amount"] == {"value": "234.50", "currency": "RUB"}
    assert sent["body"]["receipt"]["items"][0]["vat_code"] == 11


def test_refund_of_unpaid_payment_is_refused(fake):
    created = gateway(fake).create_payment(request())
    with pytest.raises(GatewayError, match="invalid_request"):
        gateway(fake).refund(created.external_id, Decimal("1.00"), str(uuid.uuid4()),
                             Receipt(items=(), email="a@b.ru"))


def test_secret_never_logged(fake, caplog):
    caplog.set_level(logging.DEBUG)
    fake.fail = [500, 500]
    gateway(fake, retries=2).create_payment(request())
    assert SECRET not in caplog.text
    assert SECRET not in repr(gateway(fake))


# Notifications -----------------------------------------------------------------------------


def notification(remote_addr: str, event="payment.succeeded", headers=None, body=None):
    body = body if body is not None else {
        "type": "notification", "event": event,
        "object": {"id": "2d1c1f5e-000f-5000-9000-1b2b4c9f5e70", "status": "succeeded",
                   "paid": True, "amount": {"value": "1234.50", "currency": "RUB"},
                   "metadata": {"order_key": "k"}}}
    return EnvironBuilder(method="POST", path="/payments/notify/yookassa",
                          data=json.dumps(body), content_type="application/json",
                          headers=headers or {},
                          environ_base={"REMOTE_ADDR": remote_addr}).get_request()


@pytest.mark.parametrize("address", ["185.71.76.5", "77.75.156.11", "77.75.154.200",
                                     "2a02:5180::1"])
def test_notification_from_yookassa_accepted(fake, address):
    notice = gateway(fake).parse_notification(notification(address))
    assert notice.event == "payment.succeeded"
    assert notice.external_id == "2d1c1f5e-000f-5000-9000-1b2b4c9f5e70"
    assert notice.status == "succeeded" and notice.amount == Decimal("1234.50")


@pytest.mark.parametrize("address", ["203.0.113.7", "77.75.156.12", "127.0.0.1", "::1"])
def test_notification_from_elsewhere_rejected(fake, address):
    with pytest.raises(ForgedNotification, match="source address"):
        gateway(fake).parse_notification(notification(address))


def test_forwarded_for_ignored_without_trusted_proxy(fake):
    with pytest.raises(ForgedNotification):
        gateway(fake).parse_notification(
            notification("127.0.0.1", headers={"X-Forwarded-For": "185.71.76.5"}))


def test_forwarded_for_honoured_from_trusted_proxy(fake):
    gw = gateway(fake, trusted_proxies="127.0.0.1")
    # the client may prepend anything; the hop the proxy appended is what counts
    ok = notification("127.0.0.1", headers={"X-Forwarded-For": "203.0.113.7, 185.71.76.5"})
    assert gw.parse_notification(ok).event == "payment.succeeded"
    spoofed = notification("127.0.0.1", headers={"X-Forwarded-For": "185.71.76.5, 203.0.113.7"})
    with pytest.raises(ForgedNotification):
        gw.parse_notification(spoofed)
    direct = notification("203.0.113.9", headers={"X-Forwarded-For": "185.71.76.5"})
    with pytest.raises(ForgedNotification):  # not from the proxy: the header is not believed
        gw.parse_notification(direct)


def test_refund_and_canceled_notifications(fake):
    gw = gateway(fake)
    canceled = gw.parse_notification(notification("185.71.77.1", event="payment.canceled"))
    assert canceled.event == "payment.canceled"
    refund = gw.parse_notification(notification("185.71.77.1", body={
        "type": "notification", "event": "refund.succeeded",
        "object": {"id": "216749f7-0016-50be-b000-078d43a63ae4", "status": "succeeded",
                   "payment_id": "216749da-000f-50be-b000-096747fad91e",
                   "amount": {"value": "1.00", "currency": "RUB"}}}))
    assert refund.event == "refund.succeeded"
    assert refund.external_id == "216749da-000f-50be-b000-096747fad91e"


@pytest.mark.parametrize("body", [{"event": "payment.succeeded"}, {"type": "notification"},
                                  ["x"], {"type": "notification", "event": "payment.succeeded",
                                          "object": {"amount": {"value": "1"}}}])
def test_malformed_notification_rejected(fake, body):
    with pytest.raises(ForgedNotification, match="malformed"):
        gateway(fake).parse_notification(notification("185.71.76.5", body=body))


# The hooks ---------------------------------------------------------------------------------


def app_with(**config):
    """An app with these settings, configured by the plugin as the portal would."""
    flask_app = Flask(__name__)
    flask_app.config.update(config)
    lk_yookassa.configure(flask_app)
    return flask_app


def offered(flask_app) -> list:
    with flask_app.app_context():
        return lk_yookassa.register_payment_gateways()


def test_off_unless_shop_and_gateway_configured(monkeypatch):
    monkeypatch.delenv("YOOKASSA_SHOP_ID", raising=False)
    assert offered(app_with(PAYMENT_GATEWAY="yookassa")) == []
    assert offered(app_with(YOOKASSA_SHOP_ID=SHOP, YOOKASSA_SECRET_KEY=SECRET)) == []
    assert offered(app_with(YOOKASSA_SHOP_ID=SHOP, YOOKASSA_SECRET_KEY=SECRET,
                            PAYMENT_GATEWAY="sandbox")) == []


def test_configured_gateway_is_offered():
    [gw] = offered(app_with(YOOKASSA_SHOP_ID=SHOP, YOOKASSA_SECRET_KEY=SECRET,
                            PAYMENT_GATEWAY="yookassa", YOOKASSA_TRUSTED_PROXY="10.0.0.1"))
    assert gw.name == "yookassa" and gw.development is False
    assert gw.api_url == "https://api.yookassa.ru"
    assert len(gw.notify_networks) == 7 and len(gw.trusted_proxies) == 1


def test_settings_are_each_apps_own():
    """The plugin module serves every app of a process: one app's shop is not another's."""
    shop = app_with(YOOKASSA_SHOP_ID=SHOP, YOOKASSA_SECRET_KEY=SECRET,
                    PAYMENT_GATEWAY="yookassa")
    app_with()
    assert [gw.name for gw in offered(shop)] == ["yookassa"]


def test_missing_secret_or_plain_http_in_production_stop_the_start():
    with pytest.raises(RuntimeError, match="YOOKASSA_SECRET_KEY"):
        app_with(YOOKASSA_SHOP_ID=SHOP, PAYMENT_GATEWAY="yookassa")
    with pytest.raises(RuntimeError, match="https"):
        app_with(YOOKASSA_SHOP_ID=SHOP, YOOKASSA_SECRET_KEY=SECRET, PAYMENT_GATEWAY="yookassa",
                 PRODUCTION=True, YOOKASSA_API_URL="http://api.yookassa.ru")
    with pytest.raises(RuntimeError, match="YOOKASSA_NOTIFY_IPS"):
        app_with(YOOKASSA_SHOP_ID=SHOP, YOOKASSA_SECRET_KEY=SECRET, PAYMENT_GATEWAY="yookassa",
                 YOOKASSA_NOTIFY_IPS="nope")


NOTIFY = "/payments/yookassa/notify"


@pytest.fixture
def portal(tmp_path, fake):
    url = f"sqlite:///{tmp_path / 'yookassa.sqlite3'}"
    engine = create_engine(url)
    Model.metadata.create_all(engine)
    engine.dispose()
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SERVER_NAME": "localhost",
                      "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False, "MAIL_SERVER": None,
                      "DEV_OUTBOX_DIR": str(tmp_path / "outbox"),
                      "PAYMENT_GATEWAY": "yookassa", "YOOKASSA_SHOP_ID": SHOP,
                      "YOOKASSA_SECRET_KEY": SECRET, "YOOKASSA_API_URL": fake.url,
                      "YOOKASSA_BACKOFF": "0.01"})
    with app.app_context():
        sync_roles(app.appbuilder)
        yield app
        db.session.remove()


def test_portal_pays_through_yookassa(portal, fake):
    assert portal.extensions["payment_gateway"].name == "yookassa"
    session = db.session
    world = build_branch_world(session, "krd", "Краснодарэнергосбыт", "Краснодар", 1)
    user = make_user(session, portal.appbuilder.sm, username="payer", role="Resident",
                     kind="resident", phone="+79185550077")
    account_id = world.ids["PersonalAccount"]
    session.add(m.AccountBinding(user_id=user.id, account_id=account_id))
    session.commit()
    with portal.test_request_context():
        state = payment_states.start_payment(session, user, [(account_id, Decimal("235"))],
                                             return_url=lambda key: f"https://lk.example/r/{key}")
    order = state.order
    assert order.confirmation_url.startswith(f"{fake.url}/checkout/")
    sent = fake.posts("/v3/payments")[0]
    assert sent["headers"]["Idempotence-Key"] == order.order_key
    assert sent["body"]["amount"] == {"value": "235.00", "currency": "RUB"}
    assert sent["body"]["receipt"]["items"][0]["vat_code"] == 11  # PAYMENT_VAT_CODE
    assert sent["body"]["receipt"]["tax_system_code"] == 1  # PAYMENT_TAX_SYSTEM_CODE
    assert sent["body"]["metadata"]["order_key"] == order.order_key

    fake.succeed(order.external_id)
    body = {"type": "notification", "event": "payment.succeeded",
            "object": {"id": order.external_id, "status": "succeeded", "paid": True,
                       "amount": {"value": "235.00", "currency": "RUB"}}}
    client = portal.test_client()
    forged = client.post(NOTIFY, json=body, environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert forged.status_code == 403
    assert payment_states.order_state(session, order).status != "succeeded"
    real = client.post(NOTIFY, json=body, environ_base={"REMOTE_ADDR": "185.71.76.5"})
    assert real.status_code == 200, real.get_data(as_text=True)
    assert payment_states.order_state(session, order).status == "succeeded"
    assert fake.requests[-1]["method"] == "GET"  # the portal re-checked with YooKassa
