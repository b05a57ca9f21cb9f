"""The resident's profile: name, contacts confirmed by a code sent to the new contact, password,
notices, the export of one's personal data and the withdrawal of the consent (152-FZ)."""
from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from flask import g
from sqlalchemy import func, select

from app import models as m
from app.models import AccountBinding, AuditEvent, PortalUser
from tests.factories import PASSWORD
from tests.signins import session_user_id
from tests.test_auth import GOOD_PASSWORD, Outbox, register

PHONE = "+79185550011"
EMAIL = "resident@example.ru"
OTHER_PASSWORD = "тёплый ветер над кубанью"


@pytest.fixture
def outbox(app, tmp_path):
    return Outbox(tmp_path / "outbox")


@pytest.fixture
def resident(make_user_fn, session):
    user = make_user_fn(PHONE, "Resident", kind="resident", phone=PHONE)
    user.email = EMAIL
    session.commit()
    return user


@pytest.fixture
def signed_in(client, resident):
    r = client.post("/auth/", data={"login": "9185550011", "password": PASSWORD})
    assert r.status_code == 302 and r.location.endswith("/cabinet/")
    return resident


def text(response) -> str:
    return response.get_data(as_text=True)


def fresh(session, user) -> PortalUser:
    session.expire_all()
    return session.get(PortalUser, user.id)


def actions(session) -> list[str]:
    return list(session.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars())


def notices(outbox, phrase: str) -> list[tuple[str, str]]:
    return sorted((msg["channel"], msg["to"]) for msg in outbox.messages()
                  if phrase in msg["text"])


def other_code(code: str) -> str:
    return "000000" if code != "000000" else "111111"


PAGES = ["/cabinet/profile/", "/cabinet/profile/name", "/cabinet/profile/contact/phone",
         "/cabinet/profile/contact/email", "/cabinet/profile/contact/confirm",
         "/cabinet/profile/password", "/cabinet/profile/notifications",
         "/cabinet/profile/export", "/cabinet/profile/withdraw"]


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_the_resident_sign_in(client, url):
    r = client.get(url)
    assert r.status_code == 302
    assert "/auth/" in r.location and "/login/" not in r.location


def test_organizations_cannot_open_a_residents_profile(client, make_user_fn, session):
    user = make_user_fn("org-user", "Business", kind="business")
    with client.session_transaction() as sess:
        sess["_user_id"] = session_user_id(user)
        sess["_fresh"] = True
    assert client.get("/cabinet/profile/").status_code in (302, 403)
    assert client.get("/cabinet/profile/export").status_code in (302, 403)


def test_profile_page_shows_the_contacts_and_links(client, signed_in):
    page = text(client.get("/cabinet/profile/"))
    assert PHONE in page and EMAIL in page
    for endpoint in ("/cabinet/profile/name", "/cabinet/profile/contact/phone",
                     "/cabinet/profile/contact/email", "/cabinet/profile/password",
                     "/cabinet/profile/notifications", "/cabinet/profile/export",
                     "/cabinet/profile/withdraw"):
        assert f'href="{endpoint}"' in page, endpoint
    assert 'href="/cabinet/profile/"' in text(client.get("/cabinet/")), "nav links the profile"


# --- name -------------------------------------------------------------------------------------

def test_name_is_saved_and_journaled(client, signed_in, session):
    r = client.post("/cabinet/profile/name", data={"last_name": "  Петрова-Водкина ",
                                                   "first_name": "Анна  Мария"})
    assert r.status_code == 302 and r.location.endswith("/cabinet/profile/")
    user = fresh(session, signed_in)
    assert (user.last_name, user.first_name) == ("Петрова-Водкина", "Анна Мария")
    assert "profile.name_changed" in actions(session)
    assert "Петрова-Водкина Анна Мария" in text(client.get("/cabinet/profile/"))


