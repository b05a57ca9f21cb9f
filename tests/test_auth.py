"""Residents' registration, sign-in and recovery; organizations' sign-in with a branch."""
from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from app.models import AuditEvent, OtpChallenge, PortalUser
from tests.factories import PASSWORD

GOOD_PASSWORD = "кубанский вечер у моря"


class Outbox:
    """The dev outbox the test app writes codes to."""

    def __init__(self, folder):
        self.folder = folder

    def messages(self) -> list[dict]:
        if not self.folder.exists():
            return []
        return [json.loads(p.read_text()) for p in sorted(self.folder.iterdir())]

    def code_for(self, destination: str) -> str:
        sent = [m for m in self.messages() if m["to"] == destination]
        assert sent, f"no code was sent to {destination}"
        return re.search(r"\d{6}", sent[-1]["text"]).group()


@pytest.fixture
def outbox(app, tmp_path):
    return Outbox(tmp_path / "outbox")


def register(client, outbox, method, contact, destination, password=GOOD_PASSWORD):
    r = client.post("/auth/register", data={"method": method, "contact": contact})
    assert r.status_code == 302 and r.location.endswith("/auth/register/confirm")
    code = outbox.code_for(destination)
    return client.post("/auth/register/confirm", data={
        "code": code, "password": password, "password_again": password, "consent": "y"})


def text(response) -> str:
    return response.get_data(as_text=True)


def without_nonces(html: str) -> str:
    """A page with its per-request script nonces blanked, to compare two responses."""
    return re.sub(r'nonce="[^"]*"', 'nonce=""', html)


def test_register_by_phone_in_any_form(client, session, outbox):
    r = register(client, outbox, "phone", "8 (918) 123-45-67", "+79181234567")
    assert r.status_code == 302 and r.location.endswith("/cabinet/")
    user = session.execute(select(PortalUser).filter_by(phone="+79181234567")).scalar_one()
    assert user.username == "+79181234567"
    assert user.kind == "resident"
    assert user.email_is_placeholder and user.email.endswith("@phone.invalid")
    assert user.deliverable_email is None
    assert user.pd_consent_at is not None and user.pd_consent_version
    assert [r.name for r in user.roles] == ["Resident"]
    assert user.password.startswith("scrypt:")
    page = client.get("/cabinet/")
    assert page.status_code == 200
    assert "не привязан ни один лицевой счёт" in text(page)


def test_register_by_email_and_sign_in(client, session, outbox):
    r = register(client, outbox, "email", "Ivan.Petrov@Example.com", "ivan.petrov@example.com")
    assert r.location.endswith("/cabinet/")
    client.post("/auth/logout")
    r = client.post("/auth/", data={"method": "email", "login": "ivan.petrov@example.com",
                                    "password": GOOD_PASSWORD})
    assert r.status_code == 302 and r.location.endswith("/cabinet/")


@pytest.mark.parametrize("contact, message", [
    ("12345", "Введите номер мобильного телефона"),
    ("+1 202 555 0100", "Введите номер мобильного телефона"),
])
def test_bad_phone_is_refused_clearly(client, outbox, contact, message):
    r = client.post("/auth/register", data={"method": "phone", "contact": contact})
    assert r.status_code == 200 and message in text(r)
    assert outbox.messages() == []


def test_bad_email_is_refused_clearly(client, outbox):
    r = client.post("/auth/register", data={"method": "email", "contact": "ivan@"})
    assert "Введите адрес электронной почты" in text(r)
    assert outbox.messages() == []


def test_consent_is_required_and_not_preticked(client, session, outbox):
    assert client.get("/auth/register/confirm").location.endswith("/auth/register")
    client.post("/auth/register", data={"method": "phone", "contact": "9181234567"})
    page = text(client.get("/auth/register/confirm"))
    consent_input = re.search(r'<input[^>]*name="consent"[^>]*>', page).group()
    assert "checked" not in consent_input
    code = outbox.code_for("+79181234567")
    r = client.post("/auth/register/confirm", data={
        "code": code, "password": GOOD_PASSWORD, "password_again": GOOD_PASSWORD})
    assert "согласие на обработку персональных данных" in text(r)
    assert session.execute(select(func.count(PortalUser.id))).scalar_one() == 0
    r = client.post("/auth/register/confirm", data={
        "code": code, "password": GOOD_PASSWORD, "password_again": GOOD_PASSWORD,
        "consent": "y"})
    assert r.location.endswith("/cabinet/")


