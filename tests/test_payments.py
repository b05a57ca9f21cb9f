"""Card payments: the form, the sandbox gateway's hosted page, every ordering of the
notification and the payer's return, duplicates, forged notifications, concurrent
notifications (PostgreSQL), refunds by finance, the daily reconciliation, and the hooks."""
from __future__ import annotations

import datetime as dt
import io
import json
import threading
from decimal import Decimal
from urllib.parse import urlparse

import pytest
from flask import g
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import func, select

from app import models as m
from app.extensions import db
from app.plugins import hookimpl
from app.plugins.sandbox_gateway import SIGNATURE_HEADER, luhn_ok, sign
from app.services import accounts, payment_reconciliation, payment_states, payments
from app.views.access import FINANCE, STAFF
from tests.plugins.recorder import Recorder
from tests.signins import session_user_id

OK_CARD, DECLINED_CARD, THREE_DS_CARD = ("4111 1111 1111 1111", "4000 0000 0000 0002",
                                         "4000 0000 0000 3220")
NOTIFY = "/cabinet/pay/notify/sandbox"


# Fixtures --------------------------------------------------------------------------------


@pytest.fixture
def resident(session, two_branches, make_user_fn, client):
    """A resident with both branches' accounts bound, signed in on ``client``."""
    krd, nvr = two_branches
    user = make_user_fn("payer", "Resident", kind="resident", phone="+79185550077")
    for world in (krd, nvr):
        session.add(m.AccountBinding(user_id=user.id, account_id=world.ids["PersonalAccount"]))
    session.commit()
    g.pop("_login_user", None)
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = session_user_id(user)
        flask_session["_fresh"] = True
    return user


@pytest.fixture
def krd_account(two_branches):
    return two_branches[0].ids["PersonalAccount"]


@pytest.fixture
def nvr_account(two_branches):
    return two_branches[1].ids["PersonalAccount"]


def balance(session, account_id: int) -> Decimal:
    session.expire_all()
    (summary,) = accounts.summarize(session, [account_id])
    return summary.charged - summary.paid


def audits(session, action: str) -> list[m.AuditEvent]:
    session.expire_all()
    return list(session.execute(select(m.AuditEvent).where(m.AuditEvent.action == action)
                                .order_by(m.AuditEvent.id)).scalars())


def start(client, account_id: int, amounts: dict[int, str], method: str = "card") -> str:
    """Submit the pay form; returns the sandbox page path the portal redirects to."""
    data = {"account": [str(a) for a in amounts], "method": method,
            **{f"amount_{a}": v for a, v in amounts.items()}}
    response = client.post(f"/cabinet/pay/{account_id}", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    location = urlparse(response.headers["Location"])
    assert location.path.startswith("/sandbox-pay/sb_")
    return location.path


def pay_card(client, page: str, card: str, expiry: str = "12/30", cvc: str = "123") -> str:
    """Pay on the sandbox page; returns where it sends the payer (the return URL)."""
    response = client.post(page, data={"number": card, "expiry": expiry, "cvc": cvc})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def deliver(client, sent, **kwargs):
    _url, body, headers = sent
    return client.post(NOTIFY, data=body, headers=headers, content_type="application/json",
                       **kwargs)


def order_rows(session) -> list[m.Payment]:
    session.expire_all()
    return list(session.execute(select(m.Payment).where(m.Payment.gateway == "sandbox")
                                .order_by(m.Payment.id)).scalars())


def signed(gateway, event: str, payment_id: str, amount: str, status: str) -> tuple:
    body = json.dumps({"type": "notification", "event": event, "object": {
        "id": payment_id, "status": status, "amount": {"value": amount, "currency": "RUB"}}}
    ).encode()
    return (NOTIFY, body, {SIGNATURE_HEADER: sign(gateway.secret, body)})


# The form -------------------------------------------------------------------------------


def test_pay_form_prefills_the_amount_due_and_offers_every_bound_account(
        client, resident, krd_account, nvr_account, sandbox):
    page = client.get(f"/cabinet/pay/{krd_account}").get_data(as_text=True)
    assert 'name="amount_%d" value="235,00"' % krd_account in page
    assert f'value="{krd_account}" id="account-{krd_account}" checked' in page
    assert f'value="{nvr_account}" id="account-{nvr_account}">' in page  # offered, not ticked
    assert "230000000001" in page and "230000000002" in page


def test_another_users_account_is_not_found(client, session, resident, make_user_fn,
                                            krd_account, sandbox):
    session.execute(m.AccountBinding.__table__.delete().where(
        m.AccountBinding.account_id == krd_account))
    session.commit()
    assert client.get(f"/cabinet/pay/{krd_account}").status_code == 404
    nvr = session.execute(select(m.AccountBinding.account_id)).scalar()
    response = client.post(f"/cabinet/pay/{nvr}",
                           data={"account": [str(nvr), str(krd_account)],
                                 f"amount_{nvr}": "10", f"amount_{krd_account}": "10"})
    assert response.status_code == 404
    assert session.scalar(select(func.count()).select_from(m.PaymentOrder)) == 0


def test_an_account_that_is_not_a_number_is_not_chosen(client, session, resident,
                                                        krd_account, sandbox):
    """"²" is a digit to str.isdigit() but not to int(): it used to be a server error."""
    response = client.post(f"/cabinet/pay/{krd_account}",
                           data={"account": "²", f"amount_{krd_account}": "10"})
    assert response.status_code == 200
    assert "Выберите хотя бы один лицевой счёт." in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(m.PaymentOrder)) == 0


