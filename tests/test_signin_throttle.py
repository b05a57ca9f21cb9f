"""Failed sign-ins stop the attacker, not the owner (app.services.signin_guard): hard limits per
account and address and per address; per account, the «not a robot» proof of work
(app.services.challenge, ALTCHA) from addresses the account has not signed in from; the owner
told once per burst (app.services.signin_alerts). On every entrance: residents' /auth/,
organizations' /business/login, staff's /login/, the API's login, the profile's password
check. Client addresses come through the trusted proxy (PROXY_COUNT=1, X-Forwarded-For), as
in production; the counters live in the rate-limit storage, memory or Redis."""
from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import altcha
import pytest
from sqlalchemy import func, select

from app.models import AuditEvent, NoticeLog
from app.services import challenge
from app.services.signin_guard import CHALLENGE_FAILED, CHALLENGE_NEEDED, SigninRules
from tests.factories import PASSWORD

PHONE = "+79185550011"
EMAIL = "resident@example.test"
#: Tries of the first challenge in these tests: Python solves a try in about a millisecond.
WORK = 16
RULES = SigninRules(work=WORK)
OWNER_HOME = "198.51.100.7"
OWNER_TRAVELLING = "198.51.100.99"
CHALLENGE_ATTRIBUTE = re.compile(r"data-signin-challenge='([^']*)'")


def attacker(n: int) -> str:
    return f"203.0.113.{n % 250 + 1}"


def solve(challenge_json: dict) -> str:
    """What a client sends: the ALTCHA library's own solver, the server's counterpart."""
    parsed = altcha.Challenge.from_dict(challenge_json)
    return altcha.Payload(parsed, altcha.solve_challenge(parsed)).to_base64()


def text(response) -> str:
    """What a person or an app reads in the answer: the page, or the JSON unescaped."""
    if response.is_json:
        return json.dumps(response.json, ensure_ascii=False)
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def proxied(make_app):
    """An app behind one trusted proxy, its first challenge cheap."""
    return make_app(PROXY_COUNT=1, SIGNIN_CHALLENGE_WORK=WORK)


@pytest.fixture
def resident(make_user_fn, session):
    user = make_user_fn(PHONE, "Resident", kind="resident", phone=PHONE)
    user.email = EMAIL
    session.commit()
    return user


# The entrances, each as a way to try a password from an address and to read the answer.

@dataclass
class Entrance:
    name: str
    try_password: Callable  # (client, login, password, ip, proof) -> response
    signed_in: Callable  # response -> bool
    challenge_of: Callable  # response -> dict | None
    login: str = PHONE


def _form_challenge(response) -> dict | None:
    found = CHALLENGE_ATTRIBUTE.search(response.get_data(as_text=True))
    return json.loads(html.unescape(found[1])) if found else None


def _resident(client, login, password, ip, proof):
    return client.post("/auth/", data={"method": "phone", "login": login, "password": password,
                                       **({"altcha": proof} if proof else {})},
                       headers={"X-Forwarded-For": ip})


def _staff(client, login, password, ip, proof):
    return client.post("/login/", data={"username": login, "password": password,
                                        **({"altcha": proof} if proof else {})},
                       headers={"X-Forwarded-For": ip})


def _business(branch_id):
    def attempt(client, login, password, ip, proof):
        return client.post("/business/login", data={
            "login": login, "password": password, "branch": branch_id,
            **({"altcha": proof} if proof else {})}, headers={"X-Forwarded-For": ip})
    return attempt


def _api(client, login, password, ip, proof):
    return client.post("/api/v1/security/login", json={
        "username": login, "password": password, **({"altcha": proof} if proof else {})},
        headers={"X-Forwarded-For": ip})


RESIDENT_FORM = Entrance("/auth/", _resident,
                         lambda r: r.status_code == 302 and r.location.endswith("/cabinet/"),
                         _form_challenge)
