"""Production settings: the start-up check refuses what cannot serve several processes (a
missing or default SECRET_KEY, SQLite without DEMO, ...), and every response carries the
security headers, with a Content-Security-Policy that runs no inline script without the
request's nonce: checked on the rendered pages, in every template, and in Chromium."""
from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import select

from app import create_app
from app import models as m
from app.production import ProductionConfigError, problems
from app.services import vapid
from app.services.binding import bind_accounts
from tests.factories import PASSWORD
from tests.signins import browser_sign_out

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY, OTHER_KEY = secrets.token_hex(32), secrets.token_hex(32)
#: Never connected to: the check reads the settings, it does not open connections.
POSTGRES = "postgresql+psycopg://portal@db.internal/portal"
REDIS = "redis://cache.internal:6379/0"
#: Variables of the developer's shell that would change what a child process sees.
OWN_ENV = re.compile(r"(DATABASE_URL|REDIS_URL|RATELIMIT_|SECRET_KEY|OTP_HASH_KEY|VAPID_|"
                     r"INSTANCE_PATH|"
                     r"PRODUCTION|DEMO|FLASK_DEBUG|SECURE_COOKIES|FORCE_HTTPS|DEV_OUTBOX_|"
                     r"MAIL_SERVER|SMS_RU_|PAYMENT_GATEWAY|SANDBOX_PAY_|CELERY_|PORT|BIND|WEB_)")


def child_env(tmp_path: Path, **env: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not OWN_ENV.match(k)}
    return {**clean, "INSTANCE_PATH": str(tmp_path / "instance"), **env}


