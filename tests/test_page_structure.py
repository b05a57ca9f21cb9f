"""Every page a person opens is marked up in Russian with its landmarks: `<html lang="ru">`
(screen readers read it with Russian rules), one `<main>`, a header without an invalid role;
and it names the portal's icon."""
from __future__ import annotations

import re

import pytest

PUBLIC = ["/", "/auth/", "/auth/register", "/auth/recover", "/business/login", "/feedback/",
          "/contacts/", "/readings/", "/login/", "/no-such-page"]
RESIDENT = ["/cabinet/", "/cabinet/bind", "/cabinet/profile/", "/cabinet/feedback/",
            "/cabinet/applications/new", "/cabinet/charges/list/", "/cabinet/invoices/list/",
            "/cabinet/payments/list/"]


def assert_landmarks(response, url: str) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code in (200, 404), (url, response.status_code)
    assert re.search(r"<html lang=\"ru\">", body), url
    assert len(re.findall(r"<main[\s>]", body)) == 1, url
    assert 'role="header"' not in body, url
    assert re.search(r'<link rel="icon" type="image/svg\+xml" href="/static/favicon[.\w]*\.svg">',
                     body), url


def test_the_icon_is_served(client):
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert b"<svg" in icon.data


@pytest.mark.parametrize("url", PUBLIC)
def test_public_pages(client, url):
    assert_landmarks(client.get(url), url)


def test_resident_pages(client, owner):
    _user, krd, _nvr = owner
    account = krd.ids["PersonalAccount"]
    for url in [*RESIDENT, f"/cabinet/readings/{account}", f"/cabinet/bills/{account}",
                f"/cabinet/pay/{account}", f"/cabinet/consumption/{account}"]:
        assert_landmarks(client.get(url), url)


def test_back_office_pages(client, login, make_user_fn):
    make_user_fn("operator", "Admin")
    assert login("operator").status_code == 302
    for url in ("/", "/personalaccountview/list/", "/feedbackview/list/"):
        assert_landmarks(client.get(url), url)