@pytest.mark.parametrize("last, first, message", [
    ("", "Анна", "Укажите фамилию."),
    ("Иванов2", "Анна", "может содержать только буквы"),
    ("Иванов", "А" * 65, "Field cannot be longer than 64 characters"),
])
def test_bad_names_change_nothing(client, signed_in, session, last, first, message):
    r = client.post("/cabinet/profile/name", data={"last_name": last, "first_name": first})
    assert r.status_code == 200
    if "Field" not in message:
        assert message in text(r)
    user = fresh(session, signed_in)
    assert (user.first_name, user.last_name) == ("Тест", PHONE.capitalize())


# --- contacts ---------------------------------------------------------------------------------

def test_email_change_needs_the_code_sent_to_the_new_address(app, client, signed_in, session,
                                                            outbox):
    new = "Ivan.New@Example.ru"
    r = client.post("/cabinet/profile/contact/email", data={"contact": new})
    assert r.status_code == 302 and r.location.endswith("/cabinet/profile/contact/confirm")
    right = outbox.code_for("ivan.new@example.ru")
    assert [msg["to"] for msg in outbox.messages()] == ["ivan.new@example.ru"]

    wrong = client.post("/cabinet/profile/contact/confirm", data={"code": other_code(right)})
    assert "Неверный код" in text(wrong)
    assert fresh(session, signed_in).email == EMAIL

    # A code that went to the old address (here: a recovery code) is no good for the change.
    stranger = app.test_client()
    stranger.post("/auth/recover", data={"method": "email", "contact": EMAIL})
    old_code = outbox.code_for(EMAIL)
    r = client.post("/cabinet/profile/contact/confirm", data={"code": old_code})
    assert r.status_code == 200 and "Код" in text(r)
    assert fresh(session, signed_in).email == EMAIL

    r = client.post("/cabinet/profile/contact/confirm", data={"code": right})
    assert r.status_code == 302 and r.location.endswith("/cabinet/profile/")
    user = fresh(session, signed_in)
    assert user.email == "ivan.new@example.ru" and not user.email_is_placeholder
    assert user.username == PHONE, "the login was the phone and stays"
    assert "profile.contact_changed" in actions(session)
    assert notices(outbox, "Адрес электронной почты в вашем личном кабинете НЭСК изменён") == [
        ("dev-email", "ivan.new@example.ru"), ("dev-email", EMAIL), ("dev-sms", PHONE)]
    # The flow is over: the same code cannot be replayed.
    assert client.get("/cabinet/profile/contact/confirm").location.endswith("/cabinet/profile/")


def test_the_login_follows_the_email_when_it_was_the_login(client, make_user_fn, session,
                                                           outbox):
    user = make_user_fn("olga@example.ru", "Resident", kind="resident")
    user.email = "olga@example.ru"
    session.commit()
    client.post("/auth/", data={"method": "email", "login": "olga@example.ru",
                                "password": PASSWORD})
    client.post("/cabinet/profile/contact/email", data={"contact": "olga.k@example.ru"})
    client.post("/cabinet/profile/contact/confirm",
                data={"code": outbox.code_for("olga.k@example.ru")})
    assert fresh(session, user).username == "olga.k@example.ru"
    client.post("/auth/logout")
    old = client.post("/auth/", data={"login": "olga@example.ru", "password": PASSWORD})
    assert "Неверный логин или пароль." in text(old)
    new = client.post("/auth/", data={"login": "olga.k@example.ru", "password": PASSWORD})
    assert new.location.endswith("/cabinet/")


def test_phone_change_normalizes_and_moves_the_login(client, signed_in, session, outbox):
    client.post("/cabinet/profile/contact/phone", data={"contact": "8 (918) 777-66-55"})
    code = outbox.code_for("+79187776655")
    r = client.post("/cabinet/profile/contact/confirm", data={"code": code})
    assert r.location.endswith("/cabinet/profile/")
    user = fresh(session, signed_in)
    assert user.phone == "+79187776655" and user.username == "+79187776655"
    assert notices(outbox, "Номер телефона в вашем личном кабинете НЭСК изменён") == [
        ("dev-email", EMAIL), ("dev-sms", PHONE), ("dev-sms", "+79187776655")]
    client.post("/auth/logout")
    assert client.post("/auth/", data={"login": "9187776655", "password": PASSWORD}) \
        .location.endswith("/cabinet/")