@pytest.mark.parametrize("raw, message", [
    ("", "Укажите сумму."),
    ("0", "Сумма должна быть больше нуля."),
    ("12,345", "Сумма — число рублей"),
    ("-5", "Сумма — число рублей"),
    ("1e3", "Сумма — число рублей"),
    ("600000", "не более 500 000 руб."),
])
def test_bad_amounts_are_refused(client, resident, krd_account, sandbox, raw, message):
    response = client.post(f"/cabinet/pay/{krd_account}",
                           data={"account": str(krd_account), f"amount_{krd_account}": raw})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)


def test_amounts_read_like_people_type_them():
    assert payment_states.parse_amount("1 234,5") == Decimal("1234.50")
    assert payment_states.parse_amount("235.00") == Decimal("235.00")


# Every ordering of notification and return; duplicates ----------------------------------


@pytest.mark.parametrize("order", [
    ("notify", "return"),
    ("return", "notify"),
    ("notify", "notify", "return", "return"),
    ("return", "return", "notify", "notify", "notify"),
    ("return",),  # the notification is lost: the return alone credits
    ("notify",),  # the payer closes the tab: the notification alone credits
])
def test_credited_exactly_once_whatever_the_order(client, session, resident, krd_account,
                                                  sandbox, order):
    before = balance(session, krd_account)
    back = pay_card(client, start(client, krd_account, {krd_account: "235,00"}), OK_CARD)
    assert urlparse(back).path.startswith("/cabinet/pay/result/")
    assert len(sandbox.sent) == 1
    for step in order:
        if step == "notify":
            assert deliver(client, sandbox.sent[0]).status_code == 200
        else:
            page = client.get(back).get_data(as_text=True)
            assert "Платёж прошёл" in page
    assert balance(session, krd_account) == before - Decimal("235.00")
    assert [r.status for r in order_rows(session)] == ["succeeded"]
    assert len(audits(session, "payment.succeeded")) == 1


def test_the_return_url_carries_no_trusted_status(client, session, resident, krd_account,
                                                  sandbox):
    """Coming back (with anything in the URL) before paying credits nothing."""
    page = start(client, krd_account, {krd_account: "100"})
    order = session.execute(select(m.PaymentOrder)).scalar_one()
    body = client.get(f"/cabinet/pay/result/{order.order_key}?status=succeeded&amount=100"
                      ).get_data(as_text=True)
    assert "Ждём подтверждения" in body
    assert [r.status for r in order_rows(session)] == ["pending"]
    assert page


def test_late_and_reordered_notifications_change_nothing(client, session, resident,
                                                         krd_account, sandbox):
    before = balance(session, krd_account)
    pay_card(client, start(client, krd_account, {krd_account: "50"}), OK_CARD)
    external_id = order_rows(session)[0].external_id
    # a stale "pending" and a "canceled" arrive after the success, correctly signed
    assert deliver(client, sandbox.sent[0]).status_code == 200
    for event, status in (("payment.waiting_for_capture", "pending"),
                          ("payment.canceled", "canceled")):
        answer = deliver(client, signed(sandbox, event, external_id, "50.00", status))
        assert answer.status_code == 200
    assert [r.status for r in order_rows(session)] == ["succeeded"]
    assert balance(session, krd_account) == before - Decimal("50.00")
    assert len(audits(session, "payment.succeeded")) == 1