API = Entrance("API", _api, lambda r: r.status_code == 200 and "access_token" in r.json,
               lambda r: (r.json or {}).get("challenge"))


@pytest.fixture(params=["resident", "business", "staff", "api"])
def entrance(request, make_user_fn, session, two_branches):
    """Every entrance with a user it admits."""
    krd, _nvr = two_branches
    if request.param == "business":
        make_user_fn("org-krd", "Business", kind="business",
                     organization_id=krd.ids["Organization"])
        return Entrance("/business/login", _business(krd.branch_id),
                        lambda r: r.status_code == 302 and r.location.endswith("/business/"),
                        _form_challenge, login="org-krd")
    if request.param == "staff":
        make_user_fn("clerk", "Staff", branch_id=krd.branch_id)
        return Entrance("/login/", _staff,
                        lambda r: r.status_code == 302 and "/login/" not in r.location,
                        _form_challenge, login="clerk")
    make_user_fn(PHONE, "Resident", kind="resident", phone=PHONE)
    return RESIDENT_FORM if request.param == "resident" else API


def guess(client, entrance: Entrance, times: int, start: int = 0) -> None:
    """A botnet: each guess from another address, with a proof when the account asks one."""
    for n in range(start, start + times):
        ip = attacker(n)
        answer = entrance.try_password(client, entrance.login, f"не тот {n}", ip, None)
        if CHALLENGE_NEEDED in text(answer):  # the password was not checked: solve, again
            answer = entrance.try_password(client, entrance.login, f"не тот {n}", ip,
                                           solve(entrance.challenge_of(answer)))
        assert not entrance.signed_in(answer)
        assert answer.status_code in (200, 302, 401), text(answer)
        assert CHALLENGE_NEEDED not in text(answer) and CHALLENGE_FAILED not in text(answer)


# -- the rules, on every entrance ----------------------------------------------------------------


def test_a_botnet_guessing_leaves_the_owner_two_ways_in(proxied, entrance):
    client = proxied.test_client()
    assert entrance.signed_in(entrance.try_password(client, entrance.login, PASSWORD,
                                                    OWNER_HOME, None))
    client = proxied.test_client()  # a new browser: signed out
    guess(client, entrance, 12)

    # From the owner's usual address, the password alone (which forgives the failures)...
    assert entrance.signed_in(entrance.try_password(proxied.test_client(), entrance.login,
                                                    PASSWORD, OWNER_HOME, None))
    guess(client, entrance, 6, start=12)  # ... while the guessing goes on.

    # From a new address: asked to prove it is no robot, the password not even checked...
    elsewhere = proxied.test_client()
    asked = entrance.try_password(elsewhere, entrance.login, PASSWORD, OWNER_TRAVELLING, None)
    assert not entrance.signed_in(asked)
    assert "Подтвердите, что вы не робот" in text(asked)
    found = entrance.challenge_of(asked)
    assert found["parameters"]["data"]["work"] >= WORK
    # ... then in with the solved proof.
    assert entrance.signed_in(entrance.try_password(elsewhere, entrance.login, PASSWORD,
                                                    OWNER_TRAVELLING, solve(found)))


def test_an_address_guessing_one_account_is_refused_for_a_while(proxied, entrance):
    client = proxied.test_client()
    assert entrance.signed_in(entrance.try_password(client, entrance.login, PASSWORD,
                                                    OWNER_HOME, None))
    someone_at_home = proxied.test_client()  # the same address: no challenge, the pair limit
    for n in range(10):
        failed = entrance.try_password(someone_at_home, entrance.login, f"не тот {n}",
                                       OWNER_HOME, None)
        assert not entrance.signed_in(failed)
    refused = entrance.try_password(someone_at_home, entrance.login, PASSWORD, OWNER_HOME, None)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 15 * 60
    assert "Слишком много неудачных попыток входа" in text(refused)
    # Another address is not refused: past the challenge, the owner signs in.
    elsewhere = proxied.test_client()
    asked = entrance.try_password(elsewhere, entrance.login, PASSWORD, OWNER_TRAVELLING, None)
    assert entrance.signed_in(entrance.try_password(
        elsewhere, entrance.login, PASSWORD, OWNER_TRAVELLING, solve(entrance.challenge_of(asked))))