def test_phone_only_resident_gets_a_new_placeholder_and_can_add_an_email(
        client, make_user_fn, session, outbox):
    user = make_user_fn("+79181112233", "Resident", kind="resident", phone="+79181112233")
    user.email, user.email_is_placeholder = "79181112233@phone.invalid", True
    session.commit()
    client.post("/auth/", data={"login": "9181112233", "password": PASSWORD})
    client.post("/cabinet/profile/contact/phone", data={"contact": "+7 918 111-22-44"})
    client.post("/cabinet/profile/contact/confirm",
                data={"code": outbox.code_for("+79181112244")})
    user = fresh(session, user)
    assert user.email == "79181112244@phone.invalid" and user.email_is_placeholder
    client.post("/cabinet/profile/contact/email", data={"contact": "new@example.ru"})
    client.post("/cabinet/profile/contact/confirm",
                data={"code": outbox.code_for("new@example.ru")})
    user = fresh(session, user)
    assert user.email == "new@example.ru" and not user.email_is_placeholder
    assert all("phone.invalid" not in msg["to"] for msg in outbox.messages())


@pytest.mark.parametrize("kind, raw, taken_phone, taken_email", [
    ("phone", "9180000001", "+79180000001", "someone@example.ru"),
    ("email", "Someone@Example.ru", "+79180000001", "someone@example.ru"),
])
def test_a_contact_of_another_user_gets_a_generic_refusal_and_no_change(
        app, client, signed_in, make_user_fn, session, outbox, kind, raw, taken_phone,
        taken_email):
    other = make_user_fn("someone", "Resident", kind="resident", phone=taken_phone)
    other.email = taken_email
    session.commit()
    free = {"phone": "9180000002", "email": "free@example.ru"}[kind]
    taken_answer = client.post(f"/cabinet/profile/contact/{kind}", data={"contact": raw})
    taken_page = text(client.get(taken_answer.location))
    # Until the code is entered, a taken contact looks exactly like a free one.
    other_client = app.test_client()
    other_client.post("/auth/", data={"login": EMAIL, "password": PASSWORD})
    free_answer = other_client.post(f"/cabinet/profile/contact/{kind}", data={"contact": free})
    assert taken_answer.status_code == free_answer.status_code == 302
    assert taken_answer.location == free_answer.location
    # The contact as masked on the page, and the per-request script nonce, differ.
    masked = re.compile(r"\+7 \(\d{3}\) \*\*\*-\*\*-\d{2}|\w\*\*\*@[\w.]+|nonce=\"[^\"]*\"")
    free_page = text(other_client.get(free_answer.location))
    assert masked.sub("X", taken_page) == masked.sub("X", free_page)

    destination = taken_phone if kind == "phone" else taken_email
    r = client.post("/cabinet/profile/contact/confirm",
                    data={"code": outbox.code_for(destination)}, follow_redirects=True)
    assert "нельзя указать в вашем кабинете" in text(r)
    assert "someone" not in text(r)
    user = fresh(session, signed_in)
    assert (user.phone, user.email, user.username) == (PHONE, EMAIL, PHONE)
    assert "profile.contact_refused" in actions(session)


def test_the_current_contact_is_not_a_change(client, signed_in, outbox):
    r = client.post("/cabinet/profile/contact/phone", data={"contact": "8 918 555 00 11"})
    assert r.status_code == 200 and "уже указан" in text(r)
    assert outbox.messages() == []


def test_bad_contacts_are_refused_clearly(client, signed_in, outbox):
    r = client.post("/cabinet/profile/contact/phone", data={"contact": "12345"})
    assert "Введите номер мобильного телефона" in text(r)
    r = client.post("/cabinet/profile/contact/email", data={"contact": "ivan@"})
    assert "Введите адрес электронной почты" in text(r)
    assert client.get("/cabinet/profile/contact/fax").status_code == 404
    assert outbox.messages() == []


