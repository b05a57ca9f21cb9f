"""Sign-ins that really end: a copy of an ended session's cookie, «Запомнить меня» cookie or
API token opens nothing; sign-out is a POST with the CSRF token on every entrance; the
profile lists the person's sign-ins and ends them; a new password or a withdrawn consent ends
the others; expired rows are pruned."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from flask import g
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from app.models import AuditEvent, UserSession, utcnow
from app.services import devices, sessions
from tests.factories import PASSWORD
from tests.test_api import API, bearer

PHONE_CHROME = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like "
                "Gecko) Chrome/126.0.0.0 Mobile Safari/537.36")
IPHONE_SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
WINDOWS_YANDEX = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
                  "Gecko) Chrome/126.0.0.0 YaBrowser/24.6.0.0 Safari/537.36")
SIGN_OUTS = {"resident": "/auth/logout", "business": "/business/logout", "staff": "/logout/"}
HOMES = {"resident": "/cabinet/", "business": "/business/", "staff": "/users/list/"}
NEW_PASSWORD = "кубанский вечер у моря"


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture(autouse=True)
def each_request_loads_its_user(monkeypatch):
    """The test's app context, and so its ``g``, outlives each request: Flask-Login's user of
    one browser's request would otherwise be the next one's, whatever its cookies."""
    open_ = FlaskClient.open

    def fresh_open(self, *args, **kwargs):
        g.pop("_login_user", None)
        return open_(self, *args, **kwargs)

    monkeypatch.setattr(FlaskClient, "open", fresh_open)


def api_login(client, username: str, branch: int | None = None, refresh: bool = False,
              agent: str = "okhttp/4.12.0"):
    body = {"username": username, "password": PASSWORD, "provider": "db", "refresh": refresh}
    if branch is not None:
        body["branch"] = branch
    answer = client.post(f"{API}/security/login", json=body, headers={"User-Agent": agent})
    assert answer.status_code == 200, answer.json
    return answer


@pytest.fixture
def people(make_user_fn, two_branches):
    """A resident, an organization's user (Krasnodar) and a staff member, by kind."""
    krd, _ = two_branches
    return {
        "resident": make_user_fn("anna", "Resident", kind="resident"),
        "business": make_user_fn("romashka", "Business", kind="business",
                                 organization_id=krd.ids["Organization"],
                                 branch_id=krd.branch_id),
        "staff": make_user_fn("clerk", "Admin"),
        "branch": krd.branch_id,
    }


def sign_in(client, people, kind: str, remember: bool = False, agent: str = PHONE_CHROME):
    user = people[kind]
    headers = {"User-Agent": agent}
    if kind == "resident":
        data = {"login": user.username, "password": PASSWORD}
        if remember:
            data["remember"] = "y"
        answer = client.post("/auth/", data=data, headers=headers)
    elif kind == "business":
        answer = client.post("/business/login", headers=headers, data={
            "login": user.username, "password": PASSWORD, "branch": people["branch"]})
    else:
        answer = client.post("/login/", data={"username": user.username,
                                              "password": PASSWORD}, headers=headers)
    assert answer.status_code == 302 and "login" not in answer.location, answer.location
    return user


def copy_of(app, client, *names: str):
    """Another browser holding copies of ``client``'s cookies."""
    thief = app.test_client()
    for name in names:
        cookie = client.get_cookie(name)
        assert cookie is not None, name
        thief.set_cookie(name, cookie.value, domain="localhost")
    return thief


def signed_in(client, kind: str) -> bool:
    answer = client.get(HOMES[kind])
    return answer.status_code == 200


def rows(session, user_id: int) -> list[UserSession]:
    session.expire_all()
    return list(session.execute(select(UserSession).where(UserSession.user_id == user_id)
                                .order_by(UserSession.id)).scalars())