# Several accounts in one payment ---------------------------------------------------------


def test_several_accounts_in_one_payment_split_per_account(client, session, resident,
                                                           krd_account, nvr_account, sandbox):
    krd_before, nvr_before = balance(session, krd_account), balance(session, nvr_account)
    page = start(client, krd_account, {krd_account: "235,00", nvr_account: "100,50"})
    record = sandbox.store.get(page.rsplit("/", 1)[1])
    assert record["amount"] == "335.50"
    assert record["receipt"]["customer"] == {"email": "payer@example.test"}
    assert [(i["description"], i["amount"]["value"], i["vat_code"])
            for i in record["receipt"]["items"]] == [
        ("Электроэнергия, лицевой счёт 230000000001", "235.00", 11),
        ("Электроэнергия, лицевой счёт 230000000002", "100.50", 11)]
    back = pay_card(client, page, OK_CARD)
    body = client.get(back).get_data(as_text=True)
    assert "Платёж прошёл" in body and "335,50" in body
    rows = order_rows(session)
    assert [(r.account_id, r.amount, r.status) for r in rows] == [
        (krd_account, Decimal("235.00"), "succeeded"),
        (nvr_account, Decimal("100.50"), "succeeded")]
    assert len({r.order_key for r in rows}) == 1
    assert balance(session, krd_account) == krd_before - Decimal("235.00")
    assert balance(session, nvr_account) == nvr_before - Decimal("100.50")

    pdf = client.get(f"/cabinet/pay/receipt/{rows[0].order_key}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    for expected in ("Подтверждение онлайн-оплаты", "Банковская карта", "230000000001", "235,00",
                     "230000000002", "100,50", "335,50", record["id"]):
        assert expected in text, expected


def test_pdf_only_for_own_succeeded_payments(client, session, resident, krd_account, sandbox):
    start(client, krd_account, {krd_account: "10"})
    key = order_rows(session)[0].order_key
    assert client.get(f"/cabinet/pay/receipt/{key}.pdf").status_code == 404  # not paid
    assert client.get("/cabinet/pay/receipt/nope.pdf").status_code == 404
    assert client.get("/cabinet/pay/result/nope").status_code == 404


# The sandbox's hosted page ---------------------------------------------------------------


def test_the_payer_chooses_card_or_sbp(client, resident, krd_account, sandbox):
    form = client.get(f"/cabinet/pay/{krd_account}").get_data(as_text=True)
    assert "Способ оплаты" in form
    assert 'name="method" value="card" checked' in form and 'name="method" value="sbp"' in form
    assert "Банковская карта" in form and "СБП" in form


def test_paying_by_sbp_shows_the_qr_code_and_credits_once(client, session, resident,
                                                           krd_account, sandbox):
    before = balance(session, krd_account)
    page = start(client, krd_account, {krd_account: "235"}, method="sbp")
    shown = client.get(page).get_data(as_text=True)
    assert "Оплата через Систему быстрых платежей" in shown and "<svg" in shown
    assert "Номер карты" not in shown
    back = client.post(page, data={"paid_in_bank_app": "1"}).headers["Location"]
    assert deliver(client, sandbox.sent[0]).status_code == 200
    assert "Платёж прошёл" in client.get(back).get_data(as_text=True)
    [row] = order_rows(session)
    assert (row.status, row.method) == ("succeeded", "sbp")
    assert balance(session, krd_account) == before - Decimal("235.00")
    pdf = client.get(f"/cabinet/pay/receipt/{row.order_key}.pdf").data
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Способ оплаты" in text and "СБП" in text


def test_a_method_the_gateway_does_not_offer_is_refused(client, session, resident,
                                                        krd_account, sandbox):
    response = client.post(f"/cabinet/pay/{krd_account}", data={
        "account": [str(krd_account)], f"amount_{krd_account}": "10", "method": "cash"})
    assert response.status_code == 200
    assert "Этот способ оплаты сейчас недоступен" in response.get_data(as_text=True)
    assert order_rows(session) == [] and sandbox.sent == []