def test_contact_codes_keep_the_otp_limits(client, signed_in, outbox):
    client.post("/cabinet/profile/contact/phone", data={"contact": "9187776655"})
    r = client.post("/cabinet/profile/contact/resend", follow_redirects=True)
    assert "Новый код можно запросить через" in text(r)
    again = client.post("/cabinet/profile/contact/phone", data={"contact": "9187776655"})
    assert "Новый код можно запросить через" in text(again)
    assert len(outbox.messages()) == 1


# --- password ---------------------------------------------------------------------------------

@pytest.mark.parametrize("current, password, again, message", [
    ("не тот пароль", GOOD_PASSWORD, GOOD_PASSWORD, "Текущий пароль указан неверно."),
    (PASSWORD, "qwerty123", "qwerty123", "слишком простой"),
    (PASSWORD, "short", "short", "не менее 8 символов"),
    (PASSWORD, GOOD_PASSWORD, GOOD_PASSWORD + "!", "Пароли не совпадают"),
    (PASSWORD, PASSWORD, PASSWORD, "совпадает с текущим"),
])
def test_bad_password_changes_are_refused(client, signed_in, session, outbox, current,
                                          password, again, message):
    before = fresh(session, signed_in).password
    r = client.post("/cabinet/profile/password", data={
        "current": current, "password": password, "password_again": again})
    assert r.status_code == 200 and message in text(r)
    assert fresh(session, signed_in).password == before
    assert outbox.messages() == []


def test_password_change_needs_the_current_one_and_is_announced(client, signed_in, session,
                                                               outbox):
    r = client.post("/cabinet/profile/password", data={
        "current": PASSWORD, "password": OTHER_PASSWORD, "password_again": OTHER_PASSWORD})
    assert r.status_code == 302 and r.location.endswith("/cabinet/profile/")
    assert notices(outbox, "Пароль от вашего личного кабинета НЭСК изменён") == [
        ("dev-email", EMAIL), ("dev-sms", PHONE)]
    assert "password.changed" in actions(session)
    client.post("/auth/logout")
    assert "Неверный логин или пароль." in text(
        client.post("/auth/", data={"login": "9185550011", "password": PASSWORD}))
    assert client.post("/auth/", data={"login": "9185550011", "password": OTHER_PASSWORD}) \
        .location.endswith("/cabinet/")


def test_a_new_password_signs_out_every_other_browser_and_app(app, resident, outbox):
    """The browser that changed it stays signed in, "remember me" included; another browser,
    its remembered cookie and the mobile app's tokens of the old password no longer open
    anything; the new password does."""
    def request(client, method: str, url: str, **kwargs):
        g.pop("_login_user", None)  # requests share the test's app context, and so its g
        return client.open(url, method=method, **kwargs)

    def browser():
        client = app.test_client()
        signin = request(client, "POST", "/auth/", data={
            "login": "9185550011", "password": PASSWORD, "remember": "y"})
        assert signin.status_code == 302 and signin.location.endswith("/cabinet/")
        return client

    def cabinet_from_cookie(cookie) -> int:
        """A browser restarted: its session is gone, the "remember me" cookie is not."""
        client = app.test_client()
        client.set_cookie("remember_token", cookie.value)
        return request(client, "GET", "/cabinet/").status_code

    def bearer(token: str) -> dict:
        return {"Authorization": f"Bearer {token}"}

    mine, other = browser(), browser()
    others_cookie = other.get_cookie("remember_token")
    api = app.test_client()
    tokens = api.post("/api/v1/security/login", json={
        "username": PHONE, "password": PASSWORD, "refresh": True}).json
    assert cabinet_from_cookie(others_cookie) == 200

    changed = request(mine, "POST", "/cabinet/profile/password", data={
        "current": PASSWORD, "password": OTHER_PASSWORD, "password_again": OTHER_PASSWORD})
    assert changed.status_code == 302 and changed.location.endswith("/cabinet/profile/")

    assert request(mine, "GET", "/cabinet/").status_code == 200
    assert cabinet_from_cookie(mine.get_cookie("remember_token")) == 200
    assert request(other, "GET", "/cabinet/").status_code == 302
    assert cabinet_from_cookie(others_cookie) == 302
    refused = [api.get("/api/v1/account/", headers=bearer(tokens["access_token"])),
               api.post("/api/v1/security/refresh", headers=bearer(tokens["refresh_token"]))]
    assert [(r.status_code, r.json) for r in refused] == [
        (401, {"message": "Войдите заново."})] * 2
    new_token = api.post("/api/v1/security/login", json={
        "username": PHONE, "password": OTHER_PASSWORD}).json["access_token"]
    assert api.get("/api/v1/account/", headers=bearer(new_token)).status_code == 200