def test_the_refusal_points_to_signing_in_by_code(proxied, resident):
    client = proxied.test_client()
    for n in range(30):  # one address, thirty logins
        _resident(client, f"+7918000{n:04d}", "не тот", attacker(1), None)
    refused = _resident(client, PHONE, PASSWORD, attacker(1), None)
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    page = text(refused)
    assert "Слишком много неудачных попыток входа" in page
    assert re.search(r'<a[^>]+href="/auth/recover"[^>]*>Войти по коду</a>', page)
    api = _api(client, PHONE, PASSWORD, attacker(1), None)
    assert api.status_code == 429 and "Retry-After" in api.headers
    assert "войдите по одноразовому коду" in api.json["message"]


def fail_from(flask_app, ip: str, times: int) -> None:
    """Failures of as many unknown logins from one address, counted as a sign-in counts them
    (test_the_refusal_points_to_signing_in_by_code makes them by HTTP)."""
    guard = flask_app.extensions["signin_guard"]
    for n in range(times):
        guard.failed(guard.subject(None, f"+7918000{n:04d}"), ip)


def test_an_address_the_account_knows_is_not_refused_for_others_failures(proxied, resident):
    client = proxied.test_client()
    assert RESIDENT_FORM.signed_in(_resident(client, PHONE, PASSWORD, OWNER_HOME, None))
    neighbour = proxied.test_client()  # behind the same address (a carrier's NAT)
    fail_from(proxied, OWNER_HOME, 30)
    assert _resident(neighbour, "+79180009999", "не тот", OWNER_HOME, None).status_code == 429
    assert RESIDENT_FORM.signed_in(_resident(proxied.test_client(), PHONE, PASSWORD,
                                             OWNER_HOME, None))


def test_signing_in_by_code_makes_the_address_known(proxied, resident):
    """The owner, travelling while the account is under attack, signs in by a code sent to
    the phone: from then on that address needs the password alone."""
    from tests.test_auth import Outbox

    fail_five_times(proxied.test_client())
    away = {"X-Forwarded-For": OWNER_TRAVELLING}
    owner = proxied.test_client()
    owner.post("/auth/recover", data={"method": "phone", "contact": PHONE}, headers=away)
    code = Outbox(Path(proxied.config["DEV_OUTBOX_DIR"])).code_for(PHONE)
    assert owner.post("/auth/recover/confirm", data={"code": code},
                      headers=away).status_code == 302
    assert RESIDENT_FORM.signed_in(_resident(proxied.test_client(), PHONE, PASSWORD,
                                             OWNER_TRAVELLING, None))


def test_a_phone_typed_another_way_is_the_same_account(proxied, resident):
    client = proxied.test_client()
    for n, login in enumerate(["+79185550011", "8 918 555-00-11", "9185550011", EMAIL,
                               "+7 (918) 555-00-11"]):
        _resident(client, login, "не тот", attacker(n), None)
    asked = _resident(client, "89185550011", PASSWORD, attacker(9), None)
    assert "Подтвердите, что вы не робот" in text(asked)


def test_unknown_logins_are_asked_the_same(proxied):
    client = proxied.test_client()
    for n in range(5):
        _resident(client, "+79180000000", "не тот", attacker(n), None)
    asked = _resident(client, "+79180000000", "не тот", attacker(9), None)
    assert asked.status_code == 200 and "Подтвердите, что вы не робот" in text(asked)
    assert _form_challenge(asked)


# -- the proof ------------------------------------------------------------------------------------


