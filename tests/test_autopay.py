"""Autopay from a saved card: switching it on through the sandbox's first payment with the
consent box, the daily run (once per bill however often it runs, the cap, a decline with its
notice and retries, an expired card, the gateway down), switching off and removing the card,
another user's ids, «Платежи», the CLI and the Celery task; on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import pytest
from flask import g
from sqlalchemy import func, select

from app import models as m
from app.services import accounts, autopay, payment_states, payments
from app.services.payments import GatewayError
from tests.signins import session_user_id

OK_CARD, DECLINED_CARD, NO_FUNDS_LATER = ("4111 1111 1111 1111", "4000 0000 0000 0002",
                                          "4000 0000 0000 9995")
#: The bill after switching on: due on 10 December, charged on the 9th.
DUE, CHARGE_DAY = dt.date(2026, 12, 10), dt.date(2026, 12, 9)


# Fixtures and helpers -----------------------------------------------------------------------


def sign_in(client, user) -> None:
    g.pop("_login_user", None)
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = session_user_id(user)
        flask_session["_fresh"] = True


@pytest.fixture
def resident(session, two_branches, make_user_fn, client):
    """A resident with both branches' accounts bound, signed in on ``client``."""
    user = make_user_fn("autopayer", "Resident", kind="resident", phone="+79185550091")
    for world in two_branches:
        session.add(m.AccountBinding(user_id=user.id, account_id=world.ids["PersonalAccount"]))
    session.commit()
    sign_in(client, user)
    return user


@pytest.fixture
def account(two_branches):
    return two_branches[0].ids["PersonalAccount"]


def balance(session, account_id: int) -> Decimal:
    session.expire_all()
    (summary,) = accounts.summarize(session, [account_id])
    return summary.balance


def setting_of(session, user_id: int, account_id: int) -> m.AutopaySetting | None:
    session.expire_all()
    return session.execute(select(m.AutopaySetting).where(
        m.AutopaySetting.user_id == user_id, m.AutopaySetting.account_id == account_id)
    ).scalar_one_or_none()


def count(session, model, *where) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def turn_on(client, account_id: int, card: str = OK_CARD, expiry: str = "12/30",
            consent: bool = True, cap: str = "") -> str:
    """Switch autopay on in the cabinet and pay the first payment on the sandbox's page;
    returns the page the portal shows after the payer's return (followed)."""
    response = client.post(f"/cabinet/autopay/{account_id}/on", data={"consent": "1",
                                                                        "cap": cap})
    assert response.status_code == 302, response.get_data(as_text=True)
    page = urlparse(response.headers["Location"]).path
    assert page.startswith("/sandbox-pay/sb_")
    form = client.get(page).get_data(as_text=True)
    assert "Сохранить карту для автоплатежа" in form
    data = {"number": card, "expiry": expiry, "cvc": "123", "pay": "1"}
    if consent:
        data["save_card"] = "1"
    response = client.post(page, data=data)
    assert response.status_code == 302
    back = response.headers["Location"]
    assert urlparse(back).path.startswith("/cabinet/autopay/return/")
    return client.get(back, follow_redirects=True).get_data(as_text=True)


def new_bill(session, account_id: int, amount: str, due: dt.date = DUE,
             period: dt.date = dt.date(2026, 11, 1)) -> m.Invoice:
    """A bill issued now (after the first payment) for ``amount``, and its charge."""
    session.add(m.Charge(account_id=account_id, period=period, amount=Decimal(amount),
                         kind="adjustment", kwh=Decimal("0")))
    invoice = m.Invoice(number=f"INV-{account_id}-{period:%Y%m}", account_id=account_id,
                        period=period, opening_balance=Decimal("0"), charged=Decimal(amount),
                        paid=Decimal("0"), amount_due=Decimal(amount), due_date=due)
    session.add(invoice)
    session.commit()
    return invoice


def failure_notices(session) -> list[m.NoticeLog]:
    session.expire_all()
    return list(session.execute(select(m.NoticeLog).where(m.NoticeLog.code == "autopay_failed")
                                .order_by(m.NoticeLog.id)).scalars())