def test_guessing_the_current_password_is_throttled(client, signed_in, session):
    for _ in range(10):
        client.post("/cabinet/profile/password", data={
            "current": "не тот пароль", "password": OTHER_PASSWORD,
            "password_again": OTHER_PASSWORD})
    r = client.post("/cabinet/profile/password", data={
        "current": PASSWORD, "password": OTHER_PASSWORD, "password_again": OTHER_PASSWORD})
    assert "Слишком много неудачных попыток" in text(r)
    assert actions(session).count("password.change_refused") == 10


# --- notices ----------------------------------------------------------------------------------

def test_notification_choices_persist(client, signed_in, session):
    r = client.post("/cabinet/profile/notifications", data={
        "notify_bills_email": "y", "notify_payments_sms": "y", "paperless": "y"})
    assert r.status_code == 302
    user = fresh(session, signed_in)
    assert (user.notify_bills_email, user.notify_bills_sms) == (True, False)
    assert (user.notify_readings_email, user.notify_readings_sms) == (False, False)
    assert (user.notify_payments_email, user.notify_payments_sms) == (False, True)
    assert user.notify_email and user.notify_sms
    assert user.paperless and user.mailing_opt_out
    assert user.wants_notice("bills", "email") and not user.wants_notice("bills", "sms")
    page = text(client.get("/cabinet/profile/notifications"))
    checked = {re.search(r'name="(\w+)"', tag)[1]
               for tag in re.findall(r"<input[^>]*>", page) if " checked" in tag}
    assert {"notify_bills_email", "notify_payments_sms", "paperless"} <= checked
    assert "notify_bills_sms" not in checked and "mailing" not in checked

    client.post("/cabinet/profile/notifications", data={"mailing": "y"})
    user = fresh(session, signed_in)
    assert not user.notify_email and not user.notify_sms
    assert not user.paperless and not user.mailing_opt_out
    assert actions(session).count("profile.notifications_changed") == 2


# --- personal data ----------------------------------------------------------------------------

@pytest.fixture
def histories(two_branches, resident, make_user_fn, session):
    """The resident uses the Krasnodar account, a neighbour the Novorossiysk one."""
    krd, nvr = two_branches
    neighbour = make_user_fn("+79185550022", "Resident", kind="resident", phone="+79185550022")
    for user, world in ((resident, krd), (neighbour, nvr)):
        session.add(AccountBinding(user_id=user.id, account_id=world.ids["PersonalAccount"]))
        session.get(m.Reading, world.ids["Reading"]).submitted_by_id = user.id
        session.get(m.Payment, world.ids["Payment"]).user_id = user.id
        session.get(m.ContractApplication, world.ids["ContractApplication"]).user_id = user.id
        session.get(m.Feedback, world.ids["Feedback"]).user_id = user.id
    session.get(m.Payment, krd.ids["Payment"]).amount = Decimal("512.30")
    session.commit()
    return krd, nvr, neighbour