def test_declined_card_cancels_and_credits_nothing(client, session, resident, krd_account,
                                                   sandbox):
    before = balance(session, krd_account)
    back = pay_card(client, start(client, krd_account, {krd_account: "235"}), DECLINED_CARD)
    assert deliver(client, sandbox.sent[0]).status_code == 200
    assert "Платёж не прошёл" in client.get(back).get_data(as_text=True)
    assert [r.status for r in order_rows(session)] == ["canceled"]
    assert balance(session, krd_account) == before
    assert json.loads(audits(session, "payment.canceled")[0].details)["reason"] == "card_declined"


def test_three_ds_card_asks_for_the_code(client, session, resident, krd_account, sandbox):
    page = start(client, krd_account, {krd_account: "20"})
    three_ds = pay_card(client, page, THREE_DS_CARD)
    assert three_ds.endswith("/3ds") and sandbox.sent == []
    form = client.get(three_ds).get_data(as_text=True)
    assert "Код из SMS" in form and "3220" in form
    wrong = client.post(three_ds, data={"code": "00000"}).get_data(as_text=True)
    assert "Неверный код. Осталось попыток: 2." in wrong
    response = client.post(three_ds, data={"code": "12345"})
    assert urlparse(response.headers["Location"]).path.startswith("/cabinet/pay/result/")
    assert deliver(client, sandbox.sent[0]).status_code == 200
    assert [r.status for r in order_rows(session)] == ["succeeded"]


@pytest.mark.parametrize("card, expiry, cvc, message", [
    ("4111 1111 1111 1112", "12/30", "123", "Неверный номер карты."),
    ("4111 1111 1111 1111", "13/30", "123", "Срок действия — месяц и год"),
    ("4111 1111 1111 1111", "01/20", "123", "Срок действия карты истёк."),
    ("4111 1111 1111 1111", "12/30", "12", "CVC — три цифры"),
    ("5555 5555 5555 4444", "12/30", "123", "только тестовые карты"),
])
def test_sandbox_checks_the_card(client, session, resident, krd_account, sandbox, card,
                                 expiry, cvc, message):
    page = start(client, krd_account, {krd_account: "20"})
    response = client.post(page, data={"number": card, "expiry": expiry, "cvc": cvc})
    assert response.status_code == 200 and message in response.get_data(as_text=True)
    assert [r.status for r in order_rows(session)] == ["pending"] and sandbox.sent == []


def test_luhn():
    assert luhn_ok("4111111111111111") and luhn_ok("4000000000003220")
    assert not luhn_ok("4111111111111112")


def test_sandbox_pages_need_the_payment_id(client, sandbox):
    assert client.get("/sandbox-pay/sb_doesnotexist000000").status_code == 404
    assert client.get("/sandbox-pay/../etc").status_code == 404


def test_sandbox_is_idempotent_by_key(app, sandbox):
    request = payments.PaymentRequest(
        Decimal("10.00"), "RUB", "Оплата", "230000000001", "http://localhost/back", "key-1",
        payments.Receipt((payments.ReceiptItem("Э", Decimal("10.00"), 11),), email="a@b.c"))
    first = sandbox.create_payment(request)
    assert sandbox.create_payment(request).external_id == first.external_id
    with pytest.raises(payments.GatewayError, match="Idempotence-Key"):
        sandbox.create_payment(payments.PaymentRequest(
            Decimal("11.00"), "RUB", "Оплата", "230000000001", "http://localhost/back",
            "key-1", request.receipt))


# Forged notifications ----------------------------------------------------------------------


def test_forged_notifications_are_rejected_and_audited(client, session, resident,
                                                       krd_account, sandbox):
    before = balance(session, krd_account)
    pay_card(client, start(client, krd_account, {krd_account: "235"}), OK_CARD)
    url, body, headers = sandbox.sent[0]
    external_id = order_rows(session)[0].external_id

    bad_signature = client.post(NOTIFY, data=body, content_type="application/json",
                                headers={SIGNATURE_HEADER: "0" * 64})
    unsigned = client.post(NOTIFY, data=body, content_type="application/json")
    wrong_ip = deliver(client, sandbox.sent[0], environ_base={"REMOTE_ADDR": "203.0.113.9"})
    too_little = deliver(client, signed(sandbox, "payment.succeeded", external_id, "1.00",
                                        "succeeded"))
    unknown = deliver(client, signed(sandbox, "payment.succeeded", "sb_" + "x" * 24, "235.00",
                                     "succeeded"))
    assert [r.status_code for r in (bad_signature, unsigned, wrong_ip, too_little, unknown)] \
        == [403, 403, 403, 403, 404]
    assert [r.status for r in order_rows(session)] == ["pending"]
    assert balance(session, krd_account) == before
    reasons = [json.loads(e.details)["reason"]
               for e in audits(session, "payment.notification_rejected")]
    assert reasons == ["bad signature", "bad signature", "wrong source address 203.0.113.9",
                       "amount mismatch", "unknown payment"]
    assert audits(session, "payment.notification_rejected")[2].ip == "203.0.113.9"

    assert deliver(client, sandbox.sent[0]).status_code == 200  # the real one still counts
    assert balance(session, krd_account) == before - Decimal("235.00")