def fail_five_times(client, entrance: Entrance = RESIDENT_FORM) -> dict:
    for n in range(5):
        entrance.try_password(client, entrance.login, "не тот", attacker(n), None)
    return entrance.challenge_of(entrance.try_password(client, entrance.login, PASSWORD,
                                                       OWNER_TRAVELLING, None))


def test_a_proof_is_good_for_one_attempt(proxied, resident):
    client = proxied.test_client()
    proof = solve(fail_five_times(client))
    assert "Неверный логин или пароль" in text(_resident(client, PHONE, "не тот",
                                                           OWNER_TRAVELLING, proof))
    again = _resident(client, PHONE, PASSWORD, OWNER_TRAVELLING, proof)
    assert CHALLENGE_FAILED in text(again) and _form_challenge(again)


def tampered(proof: str) -> str:
    payload = json.loads(base64.b64decode(proof))
    payload["challenge"]["parameters"]["data"]["work"] = 10 ** 6
    return base64.b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize("forge", [
    lambda proof: tampered(proof),
    lambda proof: proof[:-8] + "AAAAAAA=",
    lambda proof: "не base64",
    lambda proof: base64.b64encode(b'{"challenge": 1, "solution": []}').decode(),
    lambda proof: "A" * (challenge.MAX_PROOF + 1),
], ids=["tampered", "broken", "not-base64", "wrong-shape", "too-long"])
def test_a_forged_proof_is_refused_and_counts_against_the_address(proxied, resident, forge):
    client = proxied.test_client()
    forged = forge(solve(fail_five_times(client)))
    refused = _resident(client, PHONE, PASSWORD, OWNER_TRAVELLING, forged)
    assert refused.status_code == 200 and CHALLENGE_FAILED in text(refused)
    assert _form_challenge(refused)  # and a new one to solve
    guard = proxied.extensions["signin_guard"]
    stats = guard.limiter.get_window_stats(guard.address_limit,
                                           guard._address_key(OWNER_TRAVELLING))
    assert stats.remaining == guard.address_limit.amount - 1


def test_the_work_grows_with_the_failures_and_an_easy_proof_is_not_enough(proxied, resident):
    guard = proxied.extensions["signin_guard"]
    subject = guard.subject(resident.id, PHONE)
    cheap = challenge.issue(guard.key, WORK)  # as issued for a quiet account
    for n in range(25):
        guard.failed(subject, attacker(n))
    assert guard.work_for(guard.failures(subject)) == WORK * 4
    assert guard.work_for(10 ** 6) == WORK * RULES.max_growth
    client = proxied.test_client()
    refused = _resident(client, PHONE, PASSWORD, OWNER_TRAVELLING, solve(cheap))
    assert CHALLENGE_FAILED in text(refused)
    harder = _form_challenge(refused)
    assert harder["parameters"]["data"]["work"] == WORK * 4
    assert RESIDENT_FORM.signed_in(_resident(client, PHONE, PASSWORD, OWNER_TRAVELLING,
                                             solve(harder)))


def test_a_wrong_password_on_an_account_under_attack_comes_with_the_next_challenge(
        proxied, resident):
    client = proxied.test_client()
    proof = solve(fail_five_times(client))
    wrong = _resident(client, PHONE, "не тот", OWNER_TRAVELLING, proof)
    assert "Неверный логин или пароль" in text(wrong)
    assert _form_challenge(wrong), "the next attempt needs a new proof: it is on the page"
    page = text(wrong)
    assert "Подтвердите, что вы не робот" in page  # the fieldset's legend
    assert 'role="status"' in page and "js/signin-challenge" in page


def test_the_challenge_is_only_on_the_form_when_needed(proxied, resident):
    client = proxied.test_client()
    assert _form_challenge(client.get("/auth/")) is None
    wrong = _resident(client, PHONE, "не тот", attacker(1), None)
    assert _form_challenge(wrong) is None and "signin-challenge.js" not in text(wrong)
    assert _form_challenge(proxied.test_client().get("/login/")) is None