def test_export_has_the_users_data_and_nobody_elses(client, signed_in, histories, session):
    r = client.get("/cabinet/profile/export")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.headers["Content-Disposition"].startswith("attachment;")
    assert ".json" in r.headers["Content-Disposition"]
    assert r.headers["Cache-Control"] == "no-store"
    data = json.loads(r.get_data(as_text=True))
    assert data["profile"]["phone"] == PHONE and data["profile"]["email"] == EMAIL
    assert data["consent"]["withdrawn_at"] is None
    [account] = data["accounts"]
    assert account["number"] == "230000000001"
    assert account["address"] == "Краснодар, ул. Красная, д. 1, кв. 1"
    assert account["meters"][0]["serial"] == "SN-krd-1"
    assert [p["amount"] for p in data["payments"]] == ["512.30"]
    assert [x["t1"] for x in data["readings"]] == ["1234.000"]
    assert [x["applicant_name"] for x in data["applications"]] == ["Петров Краснодар"]
    assert [x["message"] for x in data["feedback"]] == ["Когда будет счёт?"]
    assert data["notifications"]["notify_bills_email"] is True
    assert data["notifications"]["paperless"] is False
    body = r.get_data(as_text=True)
    for foreign in ("230000000002", "Новороссийск", "+79185550022", "SN-nvr-2"):
        assert foreign not in body
    assert PASSWORD not in body and "scrypt" not in body
    assert "pd.exported" in actions(session)


def test_withdrawing_needs_the_explicit_confirmation(client, signed_in, session):
    r = client.post("/cabinet/profile/withdraw", data={})
    assert r.status_code == 200 and "отметьте флажок" in text(r)
    user = fresh(session, signed_in)
    assert user.active and user.pd_consent_withdrawn_at is None


def test_withdrawing_consent_closes_the_cabinet_and_keeps_history(client, signed_in, histories,
                                                                  session, outbox):
    r = client.post("/cabinet/profile/withdraw", data={"confirm": "y"})
    assert r.status_code == 302 and "/auth/" in r.location
    page = text(client.get(r.location))
    assert "личный кабинет закрыт" in page and "хранится столько, сколько требует закон" in page
    assert client.get("/cabinet/profile/").status_code == 302
    assert client.get("/cabinet/").status_code == 302
    user = fresh(session, signed_in)
    assert not user.active and user.pd_consent_withdrawn_at is not None
    event = session.execute(select(AuditEvent).where(
        AuditEvent.action == "pd_consent.withdrawn")).scalar_one()
    assert event.actor_id == user.id
    assert session.execute(select(func.count()).select_from(AccountBinding).where(
        AccountBinding.user_id == user.id)).scalar_one() == 1
    assert sorted(msg["to"] for msg in outbox.messages()
                  if "отозвали согласие" in msg["text"]) == sorted([EMAIL, PHONE])
    signin = client.post("/auth/", data={"login": "9185550011", "password": PASSWORD})
    assert signin.status_code == 200 and "Неверный логин или пароль." in text(signin)
    assert client.get("/cabinet/").status_code == 302


@pytest.mark.parametrize("method, contact, destination", [
    ("phone", "8 918 555-00-11", PHONE), ("email", EMAIL, EMAIL)])
def test_a_closed_cabinets_contact_can_register_again_and_starts_empty(
        client, signed_in, histories, session, outbox, method, contact, destination):
    """Whoever holds the phone or e-mail now may register with it; they prove only the
    contact, which may have passed to someone else, so the old cabinet's accounts, name and
    other contact stay with the closed record."""
    client.post("/cabinet/profile/withdraw", data={"confirm": "y"})
    g.pop("_login_user", None)
    closed_id = signed_in.id
    registered = register(client, outbox, method, contact, destination)
    assert registered.status_code == 302 and registered.location.endswith("/cabinet/")
    session.expire_all()
    closed = session.get(PortalUser, closed_id)
    assert not closed.active and closed.phone is None and closed.username == f"closed-{closed_id}"
    assert closed.email.endswith("@closed.invalid")
    new = session.execute(select(PortalUser).where(
        PortalUser.username == destination)).scalar_one()
    assert new.id != closed_id and new.active and new.pd_consent_withdrawn_at is None
    assert (new.first_name, new.last_name) == ("", "")
    assert session.execute(select(func.count()).select_from(AccountBinding).where(
        AccountBinding.user_id == new.id)).scalar_one() == 0
    assert session.execute(select(func.count()).select_from(AccountBinding).where(
        AccountBinding.user_id == closed_id)).scalar_one() == 1
    g.pop("_login_user", None)
    assert "не привязан ни один лицевой счёт" in text(client.get("/cabinet/"))
    released = session.execute(select(AuditEvent).where(
        AuditEvent.action == "user.contacts_released")).scalar_one()
    assert (released.object_id, released.actor_id) == (str(closed_id), new.id)