def test_amount_the_gateway_reports_must_match(client, session, resident, krd_account,
                                               sandbox):
    """A notification is checked against the gateway's own record: if the gateway reports
    another amount than the order's, nothing is credited and finance sees the difference."""
    before = balance(session, krd_account)
    page = start(client, krd_account, {krd_account: "235"})
    pay_card(client, page, OK_CARD)
    record = sandbox.store.get(page.rsplit("/", 1)[1])
    record["amount"] = "23.50"
    sandbox.store.put(record)
    _url, body, headers = sandbox.sent[0]
    body = body.replace(b'"value": "235.00"', b'"value": "23.50"')
    fixed = (NOTIFY, body, {SIGNATURE_HEADER: sign(sandbox.secret, body)})
    assert deliver(client, fixed).status_code == 403  # claims less than the order
    assert deliver(client, sandbox.sent[0]).status_code == 200  # claims right, gateway not
    assert [r.status for r in order_rows(session)] == ["pending"]
    assert balance(session, krd_account) == before
    mismatch = audits(session, "payment.amount_mismatch")
    assert len(mismatch) == 1 and json.loads(mismatch[0].details)["reported"] == "23.50 RUB"
    today = dt.datetime.now(dt.timezone.utc).date()
    days = payment_reconciliation.reconciliation(session, today - dt.timedelta(days=1),
                                                 today + dt.timedelta(days=1))
    assert sum(d.difference for d in days) == Decimal("23.50")


def test_notification_endpoint_is_exempt_from_csrf_and_nothing_else(app):
    from app.extensions import csrf

    # Besides the notification URLs (the portal's, and YooKassa's own once an app has loaded
    # that plugin: CSRFProtect is one object for every app of the process), only a mail
    # client's one-click unsubscribe (RFC 8058), authorised by its signed token.
    assert {"app.views.payments.notify", "app.views.unsubscribe.confirm"} <= csrf._exempt_views
    assert csrf._exempt_views <= {"app.views.payments.notify", "app.views.unsubscribe.confirm",
                                  "lk_yookassa.views.notify"}


# Concurrent notifications ----------------------------------------------------------------