def start_up_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -m app.production`` (what ``make serve`` runs first) with only ``env`` set."""
    return subprocess.run([sys.executable, "-m", "app.production"], cwd=ROOT, text=True,
                          env=child_env(tmp_path, **env), capture_output=True, timeout=60,
                          stdin=subprocess.DEVNULL)


FIT = {"PRODUCTION": "1", "SECRET_KEY": GOOD_KEY, "OTP_HASH_KEY": OTHER_KEY,
       "VAPID_PRIVATE_KEY": vapid.generate()[0],
       "DATABASE_URL": POSTGRES, "REDIS_URL": REDIS, "CELERY_BROKER_URL": REDIS}


# The start-up check


def test_fit_production_settings_pass(tmp_path):
    result = start_up_check(tmp_path, **FIT)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("missing", ["SECRET_KEY", "OTP_HASH_KEY"])
def test_a_missing_key_is_refused_even_with_one_in_instance(tmp_path, missing):
    """A key generated into instance/ (the development default) is not read in production."""
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / missing.lower()).write_text(secrets.token_hex(32))
    result = start_up_check(tmp_path, **{**FIT, missing: ""})
    assert result.returncode == 1
    assert f"{missing} не задан" in result.stderr and f"{missing} is not set" in result.stderr
    assert "secrets.token_hex(32)" in result.stderr


@pytest.mark.parametrize("key", ["change-me", "\\2\\1thisismyscretkey\\1\\2\\e\\y\\y\\h",
                                 "short-but-random-7f3a"])
def test_a_default_or_short_secret_key_is_refused(tmp_path, key):
    result = start_up_check(tmp_path, **{**FIT, "SECRET_KEY": key})
    assert result.returncode == 1
    assert "SECRET_KEY — значение по умолчанию или слишком короткое" in result.stderr
    assert "OTP_HASH_KEY" not in result.stderr


def test_the_same_key_twice_is_refused(tmp_path):
    result = start_up_check(tmp_path, **{**FIT, "OTP_HASH_KEY": GOOD_KEY})
    assert result.returncode == 1 and "SECRET_KEY и OTP_HASH_KEY совпадают" in result.stderr


def test_sqlite_is_refused_unless_a_demo(tmp_path):
    sqlite = {**FIT, "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}
    refused = start_up_check(tmp_path, **sqlite)
    assert refused.returncode == 1
    assert "DATABASE_URL указывает на SQLite" in refused.stderr and "DEMO=1" in refused.stderr
    demo = start_up_check(tmp_path, **sqlite, DEMO="1")
    assert demo.returncode == 0, demo.stderr


def test_process_local_rate_limits_are_refused_unless_a_demo(tmp_path):
    local = {**FIT, "REDIS_URL": ""}
    refused = start_up_check(tmp_path, **local)
    assert refused.returncode == 1 and "REDIS_URL или RATELIMIT_STORAGE_URI" in refused.stderr
    assert start_up_check(tmp_path, **local, RATELIMIT_STORAGE_URI=REDIS).returncode == 0
    assert start_up_check(tmp_path, **local, DEMO="1").returncode == 0


def test_jobs_inside_web_requests_are_refused_unless_a_demo(tmp_path):
    eager = {**FIT, "CELERY_BROKER_URL": ""}
    refused = start_up_check(tmp_path, **eager)
    assert refused.returncode == 1 and "CELERY_BROKER_URL не задан" in refused.stderr
    assert start_up_check(tmp_path, **eager, DEMO="1").returncode == 0


def test_debug_mode_is_refused(tmp_path):
    result = start_up_check(tmp_path, **FIT, FLASK_DEBUG="1")
    assert result.returncode == 1 and "FLASK_DEBUG" in result.stderr


def test_every_problem_is_listed_at_once(tmp_path):
    result = start_up_check(tmp_path, PRODUCTION="1",
                            DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}")
    listed = [line for line in result.stderr.splitlines() if line.startswith("- ")]
    assert [line.split()[1] for line in listed] == ["SECRET_KEY", "OTP_HASH_KEY",
                                                    "VAPID_PRIVATE_KEY", "DATABASE_URL",
                                                    "Счётчики", "CELERY_BROKER_URL"]


def test_outside_production_nothing_is_checked(tmp_path):
    result = start_up_check(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'dev.sqlite3'}")
    assert result.returncode == 0, result.stderr
    assert problems({"SECRET_KEY": "", "SQLALCHEMY_DATABASE_URI": "sqlite://"}) == []


def test_gunicorn_refuses_to_start_before_any_worker(tmp_path):
    """gunicorn.conf.py runs the check in the master: no worker boots, the message is plain."""
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "run:app"],
        cwd=ROOT, text=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
        env=child_env(tmp_path, **{**FIT, "SECRET_KEY": "", "BIND": "127.0.0.1:0"}))
    assert result.returncode == 1
    assert "SECRET_KEY не задан" in result.stderr
    assert "Booting worker" not in result.stderr and "Traceback" not in result.stderr


def test_create_app_refuses_too(tmp_path):
    with pytest.raises(ProductionConfigError, match="SECRET_KEY не задан"):
        create_app({"PRODUCTION": True, "SECRET_KEY": None, "OTP_HASH_KEY": OTHER_KEY,
                    "SQLALCHEMY_DATABASE_URI": POSTGRES, "RATELIMIT_STORAGE_URI": REDIS,
                    "CELERY_BROKER_URL": REDIS, "DEV_OUTBOX_DIR": str(tmp_path)})


def settings_under(tmp_path: Path, *names: str, **env: str) -> dict:
    code = ("import json; from config import Config; c = Config(); "
            f"print(json.dumps({{n: getattr(c, n) for n in {list(names)!r}}}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, text=True, timeout=60,
                            env=child_env(tmp_path, **env), capture_output=True,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


COOKIES_AND_HTTPS = ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE", "FORCE_HTTPS")


def test_production_means_secure_cookies_and_https(tmp_path):
    assert settings_under(tmp_path, *COOKIES_AND_HTTPS, **FIT) == dict.fromkeys(
        COOKIES_AND_HTTPS, True)
    assert settings_under(tmp_path, *COOKIES_AND_HTTPS) == dict.fromkeys(COOKIES_AND_HTTPS,
                                                                         False)
    demo = settings_under(tmp_path, *COOKIES_AND_HTTPS, **FIT, DEMO="1")
    assert demo == dict.fromkeys(COOKIES_AND_HTTPS, False)
    behind_tls = settings_under(tmp_path, *COOKIES_AND_HTTPS, **FIT, DEMO="1",
                                SECURE_COOKIES="1", FORCE_HTTPS="1")
    assert behind_tls == dict.fromkeys(COOKIES_AND_HTTPS, True)


def test_the_dev_outbox_in_production_only_when_enabled(make_app):
    from app.services.channels import ChannelConfigError, channel_for

    with pytest.raises(ChannelConfigError, match="DEV_OUTBOX_ENABLED=1"):
        make_app(PRODUCTION=True)
    staging = make_app(PRODUCTION=True, DEV_OUTBOX_ENABLED=True)
    with staging.app_context():
        assert channel_for("email").name == "dev-email"
        assert staging.extensions["bulk_mailer"].name == "dev-email"
        # the sandbox gateway stays off: it credits payments no money stands behind
        assert staging.extensions["payment_gateway"] is None


# Security headers


def csp_of(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in policy.split("; ")}


def assert_security_headers(response) -> None:
    csp = csp_of(response)
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert csp["default-src"] == "'self'" and csp["object-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def script_nonce(response) -> str:
    return re.search(r"'nonce-([\w-]+)'", csp_of(response)["script-src"]).group(1)


def test_html_pages_carry_the_headers_and_nonce_every_inline_script(client, owner, login,
                                                                    make_user_fn):
    _user, krd, _nvr = owner
    pages = [client.get("/cabinet/"), client.get(f"/cabinet/consumption/"
                                                 f"{krd.ids['PersonalAccount']}")]
    client.post("/auth/logout")
    make_user_fn("admin", "Admin")
    login("admin")
    pages += [client.get("/personalaccountview/list/?_flt_0_number=2300"),
              client.get(f"/personalaccountview/edit/{krd.ids['PersonalAccount']}"),
              client.get("/swagger/v1")]
    for page in pages:
        assert page.status_code == 200, page.request.path
        assert_security_headers(page)
        nonce = script_nonce(page)
        body = page.get_data(as_text=True)
        scripts = re.findall(r"<script\b[^>]*>", body)
        assert scripts, page.request.path
        for tag in scripts:
            assert f'nonce="{nonce}"' in tag or 'type="application/json"' in tag, tag
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", body), page.request.path
    nonces = {script_nonce(page) for page in pages}
    assert len(nonces) == len(pages), "a nonce is never reused"


def test_json_and_file_responses_carry_the_headers(client, owner):
    _user, krd, _nvr = owner
    api = client.post("/api/v1/security/login", json={"username": "owner", "password": "нет",
                                                      "provider": "db"})
    assert api.status_code == 401 and api.is_json
    assert_security_headers(api)
    token = client.post("/api/v1/security/login", json={
        "username": "owner", "password": PASSWORD, "provider": "db"}).get_json()["access_token"]
    accounts = client.get("/api/v1/account/", headers={"Authorization": f"Bearer {token}"})
    assert accounts.status_code == 200 and accounts.is_json
    assert_security_headers(accounts)
    export = client.get(f"/cabinet/consumption/{krd.ids['PersonalAccount']}/xlsx")
    assert export.status_code == 200 and export.data[:2] == b"PK"
    assert "attachment" in export.headers["Content-Disposition"]
    assert_security_headers(export)
    static = client.get("/static/js/confirm.js")
    assert static.status_code == 200
    assert_security_headers(static)
    static.close()


def test_the_nonce_is_one_per_request_and_empty_outside_one(app):
    from flask import render_template_string

    assert render_template_string("{{ csp_nonce() }}") == ""  # a letter rendered by a task
    with app.test_request_context("/"):
        first = render_template_string("{{ csp_nonce() }}|{{ csp_nonce() }}")
    with app.test_request_context("/"):
        second = render_template_string("{{ csp_nonce() }}")
    nonce, again = first.split("|")
    assert nonce == again and len(nonce) >= 32 and second != nonce


def test_hsts_only_over_https(app, client):
    assert "Strict-Transport-Security" not in client.get("/auth/").headers
    secure = client.get("/auth/", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_force_https_redirects_plain_http_but_believes_the_proxy(make_app):
    flask_app = make_app(FORCE_HTTPS=True, PROXY_COUNT=1)
    client = flask_app.test_client()
    plain = client.get("/auth/")
    assert plain.status_code == 302 and plain.location == "https://localhost/auth/"
    proxied = client.get("/auth/", headers={"X-Forwarded-Proto": "https",
                                            "X-Forwarded-For": "192.0.2.7"})
    assert proxied.status_code == 200
    assert "Strict-Transport-Security" in proxied.headers


# Every template: no inline script without a nonce, no inline event handler

TEMPLATE_DIRS = [ROOT / "app" / "templates", *ROOT.glob("plugins/*/*/templates")]
TEMPLATES = sorted(p for folder in TEMPLATE_DIRS for p in folder.rglob("*.html"))


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_templates_have_no_inline_code_without_a_nonce(path):
    source = path.read_text(encoding="utf-8")
    for tag in re.findall(r"<script\b[^>]*>", source):
        assert "nonce=" in tag or 'type="application/json"' in tag, tag
    handler = re.search(r"<[^>]*\son[a-z]+\s*=[^>]*>", source)
    assert handler is None, handler and handler.group()
    assert "javascript:" not in source


# Chromium: no page of the portal trips the Content-Security-Policy

#: Collects the browser's own reports of blocked content, before any script of the page runs.
VIOLATION_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.mark.browser
def test_no_page_violates_the_content_security_policy(browser_page, session, two_branches,
                                                      make_user_fn, app):
    krd, _nvr = two_branches
    page = browser_page
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    page.context.add_init_script(VIOLATION_LISTENER)
    visited: list[str] = []
    # A request that never ends is named in the failure (the timeout is browser_page's).
    pending: set[str] = set()
    page.on("request", lambda request: pending.add(request.url))
    page.on("requestfinished", lambda request: pending.discard(request.url))
    page.on("requestfailed", lambda request: pending.discard(request.url))

    def visit(url: str, settle: bool = True) -> None:
        """settle: wait until the network is quiet, for pages whose script fetches more."""
        try:
            page.goto(url)
            if settle:
                page.wait_for_load_state("networkidle")
        except PlaywrightTimeoutError as error:
            raise AssertionError(f"{url} did not finish loading; pending: {sorted(pending)}"
                                 ) from error
        violations = page.evaluate("() => window.__cspViolations")
        assert violations == [], f"{url}: {violations}"
        visited.append(url)

    account = krd.ids["PersonalAccount"]
    for url in ("/auth/", "/auth/register", "/auth/recover", "/business/login", "/feedback/",
                "/contacts/", "/readings/", "/login/"):
        visit(url)

    resident = make_user_fn("resident", "Resident", kind="resident", phone="+79185550012")
    bind_accounts(session, resident.id, [("230000000001", "SN-KRD-1")], None)
    page.goto("/auth/")
    page.fill("input[name=login]", "9185550012")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.locator("button[type=submit]").first.click()
    for url in ("/cabinet/", f"/cabinet/readings/{account}", f"/cabinet/consumption/{account}",
                f"/cabinet/bills/{account}", f"/cabinet/pay/{account}", "/cabinet/bind",
                "/cabinet/profile/", "/cabinet/feedback/", "/cabinet/applications/new",
                "/cabinet/charges/list/", "/cabinet/invoices/list/", "/cabinet/payments/list/"):
        visit(url)
    page.goto("/cabinet/")
    # The unbind form asks first (data-confirm, static JS): dismissed, nothing changes.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Отвязать").click()
    page.wait_for_load_state("networkidle")
    assert session.execute(select(m.AccountBinding).filter_by(
        user_id=resident.id)).scalars().all(), "dismissing the question must keep the account"
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.get_by_role("button", name="Отвязать").click()
    session.expire_all()
    assert not session.execute(select(m.AccountBinding).filter_by(
        user_id=resident.id)).scalars().all()
    browser_sign_out(page)

    make_user_fn("admin", "Admin")
    page.goto("/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")
    lists = sorted(rule.rule for rule in app.url_map.iter_rules()
                   if rule.endpoint.endswith(".list") and not rule.arguments
                   and "GET" in rule.methods and not rule.rule.startswith("/api/"))
    assert len(lists) > 10
    for url in lists:  # FAB's lists fetch nothing after their load: no half-second wait each
        visit(url, settle=False)
    for url in (f"/personalaccountview/show/{account}", f"/personalaccountview/edit/{account}",
                "/personalaccountview/add", "/personalaccountview/list/?_flt_0_number=2300",
                "/swagger/v1"):
        visit(url)
    page.wait_for_selector("#swagger-ui .info")  # Swagger UI did render
    blocked = [line for line in console if "Content Security Policy" in line]
    assert blocked == [], blocked
    assert len(visited) > 30