@pytest.fixture
def on(client, session, resident, account, sandbox):
    """Autopay switched on with the 4111 card; the first payment paid the debt (235,00)."""
    page = turn_on(client, account)
    assert "Автоплатёж включён" in page
    return setting_of(session, resident.id, account)


# Switching on ------------------------------------------------------------------------------


def test_turning_on_pays_the_debt_and_saves_only_the_token(client, session, resident, account,
                                                           sandbox):
    before = balance(session, account)
    assert before == Decimal("235.00")
    page = turn_on(client, account)
    assert "Автоплатёж включён" in page
    assert "Visa •••• 1111, до 12/30" in page
    assert balance(session, account) == Decimal("0.00")
    setting = setting_of(session, resident.id, account)
    assert setting.status == "active"
    method = setting.method
    assert (method.card_last4, method.expiry_month, method.expiry_year, method.card_type) == \
        ("1111", 12, 2030, "Visa")
    assert method.token.startswith("sbm_") and sandbox.store.method(method.token) is not None
    # the card itself is nowhere: not in the portal's rows, not in the gateway's payment record
    order = session.execute(select(m.PaymentOrder)).scalar_one()
    assert "4111111111111111" not in str(sandbox.store.get(order.external_id))


def test_without_the_consent_box_the_card_is_not_saved(client, session, resident, account,
                                                       sandbox):
    page = turn_on(client, account, consent=False)
    assert "карта не сохранена" in page
    assert setting_of(session, resident.id, account).status == "pending"
    assert count(session, m.SavedPaymentMethod) == 0
    assert balance(session, account) == Decimal("0.00")  # the payment itself went through


def test_the_cabinet_asks_for_the_consent(client, session, resident, account, sandbox):
    response = client.post(f"/cabinet/autopay/{account}/on", data={"cap": ""},
                           follow_redirects=True)
    assert "подтвердите согласие" in response.get_data(as_text=True)
    assert count(session, m.PaymentOrder) == 0


def test_an_ordinary_payment_offers_no_consent_box(client, resident, account, sandbox):
    response = client.post(f"/cabinet/pay/{account}", data={
        "account": [str(account)], "method": "card", f"amount_{account}": "10"})
    page = client.get(urlparse(response.headers["Location"]).path).get_data(as_text=True)
    assert "Сохранить карту" not in page


def test_a_declined_first_payment_leaves_autopay_off(client, session, resident, account,
                                                     sandbox):
    page = turn_on(client, account, card=DECLINED_CARD)
    assert "Платёж не прошёл, автоплатёж не включён" in page
    assert setting_of(session, resident.id, account).status == "pending"
    assert count(session, m.SavedPaymentMethod) == 0


def test_the_saved_card_arrives_by_the_notification_alone(client, session, resident, account,
                                                          sandbox):
    """The payer closes the tab: the notification alone switches autopay on."""
    response = client.post(f"/cabinet/autopay/{account}/on", data={"consent": "1"})
    page = urlparse(response.headers["Location"]).path
    client.post(page, data={"number": OK_CARD, "expiry": "12/30", "cvc": "123",
                            "save_card": "1"})
    _url, body, headers = sandbox.sent[0]
    assert client.post("/cabinet/pay/notify/sandbox", data=body, headers=headers,
                       content_type="application/json").status_code == 200
    assert setting_of(session, resident.id, account).status == "active"


def test_a_gateway_that_saves_no_cards_hides_autopay(client, session, resident, account,
                                                     sandbox, monkeypatch):
    monkeypatch.setattr(type(sandbox), "saves_methods", False)
    page = client.get(f"/cabinet/autopay/{account}").get_data(as_text=True)
    assert "Автоплатёж сейчас недоступен" in page and "Включить и оплатить" not in page
    response = client.post(f"/cabinet/autopay/{account}/on", data={"consent": "1"},
                           follow_redirects=True)
    assert "недоступен" in response.get_data(as_text=True)
    assert count(session, m.PaymentOrder) == 0 and not payments.saves_methods(None)