# The copied cookie --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["resident", "business", "staff"])
def test_a_copied_session_cookie_opens_nothing_after_sign_out(app, client, people, kind):
    sign_in(client, people, kind)
    thief = copy_of(app, client, "session")
    assert signed_in(thief, kind), "the copy works while the sign-in lasts"
    signed_out = client.post(SIGN_OUTS[kind])
    assert signed_out.status_code == 302
    assert signed_out.headers["Clear-Site-Data"] == '"cache", "storage"'
    assert not signed_in(client, kind)
    assert not signed_in(thief, kind)


def test_a_copied_remember_cookie_opens_nothing_after_sign_out(app, client, people):
    sign_in(client, people, "resident", remember=True)
    thief = copy_of(app, client, "remember_token")
    assert signed_in(thief, "resident"), "the remember cookie alone signs in"
    client.post("/auth/logout")
    assert client.get_cookie("remember_token") is None
    assert not signed_in(copy_of(app, thief, "remember_token"), "resident")


def test_a_session_from_before_the_sign_in_rows_opens_nothing(client, people):
    user = people["resident"]
    with client.session_transaction() as cookie:
        cookie["_user_id"], cookie["_fresh"] = user.get_id(), True  # id and stamp alone
    assert not signed_in(client, "resident")


def test_a_forged_token_opens_nothing(client, people, session):
    user = sign_in(client, people, "resident")
    with client.session_transaction() as cookie:
        user_id, stamp, _token = cookie["_user_id"].split(".")
        cookie["_user_id"] = f"{user_id}.{stamp}.{sessions.new_token()}"
    assert not signed_in(client, "resident")
    assert len(rows(session, user.id)) == 1


def test_an_expired_sign_in_opens_nothing(client, people, session):
    user = sign_in(client, people, "resident")
    session.execute(update(UserSession).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    session.commit()
    assert not signed_in(client, "resident")
    assert sessions.active(session, user.id) == []


# Sign-out is a POST with the CSRF token ------------------------------------------------------


@pytest.mark.parametrize("kind", ["resident", "business", "staff"])
def test_a_get_of_a_sign_out_address_signs_no_one_out(client, people, kind):
    sign_in(client, people, kind)
    page = client.get(SIGN_OUTS[kind])
    assert page.status_code == 200
    assert "Clear-Site-Data" not in page.headers
    html = text(page)
    assert "Выход из личного кабинета" in html
    assert re.search(rf'<form method="post" action="{re.escape(SIGN_OUTS[kind])}" '
                     r'data-app-signout', html)
    assert '<button type="submit" class="btn btn-primary btn-block">Выйти</button>' in html
    assert signed_in(client, kind)


def test_a_get_of_a_sign_out_address_sends_a_visitor_to_sign_in(client):
    assert client.get("/auth/logout").location == "/auth/"
    assert client.get("/business/logout").location == "/business/login"


def test_sign_out_needs_the_csrf_token(make_app, people):
    client = make_app(WTF_CSRF_ENABLED=True).test_client()
    page = client.get("/auth/")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', text(page)).group(1)
    client.post("/auth/", data={"login": "anna", "password": PASSWORD, "csrf_token": token})
    cabinet = client.get("/cabinet/")
    assert cabinet.status_code == 200
    refused = client.post("/auth/logout")
    assert refused.status_code == 400 and "Clear-Site-Data" not in refused.headers
    assert client.get("/cabinet/").status_code == 200, "still signed in"
    form = re.search(r'<form class="site-signout" method="post" data-app-signout '
                     r'action="/auth/logout">\s*<input type="hidden" name="csrf_token" '
                     r'value="([^"]+)">', text(cabinet))
    assert form, "the header's «Выйти» is a form with the token"
    assert client.post("/auth/logout", data={"csrf_token": form.group(1)}).status_code == 302
    assert client.get("/cabinet/").status_code == 302


def test_the_back_offices_sign_out_is_a_form(client, people, login):
    login("clerk")
    html = text(client.get("/users/list/"))
    assert re.search(r'<form class="navbar-signout" method="post" action="/logout/">\s*'
                     r'<input type="hidden" name="csrf_token"', html)
    assert 'href="/logout/"' not in html


# The list of sign-ins ------------------------------------------------------------------------


def test_the_profile_lists_the_sign_ins_and_marks_this_one(app, client, people, session):
    user = sign_in(client, people, "resident", agent=PHONE_CHROME)
    sign_in(app.test_client(), people, "resident", agent=IPHONE_SAFARI)
    api_login(app.test_client(), "anna")
    html = text(client.get("/cabinet/profile/"))
    assert "Где выполнен вход" in html
    assert html.count('<td data-label="Устройство">') == 3
    devices = re.findall(r'<td data-label="Устройство"><span class="sign-in-device">(.*?)'
                         r'</span></td>', html)
    assert devices == ['Chrome на Android <span class="status status-info">Это устройство'
                       '</span>', "Мобильное приложение", "Safari на iPhone"], \
        "this device first, then the latest used"
    assert html.count(">Завершить</button>") == 2, "no «Завершить» for this device"
    assert "Выйти на всех устройствах" in html
    stamp = rows(session, user.id)[0].created_at
    assert re.search(r"\d\d\.\d\d\.\d{4} \d\d:\d\d", html), stamp  # Russian date and time


def test_a_single_sign_in_offers_no_sign_out_everywhere(client, people):
    sign_in(client, people, "resident")
    html = text(client.get("/cabinet/profile/"))
    assert "Это устройство" in html and "Выйти на всех устройствах" not in html


def test_ending_another_devices_sign_in(app, client, people, session):
    user = sign_in(client, people, "resident")
    other = app.test_client()
    sign_in(other, people, "resident", agent=IPHONE_SAFARI)
    theirs = rows(session, user.id)[1]
    ended = client.post(f"/cabinet/profile/sessions/{theirs.id}/end", follow_redirects=True)
    assert "Вход на устройстве «Safari на iPhone» завершён." in text(ended)
    assert not signed_in(other, "resident")
    assert signed_in(client, "resident")
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "session.ended", AuditEvent.actor_id == user.id)) == 1


