"""The portal as an installable app (app/views/pwa.py, templates/pwa/, static/js/app.js): the
manifest, the service worker and /app/; the readings form answering the app's queue in JSON;
and, in Chromium, installability, the cabinet offline with its dated banner, bill PDFs offline,
readings queued offline and sent when the network returns, signing out forgetting it all, and
no user ever shown another user's saved page."""
from __future__ import annotations

import datetime as dt
import json
import re
import struct
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app import models as m
from app.views import navigation, pwa
from tests.factories import PASSWORD

IN_WINDOW = dt.date(2026, 11, 20)  # the world's last reading is October's: 1234 kWh
STAMP = r"Нет связи\. Данные на \d\d\.\d\d\.\d{4} \d\d:\d\d"
NBSP = "\u00a0"


@pytest.fixture
def today(monkeypatch):
    """Readings are taken on this day, whoever asks (the client or the live server)."""
    monkeypatch.setattr("app.views.readings.local_today", lambda: IN_WINDOW)
    return IN_WINDOW


@pytest.fixture
def household(session, two_branches):
    """The two branches (each with a household's account for residents to bind), and the
    binding service."""
    from app.services.binding import bind_accounts

    krd, nvr = two_branches
    return krd, nvr, bind_accounts


@pytest.fixture
def people(app, session, household, make_user_fn):
    """(resident, neighbour, organization user, krd, nvr): the resident holds Krasnodar's
    account, the neighbour a household account of their own."""
    krd, nvr, bind_accounts = household
    resident = make_user_fn("app-resident", "Resident", kind="resident", phone="+79185550031")
    neighbour = make_user_fn("app-neighbour", "Resident", kind="resident",
                             phone="+79185550032")
    business = make_user_fn("app-business", "Business", kind="business",
                            organization_id=nvr.ids["Organization"])
    bind_accounts(session, resident.id, [("230000000001", "SN-krd-1")], None)
    second = m.PersonalAccount(number="230000000077", holder_name="Соседов Сосед",
                               premises_id=session.get(m.PersonalAccount,
                                                       krd.ids["PersonalAccount"]).premises_id,
                               branch_id=krd.branch_id, tariff_group_id=krd.ids["TariffGroup"],
                               status="active", opened_on=dt.date(2024, 1, 1))
    session.add(second)
    session.flush()
    session.add(m.Meter(serial="SN-NEIGH-7", account_id=second.id, zones=1, digit_capacity=6))
    session.commit()
    bind_accounts(session, neighbour.id, [("230000000077", "SN-NEIGH-7")], None)
    session.commit()
    return resident, neighbour, business, krd, nvr


def sign_in(client, who: m.PortalUser, branch_id: int | None = None):
    if who.kind == "business":
        return client.post("/business/login", data={"login": who.username,
                                                    "password": PASSWORD, "branch": branch_id})
    return client.post("/auth/", data={"login": who.username, "password": PASSWORD})


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def manifest_link(html: str) -> str:
    found = re.findall(r'<link rel="manifest" href="([^"]+)">', html)
    assert len(found) == 1, found
    return found[0]


# The manifest and the icons


def test_the_manifest_is_valid_with_every_icon_a_platform_asks_for(client):
    url = manifest_link(client.get("/auth/").get_data(as_text=True))
    assert re.fullmatch(r"/manifest\.[0-9a-f]{12}\.webmanifest", url), url
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "application/manifest+json"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    manifest = json.loads(response.get_data(as_text=True))
    assert manifest["name"] == "НЭСК — личный кабинет" and manifest["short_name"] == "НЭСК"
    assert manifest["lang"] == "ru" and manifest["display"] == "standalone"
    assert manifest["scope"] == "/" and manifest["start_url"] == "/app/start"
    assert manifest["start_url"].startswith(manifest["scope"]) and manifest["id"]
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["theme_color"])
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["background_color"])
    pngs = set()
    for icon in manifest["icons"]:
        fetched = client.get(icon["src"])
        assert fetched.status_code == 200 and fetched.mimetype == icon["type"], icon
        if icon["type"] == "image/png":
            width, height = png_size(fetched.get_data())
            assert icon["sizes"] == f"{width}x{height}", icon
            pngs.add((width, icon.get("purpose", "any")))
        fetched.close()
    assert {(192, "any"), (512, "any"), (512, "maskable")} <= pngs
    assert client.get("/manifest.webmanifest").get_data(as_text=True) == \
        response.get_data(as_text=True)