def test_one_autopay_an_account(client, session, resident, account, on, make_user_fn):
    """A family member sharing the account cannot switch on a second one."""
    other = make_user_fn("spouse", "Resident", kind="resident", phone="+79185550092")
    session.add(m.AccountBinding(user_id=other.id, account_id=account))
    session.commit()
    sign_in(client, other)
    new_bill(session, account, "100.00")
    response = client.post(f"/cabinet/autopay/{account}/on", data={"consent": "1"},
                           follow_redirects=True)
    assert "уже включил другой пользователь" in response.get_data(as_text=True)
    assert setting_of(session, other.id, account) is None


# The run ------------------------------------------------------------------------------------


def test_a_run_charges_a_bill_once_however_often_it_runs(app, client, session, resident,
                                                         account, on):
    new_bill(session, account, "800.00")
    assert autopay.due_autopays(session, CHARGE_DAY - dt.timedelta(days=1)) == []
    first = autopay.run(session, CHARGE_DAY)
    assert (first.charged, first.amount) == (1, Decimal("800.00"))
    assert balance(session, account) == Decimal("0.00")
    for day in (CHARGE_DAY, CHARGE_DAY, DUE):  # again the same day, and the next
        assert autopay.run(session, day).charged == 0
    assert count(session, m.AutopayCharge) == 1
    assert count(session, m.Payment, m.Payment.status == "succeeded",
                 m.Payment.amount == Decimal("800.00")) == 1
    # credited like any card payment: the «payment received» notice, and «Автоплатёж» in
    # «Платежи»
    assert count(session, m.NoticeLog, m.NoticeLog.code == "payment_received") == 2
    page = client.get("/cabinet/payments/list/").get_data(as_text=True)
    assert page.count("Автоплатёж") == 1
    setting = setting_of(session, resident.id, account)
    assert setting.failures == 0 and setting.last_attempt_at is not None


def test_the_cap_is_honoured(client, session, resident, account, on):
    response = client.post(f"/cabinet/autopay/{account}/cap", data={"cap": "300"})
    assert response.status_code == 302
    new_bill(session, account, "800.00")
    page = client.get(f"/cabinet/autopay/{account}").get_data(as_text=True)
    assert "09.12.2026 — 300,00" in page.replace("\u00a0", " ")
    assert autopay.run(session, CHARGE_DAY).amount == Decimal("300.00")
    assert balance(session, account) == Decimal("500.00")


def test_a_bill_paid_by_hand_is_not_charged(session, resident, account, on):
    new_bill(session, account, "800.00")
    session.add(m.Payment(account_id=account, amount=Decimal("800.00"), method="bank",
                          status="succeeded"))
    session.commit()
    assert autopay.run(session, CHARGE_DAY).charged == 0
    assert count(session, m.AutopayCharge) == 0


def test_a_decline_tells_the_resident_and_is_tried_again_on_later_days(
        app, client, session, resident, account, sandbox):
    turn_on(client, account, card=NO_FUNDS_LATER)
    new_bill(session, account, "800.00")
    app.config["AUTOPAY_MAX_ATTEMPTS"] = 3
    first = autopay.run(session, CHARGE_DAY)
    assert (first.declined, first.notices) == (1, 1)
    assert autopay.run(session, CHARGE_DAY).declined == 0  # not twice a day
    (notice,) = failure_notices(session)
    assert notice.channels and notice.user_id == resident.id
    assert setting_of(session, resident.id, account).failures == 1
    assert autopay.run(session, DUE).declined == 1
    assert autopay.run(session, DUE + dt.timedelta(days=1)).declined == 1
    assert autopay.run(session, DUE + dt.timedelta(days=2)).declined == 0  # 3 attempts made
    charges = session.execute(select(m.AutopayCharge).order_by(m.AutopayCharge.attempt)
                              ).scalars().all()
    assert [(c.attempt, c.status, c.reason) for c in charges] == [
        (n, "declined", "insufficient_funds") for n in (1, 2, 3)]
    assert len({c.order_key for c in charges}) == 3
    assert len(failure_notices(session)) == 3
    assert setting_of(session, resident.id, account).status == "active"
    assert balance(session, account) == Decimal("800.00")