def test_no_one_ends_another_persons_sign_in(app, client, people, session):
    sign_in(client, people, "resident")
    victim = app.test_client()
    business = sign_in(victim, people, "business")
    theirs = rows(session, business.id)[0]
    answer = client.post(f"/cabinet/profile/sessions/{theirs.id}/end", follow_redirects=True)
    assert "Этот вход уже завершён." in text(answer)
    assert signed_in(victim, "business")
    assert rows(session, business.id)[0].ended_at is None


def test_sign_out_everywhere_keeps_this_device(app, client, people, session):
    user = sign_in(client, people, "resident")
    others = [app.test_client() for _ in range(2)]
    for other in others:
        sign_in(other, people, "resident", agent=WINDOWS_YANDEX)
    app_tokens = api_login(app.test_client(), "anna", refresh=True).json
    answer = client.post("/cabinet/profile/sessions/end-others", follow_redirects=True)
    assert "Вы вышли на всех устройствах, кроме этого." in text(answer)
    assert signed_in(client, "resident")
    assert not any(signed_in(other, "resident") for other in others)
    refreshed = app.test_client().post(f"{API}/security/refresh",
                                       headers=bearer(app_tokens["refresh_token"]))
    assert refreshed.status_code == 401
    assert [row.ended_at is None for row in rows(session, user.id)] == [
        True, False, False, False]
    again = client.post("/cabinet/profile/sessions/end-others", follow_redirects=True)
    assert "Других входов нет" in text(again)


def test_an_organization_lists_and_ends_its_sign_ins(app, client, people, session):
    user = sign_in(client, people, "business")
    other = app.test_client()
    sign_in(other, people, "business", agent=WINDOWS_YANDEX)
    page = client.get("/business/sessions/")
    html = text(page)
    assert page.status_code == 200
    assert "Яндекс Браузер на Windows" in html and "Это устройство" in html
    assert 'href="/business/sessions/"' in html, "in the cabinet's menu"
    theirs = rows(session, user.id)[1]
    client.post(f"/business/sessions/{theirs.id}/end")
    assert not signed_in(other, "business")
    assert signed_in(client, "business")


