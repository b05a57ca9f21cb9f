"""The front door end to end in headless Chromium: a resident registers by e-mail with a code
read from a real SMTP server, signs out, signs in with «Запомнить меня», recovers the password;
staff issue an organization's credentials and the organization signs in with its branch.

Screenshots of every page go to $SCREENSHOT_DIR (or the test's tmp dir) for a human to look at.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.factories import PASSWORD
from tests.signins import browser_sign_out

pytestmark = pytest.mark.browser

EMAIL = "ivan.petrov@example.ru"
FIRST_PASSWORD = "кубанский-закат-над-морем"
SECOND_PASSWORD = "сочинский-рассвет-в-горах"
CODE = re.compile(r"\b(\d{6})\b")


@pytest.fixture
def live_overrides(smtp_server):
    controller, _inbox = smtp_server
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": controller.port,
            "MAIL_DEFAULT_SENDER": "noreply@nesk.example"}


def last_code(inbox, to: str) -> str:
    """The code in the newest message the SMTP server received for ``to``."""
    recipients, message = [m for m in inbox.messages if to in m[0]][-1]
    return CODE.search(message.get_body(preferencelist=("plain",)).get_content())[1]


def submit(page, selector: str = "button[type=submit]") -> None:
    with page.expect_navigation():
        page.locator(selector).first.click()


def test_resident_registers_signs_in_remembered_and_recovers(browser, browser_page, live_server,
                                                            smtp_server, shots):
    _controller, inbox = smtp_server
    page = browser_page

    page.goto("/auth/register")
    page.get_by_label("По электронной почте").check()
    page.fill("input[name=contact]", EMAIL)
    shots(page, "01-register")
    submit(page)
    assert "Шаг 2 из 2" in page.content()
    page.fill("input[name=code]", last_code(inbox, EMAIL))
    page.fill("input[name=password]", FIRST_PASSWORD)
    page.fill("input[name=password_again]", FIRST_PASSWORD)
    page.locator("button[data-toggle-password=password]").click()
    assert page.locator("input[name=password]").get_attribute("type") == "text"
    page.check("input[name=consent]")
    shots(page, "02-register-confirm")
    submit(page)
    assert page.url.endswith("/cabinet/"), page.url
    shots(page, "03-cabinet-after-registration")

    browser_sign_out(page)
    page.goto("/auth/")
    page.get_by_label("По электронной почте").check()
    page.fill("input[name=login]", EMAIL)
    page.fill("input[name=password]", FIRST_PASSWORD)
    page.check("input[name=remember]")
    shots(page, "04-signin")
    submit(page)
    assert page.url.endswith("/cabinet/")
    cookies = {c["name"]: c for c in page.context.cookies()}
    remember = cookies["remember_token"]
    assert remember["httpOnly"] and remember["sameSite"] == "Lax" and remember["expires"] > 0

    restarted = browser.new_context(base_url=live_server, locale="ru-RU")
    restarted.add_cookies([c for c in page.context.cookies() if c["expires"] > 0])
    again = restarted.new_page()
    again.goto("/cabinet/")
    assert again.url.endswith("/cabinet/"), "the remembered sign-in did not survive a restart"
    restarted.close()

    browser_sign_out(page)
    page.goto("/auth/")
    page.get_by_role("link", name="Забыли пароль?").click()
    page.get_by_label("По электронной почте").check()
    page.fill("input[name=contact]", EMAIL)
    shots(page, "05-recover")
    submit(page)
    page.fill("input[name=code]", last_code(inbox, EMAIL))
    submit(page)
    assert page.url.endswith("/auth/password")
    page.goto("/cabinet/")
    assert page.url.endswith("/auth/password"), "no page may open before the new password"
    page.fill("input[name=password]", SECOND_PASSWORD)
    page.fill("input[name=password_again]", SECOND_PASSWORD)
    shots(page, "06-new-password")
    submit(page)
    assert page.url.endswith("/cabinet/")

    browser_sign_out(page)
    page.goto("/auth/")
    page.get_by_label("По электронной почте").check()
    page.fill("input[name=login]", EMAIL)
    page.fill("input[name=password]", FIRST_PASSWORD)
    submit(page)
    assert "/auth/" in page.url and "Неверный" in page.content()
    shots(page, "07-signin-refused")


def test_staff_issue_credentials_and_the_organization_signs_in(browser_page, two_branches,
                                                               make_user_fn, shots):
    krd, nvr = two_branches
    make_user_fn("operator", "Staff", branch_id=krd.branch_id)
    page = browser_page

    page.goto("/login/")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", PASSWORD)
    submit(page, "input[type=submit], button[type=submit]")
    page.goto(f"/organizationview/show/{krd.ids['Organization']}")
    shots(page, "10-organization-card")
    page.get_by_role("link", name=re.compile("Выдать логин и пароль")).click()
    page.fill("input[name=full_name]", "Сидоров Пётр Иванович")
    submit(page)
    credentials = page.locator("code.credential").all_inner_texts()
    login, password = credentials
    letter = page.get_by_role("link", name=re.compile("Скачать сопроводительное письмо"))
    with page.expect_download() as download:
        letter.click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")
    shots(page, "11-credentials-issued")
    browser_sign_out(page, "/logout/")

    page.goto("/business/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", password)
    page.select_option("select[name=branch]", label="Новороссийскэнергосбыт")
    submit(page)
    assert "Неверный логин, пароль или филиал." in page.content()
    shots(page, "12-business-wrong-branch")
    page.fill("input[name=password]", password)
    page.select_option("select[name=branch]", label="Краснодарэнергосбыт")
    submit(page)
    assert page.url.endswith("/auth/password")
    page.fill("input[name=password]", SECOND_PASSWORD)
    page.fill("input[name=password_again]", SECOND_PASSWORD)
    submit(page)
    assert page.url.endswith("/business/")
    assert "Д-krd-1" in page.content() and "Д-nvr-1" not in page.content()
    shots(page, "13-business-home")