def test_the_failure_notice_says_why_and_when_again(app, client, session, resident, account,
                                                    sandbox):
    turn_on(client, account, card=NO_FUNDS_LATER)
    new_bill(session, account, "800.00")
    autopay.run(session, CHARGE_DAY)
    letters = [json.loads(p.read_text("utf-8"))
               for p in Path(app.config["DEV_OUTBOX_DIR"]).rglob("*.json")]
    told = [x for x in letters if "Автоплатёж" in x.get("subject", "")]
    assert told, letters
    text = " ".join(x["text"] for x in told)
    assert "на карте недостаточно средств" in text and "Мы попробуем ещё раз 10.12.2026" in text
    assert "Visa •••• 9995" in text


def test_an_expired_card_turns_autopay_off(client, session, resident, account, sandbox):
    turn_on(client, account, expiry="12/26")
    new_bill(session, account, "800.00", due=dt.date(2027, 1, 10),
             period=dt.date(2026, 12, 1))
    sandbox.today = lambda: dt.date(2027, 1, 9)
    result = autopay.run(session, dt.date(2027, 1, 9))
    assert (result.declined, result.turned_off, result.notices) == (1, 1, 1)
    assert setting_of(session, resident.id, account).status == "off"
    assert autopay.run(session, dt.date(2027, 1, 10)).declined == 0
    page = client.get(f"/cabinet/autopay/{account}").get_data(as_text=True)
    assert "Выключен" in page and "Visa •••• 1111, до 12/26" in page


def test_the_gateway_down_is_retried_on_a_later_day(session, resident, account, on, sandbox,
                                                    monkeypatch):
    new_bill(session, account, "800.00")

    def down(request):
        raise GatewayError("503 Service Unavailable")

    monkeypatch.setattr(sandbox, "create_payment", down)
    first = autopay.run(session, CHARGE_DAY)
    assert (first.failed, first.notices) == (1, 1)
    assert balance(session, account) == Decimal("800.00")
    monkeypatch.undo()
    assert autopay.run(session, DUE).charged == 1
    assert balance(session, account) == Decimal("0.00")
    assert [c.status for c in session.execute(select(m.AutopayCharge)
                                              .order_by(m.AutopayCharge.attempt)).scalars()] \
        == ["failed", "succeeded"]


def test_a_charge_whose_answer_was_lost_is_asked_again_under_its_key(
        session, resident, account, on, sandbox, monkeypatch):
    """The gateway charged, the portal never heard: the next day the same attempt is sent
    again under the same Idempotence-Key, and the gateway answers with the same payment."""
    new_bill(session, account, "800.00")
    real = sandbox.create_payment

    def charged_then_lost(request):
        real(request)
        raise KeyboardInterrupt  # the worker dies before the answer is recorded

    monkeypatch.setattr(sandbox, "create_payment", charged_then_lost)
    with pytest.raises(KeyboardInterrupt):
        autopay.run(session, CHARGE_DAY)
    session.rollback()
    monkeypatch.undo()
    assert autopay.run(session, CHARGE_DAY).charged == 0  # in flight today: left alone
    assert autopay.run(session, DUE).charged == 1
    assert count(session, m.AutopayCharge) == 1
    assert count(session, m.PaymentOrder, m.PaymentOrder.amount == Decimal("800.00")) == 1
    assert balance(session, account) == Decimal("0.00")