def test_an_older_manifest_name_gets_todays_manifest_briefly(client):
    current = client.get(manifest_link(client.get("/auth/").get_data(as_text=True)))
    old = client.get("/manifest.000000000000.webmanifest")
    assert old.status_code == 200 and old.data == current.data
    assert old.headers["Cache-Control"] == "public, max-age=60"


def cabinet_urls(app, menu: str) -> list[str]:
    """Every page of a cabinet's menu, as the navigation builds it."""
    with app.test_request_context():
        return [i.url for i in navigation.items(menu)]


def test_every_cabinet_page_names_the_manifest_the_app_and_its_user(app, client, people):
    resident, neighbour, business, _krd, nvr = people
    for who, menu, branch in ((resident, "resident", None), (business, "business",
                                                              nvr.branch_id)):
        sign_in(client, who, branch)
        urls = cabinet_urls(app, menu)
        assert len(urls) >= 4, urls
        for url in urls:
            response = client.get(url)
            html = response.get_data(as_text=True)
            assert response.status_code == 200, url
            assert manifest_link(html).startswith("/manifest."), url
            assert '<meta name="theme-color" content="#1d4f91">' in html, url
            assert '<meta name="apple-mobile-web-app-capable" content="yes">' in html, url
            assert re.search(r'<script src="/static/js/app\.[0-9a-f]{12}\.js" nonce="[^"]+" '
                             r'defer\s+data-worker="/sw\.js"', html), url
            assert 'href="/app/">Приложение для телефона</a>' in html, url
            key = re.search(r'<meta name="app-user" content="([0-9a-f]{24})">', html).group(1)
            assert response.headers[pwa.USER_HEADER] == key, url
        client.post("/logout/")
    with app.test_request_context():
        keys = {pwa.user_key(u.id) for u in (resident, neighbour, business)}
    assert len(keys) == 3


def test_a_visitor_and_the_api_get_no_user_key(client, people):
    page = client.get("/auth/")
    assert pwa.USER_HEADER not in page.headers
    assert 'name="app-user"' not in page.get_data(as_text=True)
    resident = people[0]
    sign_in(client, resident)
    assert client.post("/cabinet/bind", data={}).headers.get(pwa.USER_HEADER) is None


# The service worker