def test_an_active_or_staff_closed_account_still_refuses_a_registration(
        client, signed_in, session, outbox):
    """Only the holder's own withdrawal frees the contact: a cabinet that staff deactivated
    (a dispute, fraud) stays taken."""
    signed_in.active = False
    session.commit()
    g.pop("_login_user", None)
    refused = register(client, outbox, "phone", "8 918 555-00-11", PHONE)
    assert refused.status_code == 200 and "уже зарегистрирован" in text(refused)
    session.expire_all()
    assert session.get(PortalUser, signed_in.id).phone == PHONE


# --- CSRF -------------------------------------------------------------------------------------

def test_every_profile_form_needs_a_csrf_token(make_app, session, make_user_fn):
    user = make_user_fn(PHONE, "Resident", kind="resident", phone=PHONE)
    flask_app = make_app(WTF_CSRF_ENABLED=True)
    client = flask_app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = session_user_id(user)
        sess["_fresh"] = True
    assert client.get("/cabinet/profile/").status_code == 200, "signed in"
    for url, data in [("/cabinet/profile/name", {"first_name": "А", "last_name": "Б"}),
                      ("/cabinet/profile/contact/phone", {"contact": "9187776655"}),
                      ("/cabinet/profile/contact/email", {"contact": "x@example.ru"}),
                      ("/cabinet/profile/contact/confirm", {"code": "123456"}),
                      ("/cabinet/profile/contact/resend", {}),
                      ("/cabinet/profile/password", {"current": PASSWORD, "password": "x",
                                                     "password_again": "x"}),
                      ("/cabinet/profile/notifications", {"paperless": "y"}),
                      ("/cabinet/profile/withdraw", {"confirm": "y"})]:
        assert client.post(url, data=data).status_code == 400, url
    user = fresh(session, user)
    assert user.active and user.first_name == "Тест" and not user.paperless
    assert not Path(flask_app.config["DEV_OUTBOX_DIR"]).exists()


# --- in a browser -----------------------------------------------------------------------------

@pytest.mark.browser
def test_profile_in_a_browser(browser_page, resident, session, shots):
    resident.first_name, resident.last_name = "Ирина", "Соколова"
    session.commit()
    page = browser_page
    page.goto("/auth/")
    page.fill("input[name=login]", "9185550011")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.locator("button[type=submit]").first.click()
    page.goto("/cabinet/")
    with page.expect_navigation():
        page.get_by_role("link", name="Профиль").click()
    assert page.url.endswith("/cabinet/profile/")
    assert "Соколова Ирина" in page.content() and EMAIL in page.content()
    shots(page, "profile-01-overview")

    page.goto("/cabinet/profile/notifications")
    page.uncheck("input[name=notify_readings_sms]")
    page.check("input[name=paperless]")
    shots(page, "profile-02-notifications")
    with page.expect_navigation():
        page.get_by_role("button", name="Сохранить").click()
    assert "Настройки уведомлений сохранены." in page.content()
    shots(page, "profile-03-saved")
    user = fresh(session, resident)
    assert user.paperless and not user.notify_readings_sms and user.notify_readings_email

    page.goto("/cabinet/profile/password")
    page.fill("input[name=current]", PASSWORD)
    page.locator("button[data-toggle-password=current]").click()
    assert page.locator("input[name=current]").get_attribute("type") == "text"
    page.goto("/cabinet/profile/withdraw")
    shots(page, "profile-04-withdraw")
    with page.expect_navigation():
        page.get_by_role("button", name="Отозвать согласие и закрыть кабинет").click()
    assert "отметьте флажок" in page.content()
    assert fresh(session, resident).active