@pytest.mark.parametrize("password, again, message", [
    ("qwerty123", "qwerty123", "слишком простой"),
    ("short", "short", "не менее 8 символов"),
    (GOOD_PASSWORD, GOOD_PASSWORD + "!", "Пароли не совпадают"),
])
def test_bad_password_changes_nothing(client, session, outbox, password, again, message):
    client.post("/auth/register", data={"method": "phone", "contact": "9181234567"})
    code = outbox.code_for("+79181234567")
    r = client.post("/auth/register/confirm", data={
        "code": code, "password": password, "password_again": again, "consent": "y"})
    assert r.status_code == 200 and message in text(r)
    assert session.execute(select(func.count(PortalUser.id))).scalar_one() == 0
    challenge = session.execute(select(OtpChallenge)).scalar_one()
    assert challenge.consumed_at is None and challenge.attempts == 0


def test_wrong_code_counts_attempts(client, session, outbox):
    client.post("/auth/register", data={"method": "phone", "contact": "9181234567"})
    right = outbox.code_for("+79181234567")
    wrong = "000000" if right != "000000" else "111111"
    r = client.post("/auth/register/confirm", data={
        "code": wrong, "password": GOOD_PASSWORD, "password_again": GOOD_PASSWORD,
        "consent": "y"})
    assert "Неверный код. Осталось попыток: 4." in text(r)
    assert session.execute(select(func.count(PortalUser.id))).scalar_one() == 0


def test_registration_does_not_reveal_a_taken_contact_before_the_code(app, client, outbox,
                                                                      make_user_fn, session):
    make_user_fn("taken", "Resident", kind="resident", phone="+79180000001")
    stranger = app.test_client()
    taken = client.post("/auth/register", data={"method": "phone", "contact": "9180000001"})
    free = stranger.post("/auth/register", data={"method": "phone", "contact": "9180000002"})
    assert taken.status_code == free.status_code == 302
    assert taken.location == free.location
    assert outbox.code_for("+79180000001") and outbox.code_for("+79180000002")
    r = client.post("/auth/register/confirm", data={
        "code": outbox.code_for("+79180000001"), "password": GOOD_PASSWORD,
        "password_again": GOOD_PASSWORD, "consent": "y"})
    assert "уже зарегистрирован" in text(r)
    assert session.execute(select(func.count(PortalUser.id))).scalar_one() == 1


def test_resend_respects_cooldown(client, outbox):
    client.post("/auth/register", data={"method": "phone", "contact": "9181234567"})
    r = client.post("/auth/resend", follow_redirects=True)
    assert "Новый код можно запросить через" in text(r)
    assert len(outbox.messages()) == 1


@pytest.fixture
def resident(make_user_fn, session):
    user = make_user_fn("+79185550011", "Resident", kind="resident", phone="+79185550011")
    user.email = "resident@example.test"
    session.commit()
    return user


@pytest.mark.parametrize("login", ["+79185550011", "8 918 555-00-11", "9185550011",
                                   "+7 (918) 555-00-11", "resident@example.test"])
def test_sign_in_by_phone_in_any_form_or_email(client, resident, login):
    r = client.post("/auth/", data={"method": "phone", "login": login, "password": PASSWORD})
    assert r.status_code == 302 and r.location.endswith("/cabinet/")


def test_remember_me_sets_a_safe_cookie_only_when_ticked(client, resident):
    client.post("/auth/", data={"login": "9185550011", "password": PASSWORD})
    assert client.get_cookie("remember_token") is None
    client.post("/auth/logout")
    client.post("/auth/", data={"login": "9185550011", "password": PASSWORD,
                                "remember": "y"})
    cookie = client.get_cookie("remember_token")
    assert cookie is not None
    assert cookie.http_only
    assert cookie.same_site == "Lax"
    assert cookie.expires is not None


def test_wrong_password_and_unknown_login_look_the_same(client, resident, session):
    client.get("/auth/")
    wrong = client.post("/auth/", data={"login": "9185550011", "password": "не тот пароль"})
    unknown = client.post("/auth/", data={"login": "9185550099", "password": "не тот пароль"})
    assert wrong.status_code == unknown.status_code == 200
    assert "Неверный логин или пароль." in text(wrong)
    assert without_nonces(text(wrong)).replace("9185550011", "LOGIN") == \
        without_nonces(text(unknown)).replace("9185550099", "LOGIN")
    actions = session.execute(select(AuditEvent.action, AuditEvent.actor_id)).all()
    assert ("login.failure", resident.id) in actions and ("login.failure", None) in actions


def test_staff_and_business_cannot_use_the_resident_form(client, make_user_fn):
    make_user_fn("clerk", "Staff")
    r = client.post("/auth/", data={"login": "clerk", "password": PASSWORD})
    assert "Неверный логин или пароль." in text(r)


def test_residents_cannot_use_the_staff_login(client, resident):
    r = client.post("/login/", data={"username": "+79185550011", "password": PASSWORD},
                    follow_redirects=True)
    assert r.status_code == 200 and 'name="password"' in text(r)  # the form again
    assert client.get("/cabinet/").status_code == 302