def worker(client) -> tuple[str, str]:
    response = client.get("/sw.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    body = response.get_data(as_text=True)
    return re.search(r'const VERSION = "([0-9a-f]{12})";', body).group(1), body


def test_the_worker_is_served_at_the_root_unstored_and_versioned(client):
    version, body = worker(client)
    for name in ("STATIC_CACHE", "PAGES"):
        assert re.search(rf"const {name} = `\$\{{PREFIX\}}\$\{{VERSION\}}-", body), name
    for event in ("install", "activate", "fetch", "message", "push", "notificationclick"):
        assert f'self.addEventListener("{event}"' in body, event
    assert 'if (request.method !== "GET")' in body  # a POST is never answered from a cache
    assert worker(client)[0] == version  # the same build, the same worker


def test_a_request_in_flight_during_sign_in_leaves_the_session_cookie_alone(make_app):
    """The page registers the worker while its visitor types a password: the /sw.js answer
    arrives after the sign-in's, so a cookie on it would sign the person out again."""
    client = make_app(WTF_CSRF_ENABLED=True).test_client()
    assert client.get("/auth/").headers.getlist("Set-Cookie")  # the visitor's CSRF session
    for url in ("/sw.js", "/manifest.webmanifest", "/app/offline", "/auth/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert not response.headers.getlist("Set-Cookie"), url


def test_a_changed_static_file_makes_a_new_worker(app, client, monkeypatch):
    version, body = worker(client)
    folder = app.extensions["assets"]["static"]
    css = folder.names["css/portal.css"]
    assert f"/static/{css}" in body
    monkeypatch.setitem(folder.names, "css/portal.css", "css/portal.0123456789ab.css")
    changed, body = worker(client)
    assert changed != version and "/static/css/portal.0123456789ab.css" in body
    monkeypatch.setitem(folder.names, "css/portal.css", css)
    monkeypatch.setitem(folder.names, "img/new.png", "img/new.abcdefabcdef.png")
    assert worker(client)[0] not in (version, changed)  # any file of the build counts


def test_the_policy_admits_the_worker_and_the_manifest(client):
    policy = client.get("/app/").headers["Content-Security-Policy"]
    assert "worker-src 'self'" in policy and "manifest-src 'self'" in policy


# /app/, /app/start and the QR code


def test_the_app_page_explains_installing_in_russian(client):
    html = client.get("/app/").get_data(as_text=True)
    assert "<h1>Приложение «НЭСК — личный кабинет»</h1>" in html
    for words in ("На Android", "Установить приложение", "На iPhone и iPad", "Safari",
                  "Поделиться", "На экран „Домой“", "без связи"):
        assert words in html, words
    assert re.search(r'<button type="button" class="btn btn-primary" data-app-install hidden>'
                     r"Установить приложение</button>", html)
    assert 'href="/auth/">Кабинет жителя</a>' in html
    assert 'href="/business/login">Кабинет юридического лица или ИП</a>' in html


def test_the_installed_app_opens_the_right_cabinet(client, people):
    resident, _neighbour, business, _krd, nvr = people
    assert client.get("/app/start").location == "/auth/"
    sign_in(client, business, nvr.branch_id)
    started = client.get("/app/start")
    assert started.location == "/business/"
    assert f"{pwa.AUDIENCE_COOKIE}=business" in started.headers["Set-Cookie"]
    client.post("/business/logout")
    assert client.get("/app/start").location == "/business/login"  # the organization's app
    sign_in(client, resident)
    assert client.get("/app/start").location == "/cabinet/"


def test_staff_open_the_back_office(client, make_user_fn, login):
    make_user_fn("app-staff", "Staff")
    login("app-staff")
    assert client.get("/app/start").location == "/"


def test_the_qr_code_on_the_business_sign_in_leads_to_app(app, client):
    url = app.config["MOBILE_APP_URL"]
    assert url == app.config["PORTAL_URL"].rstrip("/") + "/app/"
    assert url.startswith(("http://", "https://"))
    endpoint, _args = app.url_map.bind("localhost").match(urlsplit(url).path)
    assert endpoint == "PwaView.index"
    assert f'href="{url}"' in client.get("/business/login").get_data(as_text=True)


def test_every_sign_out_clears_the_sites_data(app, client, people):
    sign_outs = sorted(r.rule for r in app.url_map.iter_rules() if r.endpoint.endswith(".logout"))
    assert {"/auth/logout", "/business/logout", "/logout/"} <= set(sign_outs)
    for url in sign_outs:
        sign_in(client, people[0])
        assert "Clear-Site-Data" not in client.get(url).headers, "a GET signs no one out"
        response = client.post(url)
        assert response.status_code == 302, url
        assert response.headers["Clear-Site-Data"] == '"cache", "storage"', url
    assert "Clear-Site-Data" not in client.get("/auth/").headers


def test_the_sign_out_link_is_the_audiences_own_and_clears_the_app(client, people):
    resident, _neighbour, business, _krd, nvr = people
    sign_in(client, resident)
    assert '<form class="site-signout" method="post" data-app-signout action="/auth/logout">' \
        in client.get("/cabinet/").get_data(as_text=True)
    client.post("/auth/logout")
    sign_in(client, business, nvr.branch_id)
    assert ('<form class="site-signout" method="post" data-app-signout '
            'action="/business/logout">') in client.get("/business/").get_data(as_text=True)


# Readings sent by the app's queue: the form's own check, in JSON


def queued(client, account_id: int, meter_id: int, value: str, **extra):
    return client.post(f"/cabinet/readings/{account_id}",
                       data={f"m{meter_id}_t1": value, "action": "confirm", **extra},
                       headers={"Accept": "application/json"})


def reading_of(session, meter_id: int) -> m.Reading | None:
    session.expire_all()
    return session.scalar(select(m.Reading).where(m.Reading.meter_id == meter_id,
                                                  m.Reading.period == dt.date(2026, 11, 1)))


def test_a_queued_reading_is_checked_and_saved_like_a_typed_one(client, session, people,
                                                                today):
    resident, *_rest, krd, _nvr = people
    sign_in(client, resident)
    account, meter = krd.ids["PersonalAccount"], krd.ids["Meter"]
    answer = queued(client, account, meter, "1300")
    assert answer.status_code == 200 and answer.json["status"] == "accepted"
    assert answer.json["message"] == "Показания приняты."
    assert answer.json["details"] == [f"Счётчик № SN-krd-1: расход 66{NBSP}кВт·ч, "
                                      f"ориентировочно 485,10{NBSP}₽"]
    saved = reading_of(session, meter)
    assert saved.t1 == Decimal("1300") and saved.status == "accepted"
    assert saved.submitted_by_id == resident.id


@pytest.mark.parametrize(("value", "reason"), [
    ("1000000000", "в показании не может быть больше 9 цифр"),
    ("1000", "показание меньше предыдущего (1234). Проверьте цифры."),
    ("двенадцать", "показание должно быть числом"),
    ("", "введите показание"),
])
def test_a_refused_queued_reading_says_why_and_saves_nothing(client, session, people, today,
                                                            value, reason):
    resident, *_rest, krd, _nvr = people
    sign_in(client, resident)
    answer = queued(client, krd.ids["PersonalAccount"], krd.ids["Meter"], value)
    assert answer.status_code == 422 and answer.json["status"] == "refused"
    assert reason in answer.json["message"]
    assert reading_of(session, krd.ids["Meter"]) is None


def test_an_implausible_reading_asks_the_person_then_is_held(client, session, people, today):
    resident, *_rest, krd, _nvr = people
    sign_in(client, resident)
    account, meter = krd.ids["PersonalAccount"], krd.ids["Meter"]
    asked = queued(client, account, meter, "30000")
    assert asked.status_code == 409 and asked.json["status"] == "confirm"
    assert asked.json["message"].startswith("Показания выглядят неправдоподобно.")
    assert asked.json["message"].endswith(
        f"Расход 28{NBSP}766{NBSP}кВт·ч больше возможного при мощности 15 кВт за 51 день: "
        f"не более 18{NBSP}360{NBSP}кВт·ч.")
    assert reading_of(session, meter) is None
    confirmed = queued(client, account, meter, "30000", confirmed="1")
    assert confirmed.json == {
        "status": "accepted", "held": True,
        "message": "Показания сохранены со статусом «На проверке»: в счёт они попадут после "
                   "проверки специалистом.",
        # no estimate: the world has no tariff past the first consumption range
        "details": [f"Счётчик № SN-krd-1: расход 28{NBSP}766{NBSP}кВт·ч"]}
    assert reading_of(session, meter).status == "flagged"


def test_outside_the_window_a_queued_reading_is_refused(app, client, session, people):
    resident, *_rest, krd, _nvr = people
    app.config.update(READING_WINDOW_FIRST_DAY=1, READING_WINDOW_LAST_DAY=1)
    sign_in(client, resident)
    answer = queued(client, krd.ids["PersonalAccount"], krd.ids["Meter"], "1300")
    assert answer.json["status"] == "refused"
    assert answer.json["message"].startswith("Показания принимаются с 1 по 1 число месяца.")


def test_no_one_queues_into_another_persons_account(client, session, people, today):
    resident, neighbour, *_rest, krd, _nvr = people
    sign_in(client, neighbour)
    assert queued(client, krd.ids["PersonalAccount"], krd.ids["Meter"], "1300"
                  ).status_code == 404
    client.post("/auth/logout")
    anonymous = queued(client, krd.ids["PersonalAccount"], krd.ids["Meter"], "1300")
    assert anonymous.status_code == 302 and anonymous.location.startswith("/auth/")
    assert reading_of(session, krd.ids["Meter"]) is None


def test_an_organizations_queue_goes_through_the_same_check(client, session, people, today):
    *_rest, business, _krd, nvr = people
    sign_in(client, business, nvr.branch_id)
    account, meter = nvr.ids["OrganizationAccount"], nvr.ids["OrganizationMeter"]
    sent = client.post(f"/business/readings/{account}", data={f"m{meter}_t1": "5800"},
                       headers={"Accept": "application/json"})
    assert sent.json["status"] == "accepted" and reading_of(session, meter).t1 == 5800
    refused = client.post(f"/business/readings/{account}", data={f"m{meter}_t1": "-5"},
                          headers={"Accept": "application/json"})
    assert refused.json == {"status": "refused",
                            "message": "Показание: показание не может быть отрицательным."}


def test_the_form_offers_the_queue_only_to_a_signed_in_user(client, people, today):
    resident, *_rest, krd, _nvr = people
    sign_in(client, resident)
    html = client.get(f"/cabinet/readings/{krd.ids['PersonalAccount']}").get_data(as_text=True)
    assert (f'data-app-queue="/cabinet/readings/{krd.ids["PersonalAccount"]}" '
            'data-queue-title="лицевой счёт 230000000001"') in html
    assert 'data-queue-label="Счётчик № SN-krd-1, Показание"' in html
    client.post("/auth/logout")
    client.post("/readings/", data={"account": "230000000001", "serial": "SN-krd-1"})
    assert "data-app-queue" not in client.get("/readings/meter").get_data(as_text=True)


def test_the_token_for_the_queue_is_fresh_and_never_stored(client):
    response = client.get("/app/token")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json["csrf_token"]


# In Chromium


@pytest.fixture
def live_overrides():
    """Readings are taken every day of the month here."""
    return {"READING_WINDOW_FIRST_DAY": 1, "READING_WINDOW_LAST_DAY": 31}


@pytest.fixture
def context(browser, live_server):
    """A browser context of its own (no cookies, no worker yet), downloads allowed."""
    made = browser.new_context(base_url=live_server, locale="ru-RU", accept_downloads=True,
                               viewport={"width": 390, "height": 844})
    made.set_default_timeout(45_000)
    try:
        yield made
    finally:
        made.close()


CACHED = """async (path) => {
  for (const name of await caches.keys()) {
    const hit = await (await caches.open(name)).match(path);
    if (hit) { return name; }
  }
  return null;
}"""
CACHE_CONTENTS = """async () => {
  const found = {};
  for (const name of await caches.keys()) {
    found[name] = (await (await caches.open(name)).keys()).map(r => new URL(r.url).pathname);
  }
  return found;
}"""


def wait_until(page, script: str, arg=None, seconds: float = 30):
    """Evaluate ``script`` until it gives something true (page.wait_for_function would
    evaluate a string, which the portal's Content-Security-Policy forbids)."""
    deadline = time.monotonic() + seconds
    while True:
        found = page.evaluate(script, arg)
        if found or time.monotonic() > deadline:
            assert found, f"still false after {seconds} s: {script}; {page.evaluate(WORKER)}"
            return found
        page.wait_for_timeout(100)


CONTROLLED = "navigator.serviceWorker.controller !== null"
WORKER = """async () => {
  const r = await navigator.serviceWorker.getRegistration();
  return r ? {installing: !!r.installing, waiting: !!r.waiting, active: r.active && r.active.state,
              url: location.href} : 'no worker at ' + location.href;
}"""


def browser_sign_in(page, who: m.PortalUser) -> None:
    page.goto("/auth/")
    page.fill("input[name=login]", who.phone[2:])
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.locator("main button[type=submit]").first.click()
    assert page.url.endswith("/cabinet/")
    wait_until(page, CONTROLLED)


def visit_and_keep(page, path: str) -> None:
    """Open a page while online and wait until the worker has kept its copy."""
    page.goto(path)
    wait_until(page, CACHED, path)


@pytest.mark.browser
def test_installable_on_localhost(context):
    page = context.new_page()
    page.goto("/app/")
    assert page.evaluate("window.isSecureContext")  # 127.0.0.1 counts as secure
    wait_until(page, CONTROLLED)
    registration = page.evaluate("""async () => {
      const r = await navigator.serviceWorker.getRegistration();
      return {scope: r.scope, script: r.active.scriptURL};
    }""")
    assert registration["scope"].endswith("/") and registration["script"].endswith("/sw.js")
    reloaded = page.reload()
    assert reloaded.from_service_worker  # the worker's fetch handler answers the page
    cdp = context.new_cdp_session(page)
    manifest = cdp.send("Page.getAppManifest")
    assert manifest["errors"] == [] and manifest["url"].endswith(".webmanifest")
    parsed = json.loads(manifest["data"])
    assert parsed["display"] == "standalone" and parsed["start_url"] == "/app/start"
    errors = [e["errorId"] for e in cdp.send("Page.getInstallabilityErrors")
              ["installabilityErrors"]]
    assert set(errors) <= {"in-incognito"}, errors  # a test context is an incognito one
    sizes = page.evaluate("""async () => {
      const link = document.querySelector('link[rel=manifest]').href;
      const manifest = await (await fetch(link)).json();
      const sizes = [];
      for (const icon of manifest.icons.filter(i => i.type === 'image/png')) {
        const image = new Image();
        image.src = icon.src;
        await image.decode();
        sizes.push([icon.sizes, image.naturalWidth + 'x' + image.naturalHeight]);
      }
      return sizes;
    }""")
    assert {declared for declared, _real in sizes} == {"192x192", "512x512"}
    assert all(declared == real for declared, real in sizes), sizes


@pytest.mark.browser
def test_the_cabinet_and_an_opened_bill_offline_then_sign_out_forgets(context, people,
                                                                       tmp_path):
    resident, *_rest, krd, _nvr = people
    page = context.new_page()
    browser_sign_in(page, resident)
    wait_until(page, CACHED, "/cabinet/")  # the first page, kept once controlled
    visit_and_keep(page, "/cabinet/invoices/list/")
    pdf = f"/cabinet/bills/invoice/{krd.ids['Invoice']}.pdf"
    with page.expect_download() as online:
        page.locator(f'a[href="{pdf}"]').first.click()
    assert Path(online.value.path()).read_bytes().startswith(b"%PDF")
    wait_until(page, CACHED, pdf)

    context.set_offline(True)
    page.goto("/cabinet/")
    banner = page.locator(".app-offline")
    assert re.fullmatch(STAMP, banner.inner_text().strip())
    assert "230000000001" in page.inner_text("main")
    page.goto("/cabinet/invoices/list/")
    assert re.fullmatch(STAMP, page.locator(".app-offline").inner_text().strip())
    assert "735,00" in page.inner_text("main")
    page.goto(f"/cabinet/bills/{krd.ids['PersonalAccount']}")  # never opened: no copy
    assert page.locator("h1").inner_text() == "Нет связи"
    with page.expect_download() as offline:
        page.evaluate("(href) => { const a = document.createElement('a'); a.href = href; "
                      "document.body.appendChild(a); a.click(); }", pdf)
    assert Path(offline.value.path()).read_bytes().startswith(b"%PDF")

    context.set_offline(False)
    page.goto("/cabinet/")
    assert page.locator(".app-offline").count() == 0
    page.evaluate("localStorage.setItem('nesk-app:readings:x', '[]')")
    # The page's script alone: this browser is made to ignore the answer's Clear-Site-Data.
    page.route("**/auth/logout", without_clear_site_data)
    with page.expect_navigation(url=re.compile(r"/auth/$")):
        page.get_by_role("button", name="Выйти").click()
    assert_forgotten(page)


def without_clear_site_data(route) -> None:
    answer = route.fetch(max_redirects=0)
    assert answer.headers["clear-site-data"] == '"cache", "storage"'
    route.fulfill(response=answer, headers={name: value for name, value in answer.headers.items()
                                            if name != "clear-site-data"})


def assert_forgotten(page) -> None:
    """Nothing of a user is left in the browser: no saved page or PDF, no queue, no storage."""
    kept = page.evaluate(CACHE_CONTENTS)
    assert not [name for name in kept if "-pages-" in name], kept
    assert not [path for paths in kept.values() for path in paths
                if path.startswith(("/cabinet/", "/business/"))], kept
    assert page.evaluate("localStorage.length") == 0


@pytest.mark.browser
def test_readings_typed_offline_wait_and_go_when_the_network_returns(context, session,
                                                                      people, today):
    resident, *_rest, krd, _nvr = people
    account, meter = krd.ids["PersonalAccount"], krd.ids["Meter"]
    page = context.new_page()
    browser_sign_in(page, resident)
    visit_and_keep(page, f"/cabinet/readings/{account}")
    context.set_offline(True)
    page.reload()
    assert re.fullmatch(STAMP, page.locator(".app-offline").inner_text().strip())
    hint = page.locator(".app-queue-hint")
    assert hint.is_visible()

    def queue(value: str) -> None:
        page.fill(f"#m{meter}_t1", value)
        page.get_by_role("button", name="Проверить и рассчитать").click()

    queue("1300")
    waiting = page.locator("#app-queue .alert-info")
    assert waiting.inner_text().startswith(
        "Показания ждут отправки: лицевой счёт 230000000001. Счётчик № SN-krd-1, "
        "Показание — 1300.")
    stored = page.evaluate("Object.keys(localStorage)")
    assert len(stored) == 1 and stored[0].startswith("nesk-app:readings:")
    assert reading_of(session, meter) is None

    context.set_offline(False)
    accepted = page.locator("#app-queue .alert-success")
    accepted.wait_for()
    assert accepted.inner_text().startswith("Показания приняты. лицевой счёт 230000000001.")
    assert reading_of(session, meter).t1 == Decimal("1300")
    assert page.locator("#app-queue .alert-info").count() == 0

    context.set_offline(True)
    queue("1000000000")
    context.set_offline(False)
    refused = page.locator("#app-queue .alert-danger")
    refused.wait_for()
    assert "в показании не может быть больше 9 цифр" in refused.inner_text()

    context.set_offline(True)
    queue("30000")  # replaces the refused one of the same account
    context.set_offline(False)
    ask = page.locator("#app-queue .alert-warning")
    ask.wait_for()
    assert "Показания выглядят неправдоподобно." in ask.inner_text()
    assert reading_of(session, meter).t1 == Decimal("1300")
    page.get_by_role("button", name="Подтверждаю: показания сняты верно").click()
    page.get_by_text("Показания сохранены со статусом «На проверке»").wait_for()
    assert reading_of(session, meter).status == "flagged"

    page.goto("/cabinet/readings-history/list/")
    assert f"30{NBSP}000{NBSP}кВт·ч" in page.inner_text("main")

    visit_and_keep(page, f"/cabinet/readings/{account}")
    context.set_offline(True)
    page.reload()
    queue("31000")
    context.set_offline(False)
    page.locator("#app-queue .alert-warning").wait_for()  # kept, waiting for the person
    assert len(page.evaluate("Object.keys(localStorage)")) == 1
    assert wait_until(page, CACHED, "/cabinet/readings-history/list/")
    # The answer's Clear-Site-Data alone: the form sent by form.submit(), which fires no submit
    # event, so the page's script does nothing.
    page.goto("/auth/logout")
    with page.expect_navigation(url=re.compile(r"/auth/$")):
        page.evaluate("document.querySelector('main form[data-app-signout]').submit()")
    assert_forgotten(page)


@pytest.mark.browser
def test_a_second_user_never_sees_the_first_users_saved_pages(context, people):
    resident, neighbour, *_rest = people
    page = context.new_page()
    browser_sign_in(page, resident)
    wait_until(page, CACHED, "/cabinet/")
    visit_and_keep(page, "/cabinet/invoices/list/")
    context.clear_cookies()  # the session ends without «Выйти»: the copies stay for now
    browser_sign_in(page, neighbour)
    wait_until(page, CACHED, "/cabinet/")
    kept = page.evaluate(CACHE_CONTENTS)
    pages = [name for name in kept if "-pages-" in name]
    assert len(pages) == 1 and "/cabinet/invoices/list/" not in kept[pages[0]], kept

    context.set_offline(True)
    page.goto("/cabinet/")
    main = page.inner_text("main")
    assert "230000000077" in main and "230000000001" not in main
    page.goto("/cabinet/invoices/list/")
    assert page.locator("h1").inner_text() == "Нет связи"
    assert "230000000001" not in page.content()


@pytest.mark.browser
@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_the_app_pages_fit_and_pass_axe(browser, live_server, size):
    from tests.test_browser_pages import SIZES, check_pages, new_page

    context, page = new_page(browser, live_server, SIZES[size])
    try:
        assert check_pages(page, ["/app/", "/app/offline"], SIZES[size]) == []
    finally:
        context.close()
