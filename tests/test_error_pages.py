"""Error pages in Russian on every entrance, with what to do next: an expired form (400), too
large a request (413), too many attempts (429, with Retry-After), a server error (500); under
/api/ the same as JSON."""
from __future__ import annotations

import html
import re

import pytest

from app.views.errors import wait_in_words
from tests.signins import session_user_id

ENGLISH = ("Bad Request", "CSRF token", "Request Entity Too Large", "Too Many Requests",
           "Internal Server Error", "per 1 minute")


def text_of(response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def assert_russian(response, *phrases: str) -> None:
    page = text_of(response)
    for phrase in phrases:
        assert phrase in page, (phrase, page[:2000])
    for word in ENGLISH:
        assert word not in page, (word, page[:2000])


@pytest.mark.parametrize("url, data", [
    ("/auth/", {"login": "9181234567", "password": "x"}),
    ("/business/login", {"login": "org", "password": "x", "branch": "1"}),
    ("/login/", {"username": "admin", "password": "x"}),
    ("/feedback/", {"message": "Текст"}),
])
def test_an_expired_form_says_so_and_leads_back_to_it(make_app, url, data):
    client = make_app(WTF_CSRF_ENABLED=True).test_client()
    came_from = f"http://localhost{url}"
    response = client.post(url, data=data, headers={"Referer": came_from})
    assert response.status_code == 400
    assert_russian(response, "Страница устарела", "Обновите её и повторите",
                   "Открыть форму заново")
    assert f'href="{came_from}?restore=1"' in response.get_data(as_text=True)


def test_an_expired_form_never_leads_to_another_site(make_app):
    client = make_app(WTF_CSRF_ENABLED=True).test_client()
    response = client.post("/auth/", data={}, headers={"Referer": "https://evil.example/"})
    assert response.status_code == 400
    assert "evil.example" not in response.get_data(as_text=True)
    assert 'href="/auth/?restore=1"' in response.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/feedback/", "/auth/", "/cabinet/bind", "/login/"])
def test_too_large_a_request_names_the_limit(make_app, url):
    client = make_app(MAX_CONTENT_LENGTH=2 * 2**20).test_client()
    response = client.post(url, data={"message": "я" * (2 * 2**20)})
    assert response.status_code == 413
    assert_russian(response, "Слишком большой запрос", "Не более 2 МБ")


def test_too_many_sign_ins_say_when_to_try_again(make_app):
    client = make_app(RATELIMIT_ENABLED=True, AUTH_RATE_LIMIT="2 per 1 minute").test_client()
    answers = [client.post("/login/", data={"username": "nobody", "password": "wrong"})
               for _ in range(3)]
    assert [a.status_code for a in answers] == [302, 302, 429]
    refused = answers[-1]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert_russian(refused, "Слишком много попыток", "Повторите через")
    assert re.search(r"Повторите через (\d+ секунд[уы]?|1 минуту)\.", text_of(refused))


@pytest.mark.parametrize("seconds, words", [
    (1, "1 секунду"), (2, "2 секунды"), (5, "5 секунд"), (21, "21 секунду"), (59, "59 секунд"),
    (60, "1 минуту"), (61, "2 минуты"), (300, "5 минут"), (1260, "21 минуту"),
    (660, "11 минут")])
def test_waits_read_as_russian_words(seconds, words):
    assert wait_in_words(seconds) == words


@pytest.fixture
def failing_app(make_app):
    """The portal as production runs it (errors become a 500 page, not a traceback), with a
    page and an API address that fail."""
    flask_app = make_app(PROPAGATE_EXCEPTIONS=False)

    def fail():
        raise RuntimeError("сбой для теста")

    flask_app.add_url_rule("/_failing", "failing_page", fail)
    flask_app.add_url_rule("/api/v1/_failing", "failing_api", fail)
    return flask_app


def test_a_server_error_is_a_russian_page_without_the_portal_around_it(failing_app):
    response = failing_app.test_client().get("/_failing")
    assert response.status_code == 500
    assert_russian(response, "Ошибка на сервере", "ваши данные не изменены", "На главную")
    body = response.get_data(as_text=True)
    assert '<html lang="ru">' in body and "сбой для теста" not in body


def test_api_errors_are_json_in_russian(failing_app, make_app):
    client = failing_app.test_client()
    failed = client.get("/api/v1/_failing")
    assert failed.status_code == 500
    assert failed.json == {"message": "Ошибка на сервере"}
    limited = make_app(MAX_CONTENT_LENGTH=2**20).test_client()
    large = limited.post("/api/v1/security/login", data="я" * 2**20,
                         content_type="application/json")
    assert large.status_code == 413
    assert large.json["message"].startswith("Слишком большой запрос. Не более 1 МБ")


@pytest.mark.parametrize("url", ["/feedback/", "/contacts/", "/api/v1/security/login"])
def test_a_refused_method_names_the_methods_the_address_takes(client, url):
    response = client.delete(url)
    assert response.status_code == 405
    said = response.json["message"] if response.is_json else response.get_data(as_text=True)
    assert "Метод не поддерживается" in said
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert "DELETE" not in allowed and allowed & {"GET", "POST"}


@pytest.mark.parametrize("url, phrase", [
    ("/cabinet/bind", "Не более 30 МБ"),
    ("/cabinet/applications/new", "вся заявка вместе с файлами — не более 30 МБ"),
])
def test_too_large_a_request_of_a_signed_in_resident_is_a_page_not_an_error(
        make_app, make_user_fn, url, phrase):
    """CSRF protection reads the form, and so finds the body too large, before the signed-in
    user is loaded for the page's menu."""
    user = make_user_fn("zhilec", "Resident", kind="resident")
    client = make_app(WTF_CSRF_ENABLED=True).test_client()
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = session_user_id(user)
        flask_session["_fresh"] = True
    response = client.post(url, data={"comment": "я" * (16 * 2**20)})
    assert response.status_code == 413
    assert_russian(response, phrase)
    assert "Выйти" in text_of(response), "the page knows who is signed in"


@pytest.mark.browser
def test_an_expired_form_gives_back_what_was_typed_but_the_password(browser_page, two_branches):
    """In Chromium: the feedback form and the sign-in form sent with an expired token come back,
    through «Открыть форму заново», with what the person typed — never the password."""
    page = browser_page
    page.goto("/feedback/")
    page.fill("#name", "Пётр Иванов")
    page.fill("#email", "petr@example.ru")
    page.fill("#message", "Не пришёл счёт за ноябрь.")
    page.check("input[name=consent]")
    page.evaluate("document.querySelector('input[name=csrf_token]').value = 'expired'")
    with page.expect_navigation():
        page.locator("main button[type=submit]").click()
    assert "Страница устарела" in page.inner_text("h1")
    with page.expect_navigation():
        page.get_by_role("link", name="Открыть форму заново").click()
    assert page.url.endswith("/feedback/"), "the return mark is taken off the address"
    assert page.input_value("#name") == "Пётр Иванов"
    assert page.input_value("#email") == "petr@example.ru"
    assert page.input_value("#message") == "Не пришёл счёт за ноябрь."
    assert page.is_checked("input[name=consent]")

    page.goto("/feedback/")
    assert page.input_value("#name") == "", "a plain visit starts empty: the copy is gone"

    page.goto("/auth/")
    page.fill("input[name=login]", "9181234567")
    page.fill("input[name=password]", "секрет-пароль")
    page.evaluate("document.querySelector('input[name=csrf_token]').value = 'expired'")
    with page.expect_navigation():
        page.locator("main button[type=submit]").click()
    stored = page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))")
    assert "9181234567" in stored and "секрет-пароль" not in stored
    with page.expect_navigation():
        page.get_by_role("link", name="Открыть форму заново").click()
    assert page.input_value("input[name=login]") == "9181234567"
    assert page.input_value("input[name=password]") == ""