def test_an_account_under_attack_asks_a_proof_before_checking_the_password(client, resident,
                                                                            session):
    """Five failures: the next sign-in from an address the account never signed in from needs
    the «not a robot» proof; the right password alone is not checked (tests/
    test_signin_throttle.py has the rest: the owner's ways in, the hard limits)."""
    for _ in range(5):
        client.post("/auth/", data={"login": "9185550011", "password": "не тот пароль"})
    r = client.post("/auth/", data={"login": "9185550011", "password": PASSWORD})
    assert r.status_code == 200
    assert "Подтвердите, что вы не робот" in text(r) and "data-signin-challenge" in text(r)
    assert client.get("/cabinet/").status_code == 302
    assert session.execute(
        select(func.count()).where(AuditEvent.action == "login.failure")).scalar_one() == 5
    assert session.execute(
        select(func.count()).where(AuditEvent.action == "login.success")).scalar_one() == 0


def test_the_staff_login_asks_the_proof_too(client, make_user_fn):
    make_user_fn("clerk", "Staff")
    for _ in range(5):
        client.post("/login/", data={"username": "clerk", "password": "не тот пароль"})
    r = client.post("/login/", data={"username": "clerk", "password": PASSWORD},
                    follow_redirects=True)
    assert "Подтвердите, что вы не робот" in text(r) and "data-signin-challenge" in text(r)


def test_recovery_looks_the_same_for_known_and_unknown_contacts(client, resident, outbox):
    client.get("/auth/recover")
    known = client.post("/auth/recover", data={"method": "phone", "contact": "9185550011"},
                        follow_redirects=True)
    client.post("/auth/logout")
    unknown = client.post("/auth/recover", data={"method": "phone", "contact": "9185550099"},
                          follow_redirects=True)
    normalize = lambda html: without_nonces(html).replace(  # noqa: E731
        "(918) ***-**-11", "X").replace("(918) ***-**-99", "X")
    assert normalize(text(known)) == normalize(text(unknown))
    assert [m["to"] for m in outbox.messages()] == ["+79185550011"]


def test_recovery_signs_in_and_forces_a_new_password(client, resident, outbox, session):
    client.post("/auth/recover", data={"method": "phone", "contact": "8 918 555 00 11"})
    code = outbox.code_for("+79185550011")
    r = client.post("/auth/recover/confirm", data={"code": code})
    assert r.location.endswith("/auth/password")
    for page in ("/cabinet/", "/", "/personalaccountview/list/"):
        assert client.get(page).location.endswith("/auth/password")
    r = client.post("/auth/password", data={"password": GOOD_PASSWORD,
                                            "password_again": GOOD_PASSWORD})
    assert r.location.endswith("/cabinet/")
    assert client.get("/cabinet/").status_code == 200
    client.post("/auth/logout")
    old = client.post("/auth/", data={"login": "9185550011", "password": PASSWORD})
    assert "Неверный логин или пароль." in text(old)
    new = client.post("/auth/", data={"login": "9185550011", "password": GOOD_PASSWORD})
    assert new.location.endswith("/cabinet/")
    actions = set(session.execute(select(AuditEvent.action)).scalars())
    assert {"otp.requested", "login.by_code", "password.changed", "login.success",
            "login.failure"} <= actions


def test_recovery_code_is_single_use(client, resident, outbox, session):
    client.post("/auth/recover", data={"method": "phone", "contact": "9185550011"})
    code = outbox.code_for("+79185550011")
    client.post("/auth/recover/confirm", data={"code": code})
    client.post("/auth/logout")
    session.execute(update(OtpChallenge).values(
        created_at=OtpChallenge.created_at - dt.timedelta(minutes=2)))
    session.commit()
    client.post("/auth/recover", data={"method": "phone", "contact": "9185550011"})
    r = client.post("/auth/recover/confirm", data={"code": code})
    assert r.status_code == 200 and "Код" in text(r)
    assert client.get("/cabinet/").status_code == 302


def test_no_code_or_password_in_the_database_or_journal(client, outbox, session):
    register(client, outbox, "phone", "9181234567", "+79181234567")
    code = outbox.code_for("+79181234567")
    dump = " ".join(str(row) for table in (PortalUser, OtpChallenge, AuditEvent)
                    for row in session.execute(select(table.__table__)).all())
    assert code not in dump
    assert GOOD_PASSWORD not in dump


@pytest.fixture
def organization_user(two_branches, make_user_fn, session):
    krd, nvr = two_branches
    user = make_user_fn("org-krd-1", "Business", kind="business",
                        organization_id=krd.ids["Organization"])
    user.must_change_password = True
    session.commit()
    return user, krd, nvr


