"""Two gunicorn instances behind one address share nothing but PostgreSQL and Redis: a code
requested on one is verified on the other while the first is down, the session survives the
restart, and failed sign-ins alternating between them make both ask the «not a robot» proof
at the configured count.

Both run with production settings (PRODUCTION=1, no debug, Secure cookies, HTTPS forced), each
with its own instance folder; the test plays the TLS reverse proxy (X-Forwarded-Proto/-Host/
-For, PROXY_COUNT=1) and the person reading the code, which the development outbox, explicitly
enabled, writes into the instance's folder."""
from __future__ import annotations

import html
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.services import vapid
from app.services.signin_guard import SigninRules
from tests import databases
from tests.conftest import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
#: The public address both instances stand behind, as the proxy tells them.
PUBLIC_HOST = "portal.localhost"
PROXY_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": PUBLIC_HOST,
                 "X-Forwarded-For": "127.0.0.2"}
PASSWORD = "кубанский вечер у моря"
EMAIL = "ivan.petrov@example.com"
BOOT_SECONDS = 45


@pytest.fixture
def database_url():
    """A database of this test's own (the run's id and a random part in its name)."""
    psycopg = pytest.importorskip("psycopg")
    name = f"{databases.PREFIX}{databases.run_id()}_mp_{secrets.token_hex(4)}"
    try:
        psycopg.connect(f"{PG_SERVER}/postgres", connect_timeout=3).close()
    except psycopg.OperationalError:
        pytest.skip(f"PostgreSQL does not answer at {PG_SERVER}")

    def drop():
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        drop()


@pytest.fixture
def redis_db(redis_url):
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2)
    try:
        yield client
    finally:
        client.close()


class Instance:
    """One gunicorn serving the portal on a loopback port with its own instance folder."""

    def __init__(self, name: str, env: dict[str, str], tmp_path: Path):
        self.name = name
        self.port = free_port()
        self.folder = tmp_path / name
        self.env = {**env, "INSTANCE_PATH": str(self.folder),
                    "DEV_OUTBOX_DIR": str(self.folder / "outbox"),
                    "BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": "1"}
        self.log = tmp_path / f"{name}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "run:app"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)

    def wait_ready(self) -> None:
        import requests

        deadline = time.monotonic() + BOOT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            try:  # the port answers once the master listens, the page once a worker booted
                requests.get(f"{self.url}/auth/", headers=PROXY_HEADERS, timeout=5)
                return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        pytest.fail(f"{self.name} did not answer in {BOOT_SECONDS} s: "
                    f"{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def latest_code(self, destination: str) -> str:
        outbox = sorted((self.folder / "outbox").glob("*.json"))
        letters = [json.loads(path.read_text()) for path in outbox]
        sent = [letter for letter in letters if letter["to"] == destination]
        assert sent, f"{self.name} sent no code to {destination}"
        return re.search(r"\b\d{6}\b", sent[-1]["text"]).group()


class Browser:
    """Cookies and CSRF by hand, over plain HTTP to the instances as the TLS proxy would: the
    session cookie is Secure, so a cookie jar would not send it on an http:// URL."""

    def __init__(self):
        self.cookies: dict[str, str] = {}

    def request(self, instance: Instance, method: str, path: str, **kwargs):
        import requests

        response = requests.request(
            method, f"{instance.url}{path}", cookies=self.cookies, allow_redirects=False,
            timeout=30, headers={**PROXY_HEADERS, "Referer": f"https://{PUBLIC_HOST}{path}"},
            **kwargs)
        for header in response.raw.headers.getlist("Set-Cookie"):
            assert "; Secure" in header and "; HttpOnly" in header, header
            name, _, value = header.split(";")[0].partition("=")
            self.cookies[name] = value
        return response

    def form(self, instance: Instance, path: str, data: dict):
        """GET the form's page (for its CSRF token), then POST it."""
        page = self.request(instance, "GET", path)
        assert page.status_code == 200, (path, page.status_code, page.headers.get("Location"))
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                          r'type="hidden" name="csrf_token" value="([^"]+)"', page.text)
        return self.request(instance, "POST", path,
                            data={**data, "csrf_token": next(filter(None, token.groups()))})


def migrate(env: dict[str, str]) -> None:
    """The deploy steps of `make serve` before gunicorn."""
    for command in (["db", "upgrade"], ["roles", "sync"]):
        result = subprocess.run([sys.executable, "-m", "flask", "--app", "run", *command],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
                                stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr[-3000:]


def text_of(response) -> str:
    return html.unescape(response.text)


def test_a_code_requested_on_one_instance_verifies_on_the_other(database_url, redis_url,
                                                                redis_db, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLASK_", "MAIL_", "SMS_RU_", "RATELIMIT_", "CELERY_",
                                "PAYMENT_", "SANDBOX_", "DEMO", "WEB_", "SECURE_COOKIES",
                                "FORCE_HTTPS", "PORT", "BIND"))}
    env.update({"PRODUCTION": "1", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                "CELERY_BROKER_URL": redis_url,  # queued, never run: no job is started here
                "SECRET_KEY": secrets.token_hex(32), "OTP_HASH_KEY": secrets.token_hex(32),
                "VAPID_PRIVATE_KEY": vapid.generate()[0],
                "DEV_OUTBOX_ENABLED": "1", "PROXY_COUNT": "1", "INSTANCE_PATH": str(tmp_path),
                "WEB_ACCESS_LOG": "-"})
    migrate(env)
    a, b = Instance("a", env, tmp_path), Instance("b", env, tmp_path)
    try:
        a.start()
        b.start()
        a.wait_ready()
        b.wait_ready()
        browser = Browser()

        asked = browser.form(a, "/auth/register", {"method": "email", "contact": EMAIL})
        assert asked.status_code == 302, text_of(asked)
        assert asked.headers["Location"].endswith("/auth/register/confirm")
        code = a.latest_code(EMAIL)
        a.stop()  # the code and the registration's progress outlive the process that began it

        done = browser.form(b, "/auth/register/confirm", {
            "code": code, "password": PASSWORD, "password_again": PASSWORD, "consent": "y"})
        assert done.status_code == 302, text_of(done)
        assert done.headers["Location"].endswith("/cabinet/")

        a.start()  # a new process on A's port: the session signed by B lets the resident in
        a.wait_ready()
        cabinet = browser.request(a, "GET", "/cabinet/")
        assert cabinet.status_code == 200
        assert "не привязан ни один лицевой счёт" in text_of(cabinet)
        assert cabinet.headers["Strict-Transport-Security"].startswith("max-age=")
        browser.form(b, "/auth/logout", {})  # the page's «Выйти»: a POST with the token

        allowed = SigninRules.challenge_after
        stranger = Browser()
        for attempt in range(allowed):
            failed = stranger.form((a, b)[attempt % 2], "/auth/", {
                "method": "email", "login": EMAIL, "password": f"не тот пароль {attempt}"})
            assert failed.status_code == 200
            assert "Неверный логин или пароль" in text_of(failed), attempt
        for instance in (a, b):  # both ask the proof now, even with the right password
            asked = stranger.form(instance, "/auth/", {
                "method": "email", "login": EMAIL, "password": PASSWORD})
            assert "Подтвердите, что вы не робот" in text_of(asked), instance.name
            assert "Location" not in asked.headers
        assert any(b"signin-account" in key for key in redis_db.keys())
    finally:
        a.stop()
        b.stop()