def test_ipv6_counts_by_its_64_network(proxied):
    guard = proxied.extensions["signin_guard"]
    assert guard.network("2001:db8:1:2::1") == guard.network("2001:db8:1:2:ffff::9")
    assert guard.network("2001:db8:1:2::1") != guard.network("2001:db8:1:3::1")
    assert guard.network("::ffff:203.0.113.5") == "203.0.113.5"
    client = proxied.test_client()
    for n in range(30):  # thirty logins, each from another address of one subscriber's /64
        guard.failed(guard.subject(None, f"+7918200{n:04d}"), f"2001:db8:1:2::{n + 1:x}")
    refused = _resident(client, PHONE, PASSWORD, "2001:db8:1:2:abcd::1", None)
    assert refused.status_code == 429
    assert _resident(client, PHONE, "не тот", "2001:db8:1:3::1", None).status_code == 200


# -- the owner is told ----------------------------------------------------------------------------


def outbox_messages(flask_app) -> list[dict]:
    folder = Path(flask_app.config["DEV_OUTBOX_DIR"])
    if not folder.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.iterdir())]


def test_the_owner_is_told_once_per_burst_on_each_channel(proxied, resident, session):
    client = proxied.test_client()
    guess(client, RESIDENT_FORM, 4)
    assert outbox_messages(proxied) == []  # a few mistakes are no burst
    guess(client, RESIDENT_FORM, 16, start=4)
    told = outbox_messages(proxied)
    assert sorted(m["to"] for m in told) == [PHONE, EMAIL]
    letter = next(m for m in told if m["to"] == EMAIL)
    assert letter["subject"] == "Кто-то пытался войти в ваш личный кабинет"
    assert "Неудачных попыток: 5" in letter["text"]
    assert "/cabinet/profile/password" in letter["text"] and "«Забыли пароль?»" in letter["text"]
    assert session.execute(select(func.count()).where(
        NoticeLog.code == "signin_failures", NoticeLog.user_id == resident.id)).scalar_one() == 1

    # The owner signs in; the guessing goes on within the quiet day: nobody is told again.
    owner = proxied.test_client()
    asked = _resident(owner, PHONE, PASSWORD, OWNER_HOME, None)
    assert RESIDENT_FORM.signed_in(_resident(owner, PHONE, PASSWORD, OWNER_HOME,
                                             solve(_form_challenge(asked))))
    guess(client, RESIDENT_FORM, 8, start=40)
    assert len(outbox_messages(proxied)) == 2


def test_guessing_an_unknown_login_tells_nobody(proxied):
    guess(proxied.test_client(), replace(RESIDENT_FORM, login="+79180000002"), 8)
    assert outbox_messages(proxied) == []


def test_the_profile_password_check_counts_for_the_account(proxied, resident):
    client = proxied.test_client()
    assert RESIDENT_FORM.signed_in(_resident(client, PHONE, PASSWORD, OWNER_HOME, None))
    for _ in range(10):
        client.post("/cabinet/profile/password", data={
            "current": "не тот", "password": "новый пароль у моря",
            "password_again": "новый пароль у моря"}, headers={"X-Forwarded-For": OWNER_HOME})
    refused = client.post("/cabinet/profile/password", data={
        "current": PASSWORD, "password": "новый пароль у моря",
        "password_again": "новый пароль у моря"}, headers={"X-Forwarded-For": OWNER_HOME})
    assert "Слишком много неудачных попыток" in text(refused)
    assert len(outbox_messages(proxied)) == 2  # the burst told the owner (e-mail and SMS)
    asked = _resident(proxied.test_client(), PHONE, PASSWORD, OWNER_TRAVELLING, None)
    assert "Подтвердите, что вы не робот" in text(asked)