@pytest.mark.committed  # threads, each on a connection of its own
def test_concurrent_notifications_credit_once(app, client, session, resident, krd_account,
                                              sandbox):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("concurrent transactions are tested on PostgreSQL (TEST_DATABASE_URL)")
    before = balance(session, krd_account)
    pay_card(client, start(client, krd_account, {krd_account: "235"}), OK_CARD)
    _url, body, headers = sandbox.sent[0]
    session.close()
    barrier = threading.Barrier(8)
    answers: list[int] = []

    def notify():
        with app.app_context():
            own = app.test_client()
            barrier.wait()
            answers.append(own.post(NOTIFY, data=body, headers=headers,
                                    content_type="application/json").status_code)
            db.session.remove()

    threads = [threading.Thread(target=notify) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert answers == [200] * 8
    assert [r.status for r in order_rows(session)] == ["succeeded"]
    assert balance(session, krd_account) == before - Decimal("235.00")
    assert len(audits(session, "payment.succeeded")) == 1


@pytest.mark.committed  # threads, each on a connection of its own
def test_concurrent_moves_of_one_order_move_it_once(app, session, resident, krd_account,
                                                    sandbox):
    """The conditional UPDATE itself, from many threads at once (any database)."""
    with app.test_request_context():
        state = payment_states.start_payment(session, resident, [(krd_account, Decimal("5"))],
                                             lambda key: "http://localhost/back")
    key = state.order.order_key
    session.commit()
    session.close()
    moved: list[int] = []
    barrier = threading.Barrier(6)

    def move():
        with app.app_context():
            barrier.wait()
            for _ in range(20):
                try:
                    moved.append(payment_states._move(db.session, key, "succeeded"))
                    db.session.commit()
                    break
                except Exception:  # SQLite: "database is locked" -> try again
                    db.session.rollback()
            db.session.remove()

    threads = [threading.Thread(target=move) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(moved) == [0, 0, 0, 0, 0, 1]


# Refunds and reconciliation (finance) ------------------------------------------------------


@pytest.fixture
def paid(client, session, resident, krd_account, nvr_account, sandbox):
    """A succeeded payment for both accounts; returns its rows."""
    pay_card(client, start(client, krd_account, {krd_account: "235", nvr_account: "100"}),
             OK_CARD)
    deliver(client, sandbox.sent[0])
    return order_rows(session)


def sign_in_staff(client, make_user_fn, login, role: str, branch_id=None):
    client.post("/logout/")
    with client.session_transaction() as flask_session:
        flask_session.clear()
    g.pop("_login_user", None)
    user = make_user_fn(role.lower() + "-payments", role, branch_id=branch_id)
    assert login(user.username).status_code == 302
    return user


def test_finance_refunds_one_accounts_part_once(client, session, paid, make_user_fn, login,
                                                krd_account, nvr_account, sandbox):
    krd_before, nvr_before = balance(session, krd_account), balance(session, nvr_account)
    finance = sign_in_staff(client, make_user_fn, login, FINANCE)
    response = client.post("/paymentview/action_post",
                           data={"action": "refund", "rowid": [str(paid[0].id)]})
    assert response.status_code == 302
    assert [r.status for r in order_rows(session)] == ["refunded", "succeeded"]
    assert balance(session, krd_account) == krd_before + Decimal("235.00")
    assert balance(session, nvr_account) == nvr_before
    record = sandbox.store.get(paid[0].external_id)
    assert [(r["amount"], r["receipt"]["items"][0]["description"]) for r in record["refunds"]] \
        == [("235.00", "Электроэнергия, лицевой счёт 230000000001")]
    event = audits(session, "payment.refunded")
    assert len(event) == 1 and event[0].actor_id == finance.id

    client.post("/paymentview/action_post", data={"action": "refund",
                                                  "rowid": [str(paid[0].id)]})
    assert len(sandbox.store.get(paid[0].external_id)["refunds"]) == 1
    assert balance(session, krd_account) == krd_before + Decimal("235.00")
    list_page = client.get("/paymentview/list/").get_data(as_text=True)
    assert "Вернуть онлайн-оплату" in list_page


def test_staff_cannot_refund(client, session, paid, make_user_fn, login, two_branches):
    sign_in_staff(client, make_user_fn, login, STAFF, branch_id=two_branches[0].branch_id)
    client.post("/paymentview/action_post", data={"action": "refund",
                                                  "rowid": [str(paid[0].id)]})
    assert [r.status for r in order_rows(session)] == ["succeeded", "succeeded"]
    assert audits(session, "payment.refunded") == []


def test_a_refused_refund_puts_the_payment_back(app, session, paid, sandbox):
    def refuse(*args, **kwargs):
        raise payments.GatewayError("forbidden")

    sandbox.refund = refuse
    with app.test_request_context():
        result = payment_states.refund(session, [paid[0].id], actor_id=None)
    assert result.refused == [paid[0].id]
    assert [r.status for r in order_rows(session)] == ["succeeded", "succeeded"]
    assert len(audits(session, "payment.refund_failed")) == 1


def test_reconciliation_per_day(client, session, paid, make_user_fn, login, two_branches):
    today = dt.datetime.now(dt.timezone.utc).date()
    days = payment_reconciliation.reconciliation(session, today - dt.timedelta(days=1),
                                                 today + dt.timedelta(days=1))
    total = [d for d in days if d.gateway_count]
    assert len(total) == 1
    assert (total[0].gateway_total, total[0].credited_total, total[0].credited_count,
            total[0].difference) == (Decimal("335.00"), Decimal("335.00"), 2, 0)

    sign_in_staff(client, make_user_fn, login, FINANCE)
    page = client.get("/paymentreconciliationview/list/?date_from=2020-01-01")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "Сверка платежей по дням" in body and "335,00" in body
    assert "Выгрузить в Excel" in body

    span = f"date_from={today - dt.timedelta(days=2)}&date_to={today + dt.timedelta(days=1)}"
    sheet = client.get(f"/paymentreconciliationview/export.xlsx?{span}")
    assert sheet.status_code == 200 and "attachment" in sheet.headers["Content-Disposition"]
    rows = list(load_workbook(io.BytesIO(sheet.data)).active.iter_rows(values_only=True))
    assert rows[0][:3] == ("День", "Подтверждено шлюзом, шт.", "Подтверждено шлюзом, руб.")
    assert len(rows) == 1 + 4 + 1  # header, four days, the total
    assert rows[-1] == ("Итого", 1, 335, 2, 335, 0, 0)  # one gateway order, two accounts
    assert sum(r[2] for r in rows[1:-1]) == rows[-1][2] == 335
    sign_in_staff(client, make_user_fn, login, STAFF, branch_id=two_branches[0].branch_id)
    refused = client.get("/paymentreconciliationview/list/")
    assert refused.status_code in (302, 403)
    assert client.get("/paymentreconciliationview/export.xlsx").status_code in (302, 403)


# Start-up and the hooks ----------------------------------------------------------------------


class TwinGateway:
    name = "sandbox"
    development = False


class TwinPlugin:
    @hookimpl
    def register_payment_gateways(self):
        return [TwinGateway()]


def test_hook_register_payment_gateways_picks_by_name_and_refuses_doubles(app):
    assert app.extensions["payment_gateway"].name == "sandbox"
    pm = app.extensions["plugins"]
    pm.register(TwinPlugin(), name="test-twin-gateway")
    try:
        with pytest.raises(payments.GatewayConfigError, match="'sandbox' is registered twice"):
            payments.init_app(app)
    finally:
        pm.unregister(name="test-twin-gateway")
    payments.init_app(app)
    assert app.extensions["payment_gateway"].name == "sandbox"


def test_hook_register_payment_gateways_missing_name_stops_start(make_app):
    with pytest.raises(payments.GatewayConfigError, match="'yookassa' is configured"):
        make_app(PAYMENT_GATEWAY="yookassa")


def test_production_refuses_the_sandbox(make_app):
    base = {"PRODUCTION": True, "SMS_RU_API_ID": "key", "MAIL_SERVER": "127.0.0.1"}
    with pytest.raises(RuntimeError, match="SANDBOX_PAY_ENABLED"):
        make_app(**base, SANDBOX_PAY_ENABLED="1")
    quiet = make_app(**base)  # production without a gateway: no card payments, no sandbox
    assert quiet.extensions["payment_gateway"] is None
    assert not any(r.rule.startswith("/sandbox-pay") for r in quiet.url_map.iter_rules())


def test_off_sandbox_means_no_card_payments(make_app, session, two_branches, make_user_fn):
    flask_app = make_app(SANDBOX_PAY_ENABLED="0")
    user = make_user_fn("payer", "Resident", kind="resident")
    account = two_branches[0].ids["PersonalAccount"]
    session.add(m.AccountBinding(user_id=user.id, account_id=account))
    session.commit()
    client = flask_app.test_client()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = session_user_id(user)
        flask_session["_fresh"] = True
    body = client.get(f"/cabinet/pay/{account}").get_data(as_text=True)
    assert "Оплата онлайн сейчас недоступна" in body
    assert client.get("/sandbox-pay/sb_aaaaaaaaaaaaaaaaaaaa").status_code == 404


def test_hook_payment_status_changed_after_commit(app, client, session, resident, krd_account,
                                                  sandbox):
    pm = app.extensions["plugins"]
    recorder = Recorder()
    recorder.payment_status_changed = hookimpl(
        lambda event: recorder.events.append(event))
    pm.register(recorder, name="test-payment-recorder")
    try:
        pay_card(client, start(client, krd_account, {krd_account: "235"}), OK_CARD)
        deliver(client, sandbox.sent[0])
        deliver(client, sandbox.sent[0])
    finally:
        pm.unregister(name="test-payment-recorder")
    payment_events = [e for e in recorder.events if "order_key" in e]
    assert [e["status"] for e in payment_events] == ["pending", "succeeded"]
    assert payment_events[1]["parts"][0]["account_id"] == krd_account
    assert payment_events[1]["parts"][0]["amount"] == "235.00"


def test_the_cabinet_links_to_the_pay_form(client, resident, krd_account, sandbox):
    home = client.get("/cabinet/").get_data(as_text=True)
    assert f'href="/cabinet/pay/{krd_account}"' in home
    assert "Оплатить" in home