def test_switching_off_and_removing_the_card(client, session, resident, account, on, sandbox):
    token = on.method.token
    assert client.post(f"/cabinet/autopay/{account}/off").status_code == 302
    new_bill(session, account, "800.00")
    assert autopay.run(session, CHARGE_DAY).charged == 0
    # back on with the saved card, no payment
    page = client.post(f"/cabinet/autopay/{account}/on", data={"consent": "1"},
                       follow_redirects=True).get_data(as_text=True)
    assert "снова включён" in page
    assert setting_of(session, resident.id, account).status == "active"
    method_id = setting_of(session, resident.id, account).method_id
    response = client.post(f"/cabinet/autopay/card/{method_id}/remove",
                           data={"account": str(account)})
    assert response.status_code == 302
    setting = setting_of(session, resident.id, account)
    assert (setting.status, setting.method_id) == ("off", None)
    assert count(session, m.SavedPaymentMethod) == 0
    assert sandbox.store.method(token) is None  # forgotten at the gateway too
    assert autopay.run(session, CHARGE_DAY).charged == 0


# Another user's ids -------------------------------------------------------------------------


def test_another_users_ids_are_not_found_and_change_nothing(client, session, resident, account,
                                                            on, make_user_fn):
    method_id = on.method_id
    stranger = make_user_fn("stranger", "Resident", kind="resident", phone="+79185550093")
    sign_in(client, stranger)
    assert client.get(f"/cabinet/autopay/{account}").status_code == 404
    for path, data in ((f"/cabinet/autopay/{account}/on", {"consent": "1"}),
                       (f"/cabinet/autopay/{account}/cap", {"cap": "1"}),
                       (f"/cabinet/autopay/{account}/off", {}),
                       (f"/cabinet/autopay/card/{method_id}/remove", {})):
        assert client.post(path, data=data).status_code == 404, path
    setting = setting_of(session, resident.id, account)
    assert (setting.status, setting.cap, setting.method_id) == ("active", None, method_id)
    assert count(session, m.AutopaySetting) == 1
    assert "Лицевой счёт" not in client.get("/cabinet/autopay/").get_data(as_text=True)
    with pytest.raises(autopay.NotFound):
        autopay.set_cap(session, stranger.id, account, Decimal("1"))
    with pytest.raises(payment_states.NotFound):
        payment_states.charge_saved_method(session, stranger, account, Decimal("1"),
                                           on.method.token, "key-of-a-stranger")


def test_an_unbound_account_is_not_charged(session, resident, account, on):
    session.execute(m.AccountBinding.__table__.delete().where(
        m.AccountBinding.account_id == account))
    session.commit()
    new_bill(session, account, "800.00")
    assert autopay.due_autopays(session, CHARGE_DAY) == []


def test_posts_need_the_csrf_token(make_app, session, resident, account, sandbox):
    guarded = make_app(WTF_CSRF_ENABLED=True)
    client = guarded.test_client()
    with guarded.app_context():
        sign_in(client, resident)
        response = client.post(f"/cabinet/autopay/{account}/on", data={"consent": "1"})
    assert response.status_code == 400
    assert count(session, m.AutopaySetting) == 0


# The CLI and the Celery task ----------------------------------------------------------------


def test_the_cli_runs_a_day(runner, session, resident, account, on):
    new_bill(session, account, "800.00")
    result = runner.invoke(args=["autopay", "run", "--date", "2026-12-09"])
    assert result.exit_code == 0, result.output
    assert "списано 1 на 800,00 руб." in result.output
    assert runner.invoke(args=["autopay", "run", "--date", "2026-12-09"]).output.count(
        "списано 0") == 1
    assert runner.invoke(args=["autopay", "run", "--date", "9.12"]).exit_code != 0


def test_the_celery_task_is_registered_and_scheduled(app, session, resident, account, on):
    celery = app.extensions["celery"]
    assert "lk_portal.run_autopay" in celery.tasks
    assert celery.conf.beat_schedule["autopay"]["task"] == "lk_portal.run_autopay"
    new_bill(session, account, "800.00")
    outcome = celery.tasks["lk_portal.run_autopay"].delay("2026-12-09").get()
    assert outcome["charged"] == 1 and outcome["amount"] == "800.00"
