"""End to end in headless Chromium: a staff member signs in and works in the Russian back office."""
from __future__ import annotations

import re

import pytest

from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def menu_entry(label: str) -> re.Pattern:
    """A menu link's name: the label after the icon (a Font Awesome glyph and spaces)."""
    return re.compile(rf"^[^\w]*{re.escape(label)}\s*$")


def sign_in(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")


def test_staff_signs_in_and_sees_own_branch_accounts(browser_page, two_branches, make_user_fn,
                                                     tmp_path):
    krd, _nvr = two_branches
    make_user_fn("operator", "Staff", branch_id=krd.branch_id)
    page = browser_page

    sign_in(page, "operator")
    assert "/login" not in page.url

    menu = page.locator(".navbar")
    menu.get_by_role("link", name=menu_entry("Абоненты")).click()
    menu.get_by_role("link", name=menu_entry("Лицевые счета")).click()
    page.wait_for_url(re.compile(r"/personalaccountview/list/"))
    table = page.locator("body").inner_text()  # the list, its menu and heading
    assert "230000000001" in table, table
    assert "230000000002" not in table, "another branch's account is visible"
    assert "Иванов Краснодар" in table

    shot = tmp_path / "screenshots" / "staff-accounts.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == PNG_SIGNATURE
    assert shot.stat().st_size > 10_000


def test_wrong_password_stays_on_the_login_page(browser_page, make_user_fn):
    make_user_fn("operator", "Staff")
    sign_in(browser_page, "operator", "не тот пароль")
    assert "/login" in browser_page.url
    assert browser_page.locator("input[name=password]").is_visible()
    browser_page.goto("/personalaccountview/list/")
    assert "/login" in browser_page.url, "the list must not open without signing in"