def test_a_resident_cannot_open_an_organizations_list(client, people):
    sign_in(client, people, "resident")
    assert client.get("/business/sessions/").status_code in (302, 403)


# A new password, a withdrawn consent --------------------------------------------------------


def test_a_new_password_ends_the_other_sign_ins_and_keeps_this_one(app, client, people,
                                                                    session):
    user = sign_in(client, people, "resident", remember=True)
    other = app.test_client()
    sign_in(other, people, "resident", remember=True)
    changed = client.post("/cabinet/profile/password", data={
        "current": PASSWORD, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert changed.status_code == 302
    assert signed_in(client, "resident")
    assert signed_in(copy_of(app, client, "remember_token"), "resident"), \
        "this browser's remember cookie was issued again"
    assert not signed_in(other, "resident")
    mine, theirs = rows(session, user.id)
    assert mine.ended_at is None and theirs.ended_at is not None


def test_a_password_reset_by_staff_ends_every_sign_in(app, client, people, session, login):
    customer = people["business"]
    theirs = app.test_client()
    sign_in(theirs, people, "business")
    login("clerk")
    reset = client.post(f"/resetpassword/form?pk={customer.id}",
                        data={"password": NEW_PASSWORD, "conf_password": NEW_PASSWORD})
    assert reset.status_code == 302
    assert [row.ended_at is not None for row in rows(session, customer.id)] == [True]
    assert not signed_in(theirs, "business")


def test_a_withdrawn_consent_ends_every_sign_in(app, client, people, session):
    user = sign_in(client, people, "resident")
    app_tokens = api_login(app.test_client(), "anna").json
    answer = client.post("/cabinet/profile/withdraw", data={"confirm": "y"})
    assert answer.status_code == 302
    assert all(row.ended_at is not None for row in rows(session, user.id))
    assert app.test_client().get(f"{API}/account/", headers=bearer(
        app_tokens["access_token"])).status_code == 401


# The API ------------------------------------------------------------------------------------


def test_the_apps_sign_out_ends_its_tokens(app, client, people, session):
    user = people["business"]
    tokens = api_login(client, "romashka", people["branch"], refresh=True).json
    access, refresh = bearer(tokens["access_token"]), bearer(tokens["refresh_token"])
    assert client.get(f"{API}/account/", headers=access).status_code == 200
    renewed = client.post(f"{API}/security/refresh", headers=refresh)
    assert renewed.status_code == 200
    assert client.get(f"{API}/account/", headers=bearer(
        renewed.json["access_token"])).status_code == 200
    (row,) = rows(session, user.id)
    assert row.kind == "api" and row.device == "Мобильное приложение"
    assert tokens["refresh_token"] and row.token_hash not in str(tokens)

    out = client.post(f"{API}/security/logout", headers=access)
    assert out.status_code == 200 and out.json["message"].startswith("Вы вышли")
    for token in (access, bearer(renewed.json["access_token"])):
        refused = client.get(f"{API}/account/", headers=token)
        assert refused.status_code == 401 and refused.json["message"] == "Войдите заново."
    assert client.post(f"{API}/security/refresh", headers=refresh).status_code == 401
    assert client.post(f"{API}/security/logout", headers=access).status_code == 401


def test_the_apps_sign_out_is_in_the_spec(app, client, people, login):
    login("clerk")
    spec = client.get(f"{API}/_openapi").json
    operation = spec["paths"][f"{API}/security/logout"]["post"]
    assert operation["security"] == [{"jwt": []}]
    assert {"200", "401"} <= set(operation["responses"])


def test_a_token_without_a_sign_in_opens_nothing(app, client, people):
    from flask_jwt_extended import create_access_token

    from app.models import password_stamp
    from app.views.signing import STAMP_CLAIM

    user = people["business"]
    with app.test_request_context():
        forged = create_access_token(identity=str(user.id), additional_claims={
            STAMP_CLAIM: password_stamp(user.password), "sid": sessions.new_token()})
    assert client.get(f"{API}/account/", headers=bearer(forged)).status_code == 401


# The rows ------------------------------------------------------------------------------------


def test_a_row_keeps_only_the_tokens_hash(app, client, people, session):
    user = sign_in(client, people, "resident")
    with client.session_transaction() as cookie:
        token = cookie["_user_id"].rsplit(".", 1)[1]
    (row,) = rows(session, user.id)
    assert row.token_hash == sessions.token_hash(token) != token
    assert token not in repr(session.execute(select(UserSession.__table__)).all())
    assert row.device == "Chrome на Android" and row.ip == "127.0.0.1"
    assert row.kind == "web" and not row.remember


def test_use_is_noted_at_most_once_a_minute(client, people, session, monkeypatch):
    sign_in(client, people, "resident")
    writes = []
    monkeypatch.setattr(sessions, "touch",
                        lambda *args, **kwargs: writes.append(args[1]))
    for _ in range(3):
        assert signed_in(client, "resident")
    assert writes == []
    session.execute(update(UserSession).values(
        last_used_at=utcnow() - sessions.TOUCH_EVERY - dt.timedelta(seconds=1)))
    session.commit()
    assert signed_in(client, "resident")
    assert len(writes) == 1


def test_an_idle_sign_in_ends_and_use_keeps_it(app, client, people, session):
    user = sign_in(client, people, "resident")
    (row,) = rows(session, user.id)
    idle = app.config["PERMANENT_SESSION_LIFETIME"]
    assert abs(row.expires_at.replace(tzinfo=None) - (utcnow() + idle).replace(tzinfo=None)) \
        < dt.timedelta(minutes=1)
    hour_ago = utcnow() - dt.timedelta(hours=1)
    session.execute(update(UserSession).values(last_used_at=hour_ago,
                                               expires_at=utcnow() + dt.timedelta(minutes=5)))
    session.commit()
    assert signed_in(client, "resident")
    (row,) = rows(session, user.id)
    assert row.expires_at.replace(tzinfo=None) > (utcnow() + idle - dt.timedelta(
        minutes=1)).replace(tzinfo=None), "use moved the end"


def test_a_remembered_sign_in_lasts_its_term(app, client, people, session):
    user = sign_in(client, people, "resident", remember=True)
    (row,) = rows(session, user.id)
    term = app.config["REMEMBER_COOKIE_DURATION"]
    assert row.remember
    assert row.expires_at.replace(tzinfo=None) - row.created_at.replace(tzinfo=None) == term


@pytest.mark.parametrize(("agent", "kind", "label"), [
    (PHONE_CHROME, "web", "Chrome на Android"),
    (IPHONE_SAFARI, "web", "Safari на iPhone"),
    (WINDOWS_YANDEX, "web", "Яндекс Браузер на Windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.5 Safari/605.1.15", "web", "Safari на Mac"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "web",
     "Firefox на Linux"),
    ("okhttp/4.12.0", "api", "Мобильное приложение"),
    ("NESK/1.2 (Linux; Android 14; Pixel 8)", "api", "Мобильное приложение на Android"),
    ("", "web", "Неизвестное устройство"),
    (None, "api", "Мобильное приложение"),
    ("x" * 5000, "web", "Неизвестное устройство"),
])
def test_a_device_is_named_as_a_person_knows_it(agent, kind, label):
    assert devices.device_label(agent, app=kind == "api") == label


def test_pruning_deletes_ended_and_expired_sign_ins(app, client, people, session, runner):
    user = sign_in(client, people, "resident")
    ended = sessions.open_session(session, user.id, sessions.WEB, dt.timedelta(hours=1))
    sessions.end(session, user.id, ended.id, journal=False)
    expired = sessions.open_session(session, user.id, sessions.API, dt.timedelta(hours=1))
    session.execute(update(UserSession).where(UserSession.id == expired.id)
                    .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    session.commit()
    result = runner.invoke(args=["sessions", "prune"])
    assert result.exit_code == 0, result.output
    assert "Удалено завершённых входов: 2" in result.output
    assert len(rows(session, user.id)) == 1
    assert signed_in(client, "resident")


def test_celery_beat_prunes_daily(app, client, people, session):
    from app.tasks import prune_sessions

    user = sign_in(client, people, "resident")
    client.post("/auth/logout")
    assert prune_sessions.delay().get() == 1
    assert rows(session, user.id) == []
    schedule = app.extensions["celery"].conf.beat_schedule
    assert schedule["prune-sessions"]["task"] == "lk_portal.prune_sessions"


def test_this_devices_sign_in_ends_by_sign_out_not_from_the_list(client, people, session):
    user = sign_in(client, people, "resident")
    (mine,) = rows(session, user.id)
    answer = client.post(f"/cabinet/profile/sessions/{mine.id}/end", follow_redirects=True)
    assert "нажмите «Выйти»" in text(answer)
    assert signed_in(client, "resident")


# In a browser -------------------------------------------------------------------------------


def browser_sign_in(context, email: str):
    page = context.new_page()
    page.goto("/auth/")
    page.get_by_label("По электронной почте").check()
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.locator("main button[type=submit]").first.click()
    assert page.url.endswith("/cabinet/"), page.url
    return page


@pytest.mark.browser
def test_on_a_phone_the_list_fits_and_ends_another_devices_sign_in(browser, live_server,
                                                                    people, shots):
    from tests.test_browser_pages import problems_here

    size = {"width": 360, "height": 740}
    phone_context = browser.new_context(base_url=live_server, locale="ru-RU", viewport=size,
                                        user_agent=PHONE_CHROME)
    laptop_context = browser.new_context(base_url=live_server, locale="ru-RU",
                                         user_agent=WINDOWS_YANDEX)
    tablet_context = browser.new_context(base_url=live_server, locale="ru-RU",
                                         user_agent=IPHONE_SAFARI)
    try:
        phone = browser_sign_in(phone_context, "anna@example.test")
        laptop = browser_sign_in(laptop_context, "anna@example.test")
        tablet = browser_sign_in(tablet_context, "anna@example.test")
        phone.goto("/cabinet/profile/")
        shots(phone, "sessions-360-profile")
        assert problems_here(phone, "/cabinet/profile/", size) == []
        mine = phone.locator("table.sign-ins tr", has_text="Это устройство")
        assert "Chrome на Android" in mine.inner_text()

        with phone.expect_navigation():
            phone.get_by_role("button", name="Завершить вход на устройстве «Яндекс Браузер "
                                            "на Windows»").click()
        assert "Вход на устройстве «Яндекс Браузер на Windows» завершён." in \
            phone.inner_text("main")
        laptop.goto("/cabinet/")
        assert "/auth/?next=" in laptop.url, laptop.url

        phone.once("dialog", lambda dialog: dialog.accept())  # «Выйти … на всех … ?»
        with phone.expect_navigation():
            phone.get_by_role("button", name="Выйти на всех устройствах").click()
        assert "Вы вышли на всех устройствах, кроме этого." in phone.inner_text("main")
        tablet.goto("/cabinet/")
        assert "/auth/" in tablet.url

        with phone.expect_navigation(url=re.compile(r"/auth/$")):
            phone.get_by_role("button", name="Выйти", exact=True).click()
        phone.goto("/cabinet/profile/")
        assert "/auth/" in phone.url
    finally:
        for context in (phone_context, laptop_context, tablet_context):
            context.close()


@pytest.mark.browser
def test_the_back_offices_sign_out_button(browser_page, people):
    page = browser_page
    page.goto("/login/")
    page.fill("input[name=username]", "clerk")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.locator("input[type=submit], button[type=submit]").first.click()
    page.goto("/users/list/")
    page.get_by_role("link", name="Тест Clerk").click()  # the user menu
    with page.expect_navigation():
        page.get_by_role("button", name="Выйти").click()
    page.goto("/users/list/")
    assert "/login/" in page.url