def test_business_sign_in_needs_the_organizations_branch(client, organization_user):
    user, krd, nvr = organization_user
    wrong = client.post("/business/login", data={"login": "org-krd-1", "password": PASSWORD,
                                                 "branch": nvr.branch_id})
    assert "Неверный логин, пароль или филиал." in text(wrong)
    assert client.get("/business/").status_code == 302
    right = client.post("/business/login", data={"login": "org-krd-1", "password": PASSWORD,
                                                 "branch": krd.branch_id})
    assert right.location.endswith("/auth/password")
    assert client.get("/business/").location.endswith("/auth/password")
    client.post("/auth/password", data={"password": GOOD_PASSWORD,
                                        "password_again": GOOD_PASSWORD})
    home = client.get("/business/")
    assert home.status_code == 200
    assert "Д-krd-1" in text(home) and "Д-nvr-1" not in text(home)


def test_business_form_lists_branches(client, organization_user):
    page = text(client.get("/business/login"))
    assert "Краснодарэнергосбыт" in page and "Новороссийскэнергосбыт" in page


def test_residents_cannot_open_the_business_cabinet(client, resident):
    client.post("/auth/", data={"login": "9185550011", "password": PASSWORD})
    assert client.get("/business/").status_code in (302, 403)


def test_every_form_needs_a_csrf_token(make_app):
    flask_app = make_app(WTF_CSRF_ENABLED=True)
    client = flask_app.test_client()
    for url, data in [("/auth/", {"login": "x", "password": "y"}),
                      ("/auth/register", {"method": "phone", "contact": "9181234567"}),
                      ("/auth/register/confirm", {"code": "123456"}),
                      ("/auth/recover", {"method": "phone", "contact": "9181234567"}),
                      ("/auth/recover/confirm", {"code": "123456"}),
                      ("/auth/resend", {}),
                      ("/auth/password", {"password": "x"}),
                      ("/business/login", {"login": "x", "password": "y", "branch": 1}),
                      ("/login/", {"username": "x", "password": "y"})]:
        assert client.post(url, data=data).status_code == 400, url
    assert not Path(flask_app.config["DEV_OUTBOX_DIR"]).exists()


def test_password_change_is_announced_on_every_real_contact(client, resident, outbox):
    client.post("/auth/recover", data={"method": "phone", "contact": "9185550011"})
    client.post("/auth/recover/confirm", data={"code": outbox.code_for("+79185550011")})
    client.post("/auth/password", data={"password": GOOD_PASSWORD,
                                         "password_again": GOOD_PASSWORD})
    notices = [(m["channel"], m["to"]) for m in outbox.messages()
               if "Пароль от вашего личного кабинета НЭСК изменён" in m["text"]]
    assert sorted(notices) == [("dev-email", "resident@example.test"),
                               ("dev-sms", "+79185550011")]


def test_phone_only_resident_never_gets_mail_at_the_placeholder(client, session, outbox):
    register(client, outbox, "phone", "9181234567", "+79181234567")
    user = session.execute(select(PortalUser).filter_by(phone="+79181234567")).scalar_one()
    from app.services.notify import announce_security_change

    assert announce_security_change(user, "password") == 1
    assert all("phone.invalid" not in m["to"] for m in outbox.messages())


def api_login(client, username, password):
    return client.post("/api/v1/security/login", json={
        "username": username, "password": password, "provider": "db", "refresh": True})


def test_api_login_accepts_a_phone_in_any_form(client, resident):
    r = api_login(client, "8 918 555-00-11", PASSWORD)
    assert r.status_code == 200 and "access_token" in r.get_json()


def test_api_login_asks_the_proof_too(client, resident, session):
    for _ in range(5):
        assert api_login(client, "9185550011", "не тот пароль").status_code == 401
    asked = api_login(client, "9185550011", PASSWORD)
    assert asked.status_code == 401 and "access_token" not in asked.json
    assert "Подтвердите, что вы не робот" in asked.json["message"]
    assert asked.json["challenge"]["parameters"]["algorithm"] == "PBKDF2/SHA-256"


def test_sign_in_is_throttled_per_ip_across_accounts(client, resident, session):
    for i in range(30):
        client.post("/auth/", data={"login": f"91800000{i:02d}", "password": "не тот пароль"})
    r = client.post("/auth/", data={"login": "9185550011", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "Слишком много неудачных попыток входа" in text(r)
    assert session.execute(
        select(func.count()).where(AuditEvent.action == "login.throttled")).scalar_one() == 1
    other_ip = client.post("/auth/", data={"login": "9185550011", "password": PASSWORD},
                           environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other_ip.location.endswith("/cabinet/")
