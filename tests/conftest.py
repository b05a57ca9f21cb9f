"""Fixtures: an app on a fresh schema (SQLite, or TEST_DATABASE_URL such as PostgreSQL),
clients signed in by role, and two branches of data for isolation tests."""
from __future__ import annotations

import gc
import os

import pytest
from flask_appbuilder import Model
from sqlalchemy import create_engine

import app.models  # noqa: F401  (registers the tables)
from app import create_app
from app.extensions import db
from app.security import sync_roles
from tests.factories import PASSWORD, build_branch_world, make_user

#: FAB tables kept between tests (roles and permissions are synced once per session).
KEPT_TABLES = {"ab_permission", "ab_view_menu", "ab_permission_view", "ab_role",
               "ab_permission_view_role"}


def pytest_unconfigure(config):
    """Leave the suite's heap out of the interpreter's last garbage collection: several GB
    of objects made the process take a minute and more to exit after its summary, twice per
    CI run. The process's exit frees the memory anyway."""
    gc.freeze()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    engine = create_engine(url)
    Model.metadata.drop_all(engine)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    Model.metadata.create_all(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def _roles_synced(database_url, tmp_path_factory):
    flask_app = create_app(_test_config(database_url, tmp_path_factory.mktemp("inst")))
    with flask_app.app_context():
        sync_roles(flask_app.appbuilder)
    return True


def _test_config(database_url: str, instance_dir) -> dict:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "MAIL_SERVER": None,
        "DEV_OUTBOX_DIR": str(instance_dir / "outbox"),
        "APPLICATION_UPLOAD_DIR": str(instance_dir / "uploads"),
        "SERVER_NAME": "localhost",
        # Test users' passwords (FAB's add_user) with a cheap hash: scrypt costs about 130 ms
        # a user and a sign-in; the portal's own hashing (registration, recovery, the
        # password form) stays scrypt and is tested as such.
        "FAB_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    }


@pytest.fixture
def app(database_url, _roles_synced, tmp_path):
    flask_app = create_app(_test_config(database_url, tmp_path))
    with flask_app.app_context():
        yield flask_app
        db.session.rollback()
        _wipe(db.session)
        db.session.remove()
        db.engine.dispose()  # every test builds an app: its pool must not outlive it


def _wipe(session) -> None:
    """Delete every row but the synced roles and permissions, children first."""
    for table in reversed(Model.metadata.sorted_tables):
        if table.name not in KEPT_TABLES:
            session.execute(table.delete())
    session.commit()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def session(app):
    return db.session


@pytest.fixture
def two_branches(session):
    """Krasnodar and Novorossiysk, each with one row of every kind."""
    krd = build_branch_world(session, "krd", "Краснодарэнергосбыт", "Краснодар", 1)
    nvr = build_branch_world(session, "nvr", "Новороссийскэнергосбыт", "Новороссийск", 2)
    return krd, nvr


@pytest.fixture
def make_user_fn(app, session):
    def _make(username: str, role: str, **kwargs):
        return make_user(session, app.appbuilder.sm, username=username, role=role, **kwargs)

    return _make


@pytest.fixture
def owner(client, session, make_user_fn, two_branches):
    """A resident with Krasnodar's account bound, signed in; Novorossiysk's account belongs to
    a neighbour."""
    from app.services.binding import bind_accounts

    krd, nvr = two_branches
    user = make_user_fn("owner", "Resident", kind="resident")
    neighbour = make_user_fn("neighbour", "Resident", kind="resident")
    bind_accounts(session, user.id, [("230000000001", "SN-KRD-1")], None)
    bind_accounts(session, neighbour.id, [("230000000002", "SN-NVR-2")], None)
    client.post("/auth/", data={"login": "owner", "password": PASSWORD})
    return user, krd, nvr


@pytest.fixture
def login(client):
    """Sign the test client in through FAB's /login/ form; returns the response."""

    def _login(username: str, password: str = PASSWORD):
        return client.post("/login/", data={"username": username, "password": password},
                           follow_redirects=False)

    return _login


# Browser tests: the portal on a real HTTP port and a headless Chromium page (tests/test_browser.py)

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
#: Chromium flags for this sandbox: no setuid sandbox as root, and no calls home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


class Inbox:
    """What a real SMTP server (aiosmtpd) received: (recipients, parsed message) pairs."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes, policy

        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content,
                                                                    policy=policy.default)))
        return "250 OK"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback; yields (controller, inbox)."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def live_overrides() -> dict:
    """Configuration of the live server beyond the tests' own; override in a test module."""
    return {}


@pytest.fixture
def live_server(app, database_url, tmp_path, live_overrides):
    """The portal served by werkzeug in a thread on a free loopback port, with CSRF on as in
    production, over the test's database (cleaned up by ``app``); yields the base URL."""
    import threading

    from werkzeug.serving import make_server

    server_app = create_app({**_test_config(database_url, tmp_path / "live"),
                             "SERVER_NAME": None, "WTF_CSRF_ENABLED": True, **live_overrides})
    server = make_server("127.0.0.1", 0, server_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with server_app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (its own browser download is not used)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Chromium is not installed at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def shots(tmp_path):
    """shots(page, name): a full-page screenshot into $SCREENSHOT_DIR (else the test's tmp
    dir), for a person to look at."""
    from pathlib import Path

    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def _shot(page, name: str) -> None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    return _shot


@pytest.fixture
def browser_page(browser, live_server):
    """A fresh browser context (no cookies) whose relative URLs go to ``live_server``."""
    context = browser.new_context(base_url=live_server, locale="ru-RU",
                                  viewport={"width": 1280, "height": 900})
    # Generous: a busy CI machine once stalled a page load past 15 s; a real hang still fails.
    context.set_default_timeout(45_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