def test_a_throttled_sign_in_is_audited_and_a_challenged_one_checks_no_password(
        proxied, resident, session):
    client = proxied.test_client()
    fail_five_times(client)
    actions = session.execute(select(AuditEvent.action)).scalars().all()
    assert actions.count("login.failure") == 5  # the challenged attempt checked nothing
    fail_from(proxied, attacker(200), 30)
    _resident(client, PHONE, PASSWORD, attacker(200), None)
    assert "login.throttled" in session.execute(select(AuditEvent.action)).scalars().all()


# -- across processes -----------------------------------------------------------------------------


def test_counters_known_addresses_and_spent_proofs_are_shared_through_redis(
        make_app, redis_url, resident):
    one, other = (make_app(PROXY_COUNT=1, SIGNIN_CHALLENGE_WORK=WORK,
                           RATELIMIT_STORAGE_URI=redis_url) for _ in range(2))
    assert RESIDENT_FORM.signed_in(_resident(one.test_client(), PHONE, PASSWORD, OWNER_HOME,
                                             None))
    for n in range(5):  # the failures of both count for the account
        _resident((one, other)[n % 2].test_client(), PHONE, "не тот", attacker(n), None)
    asked = _resident(other.test_client(), PHONE, PASSWORD, OWNER_TRAVELLING, None)
    proof = solve(_form_challenge(asked))
    assert "Неверный логин или пароль" in text(_resident(one.test_client(), PHONE, "не тот",
                                                           attacker(6), proof))
    spent = _resident(other.test_client(), PHONE, PASSWORD, attacker(7), proof)
    assert CHALLENGE_FAILED in text(spent)
    assert RESIDENT_FORM.signed_in(_resident(one.test_client(), PHONE, PASSWORD,
                                             OWNER_TRAVELLING, solve(_form_challenge(spent))))
    # The address the owner signed in from on one instance is known to the other.
    for n in range(5):
        _resident(one.test_client(), PHONE, "не тот", attacker(n + 10), None)
    assert RESIDENT_FORM.signed_in(_resident(other.test_client(), PHONE, PASSWORD, OWNER_HOME,
                                             None))


# -- in a browser ---------------------------------------------------------------------------------

#: The browser's first challenge: a couple of seconds of WebCrypto in headless Chromium, long
#: enough to press Enter before it ends.
BROWSER_WORK = 8000


@pytest.fixture
def live_overrides():
    return {"PROXY_COUNT": 1, "SIGNIN_CHALLENGE_WORK": BROWSER_WORK}


@pytest.mark.browser
def test_the_owner_passes_the_check_in_a_browser_with_the_keyboard(browser, browser_page,
                                                                   live_server, resident,
                                                                   shots):
    botnet = browser.new_context(base_url=live_server, locale="ru-RU",
                                 extra_http_headers={"X-Forwarded-For": attacker(1)})
    guessing = botnet.new_page()
    for n in range(5):
        guessing.goto("/auth/")
        guessing.fill("input[name=login]", PHONE)
        guessing.fill("input[name=password]", f"не тот {n}")
        with guessing.expect_navigation():
            guessing.press("input[name=password]", "Enter")
        assert "Неверный логин или пароль" in guessing.content()
    botnet.close()

    page = browser_page  # the owner, at an address the account never signed in from
    page.goto("/auth/")
    page.fill("input[name=login]", PHONE)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")
    check = page.get_by_role("group", name="Подтвердите, что вы не робот")
    assert check.is_visible()
    assert page.get_by_role("link", name="Войти по коду").get_attribute("href") == "/auth/recover"
    assert page.evaluate("document.activeElement.name") == "password"
    page.keyboard.type(PASSWORD)
    shots(page, "50-signin-challenge")
    with page.expect_navigation(url="**/cabinet/", timeout=60_000):
        page.keyboard.press("Enter")  # before the check ends: the form waits, then goes
        status = page.get_by_role("status").inner_text()
        assert "Подождите" in status or "Проверка пройдена" in status, status
    assert page.url.endswith("/cabinet/")
