"""Fixtures: one app per pytest-xdist worker on the worker's own database (a clone of the run's
migrated template, SQLite or TEST_DATABASE_URL such as PostgreSQL); each test inside an outer
transaction rolled back after it, or, marked ``committed``, on committed data cleaned up after
it; clients signed in by role, and two branches of data for isolation tests."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from flask_appbuilder import Model

import app.models  # noqa: F401  (registers the tables)
from app import create_app, jobs
from app.extensions import db
from tests import databases
from tests.factories import PASSWORD, build_branch_world, make_user

#: FAB tables kept between tests (roles and permissions are synced once, in the template).
KEPT_TABLES = {"ab_permission", "ab_view_menu", "ab_permission_view", "ab_role",
               "ab_permission_view_role"}
#: Folders of the shared app that each test gets afresh under its own tmp_path.
PER_TEST_FOLDERS = {"DEV_OUTBOX_DIR": "outbox", "APPLICATION_UPLOAD_DIR": "uploads"}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "committed: the test's data must be committed, for another connection, "
                   "thread or process to see (cleaned up by deleting every row after it)")
    databases.run_id()  # made here in the controller, so that every worker shares it


def pytest_collection_modifyitems(config, items):
    """DATABASE_TESTS_ONLY=1 (make test-postgres) keeps the tests that use the test database:
    the others do the same on any database and have run on the SQLite pass."""
    if os.environ.get("DATABASE_TESTS_ONLY") != "1":
        return
    kept = [item for item in items if "database_url" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):  # the controller, after every worker has ended
        databases.drop_run(os.environ.get("TEST_DATABASE_URL"))


def _migrate(url: str) -> None:
    """A new database as `make db` builds one: `flask db upgrade`, then `flask roles sync`."""
    from flask_migrate import upgrade

    from app import MIGRATIONS_DIR
    from app.views.access import sync_roles

    with tempfile.TemporaryDirectory(prefix="lk-template-") as folder:
        builder = create_app(_test_config(url, Path(folder)))
        with builder.app_context():
            upgrade(directory=MIGRATIONS_DIR)
            sync_roles(builder.appbuilder)
            db.session.remove()
            db.engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory, request):
    """This worker's own database, cloned from the run's migrated template."""
    base = os.environ.get("TEST_DATABASE_URL") or "sqlite:///template.sqlite3"
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    shared = tmp_path_factory.getbasetemp()
    if worker != "main":
        shared = shared.parent  # the run's folder, above each worker's own
    template = databases.build_template(base, shared, _migrate)
    url = databases.clone(template, worker, tmp_path_factory.mktemp("db"))
    yield url
    databases.drop(url)


def _test_config(database_url: str, instance_dir) -> dict:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "MAIL_SERVER": None,
        "DEV_OUTBOX_DIR": str(instance_dir / "outbox"),
        "APPLICATION_UPLOAD_DIR": str(instance_dir / "uploads"),
        "SANDBOX_PAY_DIR": str(instance_dir / "sandbox_pay"),
        "SERVER_NAME": "localhost",
        # Test users' passwords (FAB's add_user) with a cheap hash: scrypt costs about 130 ms
        # a user and a sign-in; the portal's own hashing (registration, recovery, the
        # password form) stays scrypt and is tested as such.
        "FAB_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    }


@pytest.fixture(scope="session")
def worker_app(database_url, tmp_path_factory):
    """The worker's one app: building it (about half a second) once, not once per test."""
    flask_app = create_app(_test_config(database_url, tmp_path_factory.mktemp("portal")))
    databases.sessions_may_join(db.session.session_factory)
    with flask_app.app_context():
        databases.give_up_waiting_on_locks(db.engine)
        db.engine.dispose()
    yield flask_app
    with flask_app.app_context():
        db.engine.dispose()


@pytest.fixture
def app(worker_app, tmp_path, request):
    """The worker's app for one test: its own outbox and upload folders, its settings as they
    were before the test (a test may change them), its rate-limit counters empty, and its
    data gone after it: rolled back, or deleted for a test marked ``committed``."""
    settings = dict(worker_app.config)
    worker_app.config.update({key: str(tmp_path / name) for key, name in PER_TEST_FOLDERS.items()})
    jobs.init_app(worker_app)  # an app built by an earlier test took Celery's module state
    committed = (request.node.get_closest_marker("committed") is not None
                 or "live_server" in request.fixturenames)
    try:
        with worker_app.app_context():
            if committed:
                try:
                    yield worker_app
                finally:
                    db.session.rollback()
                    _wipe(db.session)
                    db.session.remove()
            else:
                with databases.outer_transaction(db):
                    yield worker_app
    finally:
        worker_app.config.clear()
        worker_app.config.update(settings)
        _forget_failures(worker_app)


def _forget_failures(flask_app) -> None:
    """Empty the in-memory counters of failed sign-ins, codes and lookups."""
    for guard in flask_app.extensions["failure_guards"].values():
        guard.limiter.storage.reset()
    limiter = getattr(flask_app.appbuilder.sm, "limiter", None)
    if limiter is not None and limiter.enabled:
        limiter.reset()


@pytest.fixture
def make_app(app, tmp_path):
    """make_app(**settings): another app over the test's database (and inside its outer
    transaction), for a test of settings read when an app is built."""
    made = []

    def _make(**overrides):
        folder = tmp_path / f"app{len(made)}"
        flask_app = create_app({**_test_config(app.config["SQLALCHEMY_DATABASE_URI"], folder),
                                **overrides})
        made.append(flask_app)
        return flask_app

    yield _make
    for flask_app in made:
        with flask_app.app_context():
            db.engine.dispose()


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
def sandbox(app, tmp_path):
    """The app's sandbox payment gateway with its records in tmp_path; notifications it sends
    are kept in ``sandbox.sent`` for the test to deliver when and as often as it likes."""
    from app.plugins.sandbox_gateway import SandboxStore

    gateway = app.extensions["payment_gateways"]["sandbox"]
    gateway.store = SandboxStore(tmp_path / "sandbox")
    gateway.sent = []
    gateway.deliver = lambda url, body, headers: gateway.sent.append((url, body, headers))
    return gateway


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
def live_server(app, make_app, live_overrides):
    """The worker_app served by werkzeug in a thread on a free loopback port, with CSRF on as in
    production, over the test's committed data (deleted by ``app`` after it); yields the base
    URL."""
    import threading

    from werkzeug.serving import make_server

    server_app = make_app(SERVER_NAME=None, WTF_CSRF_ENABLED=True, **live_overrides)
    server = make_server("127.0.0.1", 0, server_app, threaded=True)
    # shutdown() waits up to one poll: 0.05 s, not the default half second per test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def redis_lease():
    """This worker's own Redis database for the whole run (see tests/redis_lease.py)."""
    from tests import redis_lease as leases

    held = leases.lease()
    yield held
    if held is not None:
        held.release()


@pytest.fixture
def redis_url(redis_lease):
    """The URL of this worker's Redis database, empty before and after the test."""
    from tests.redis_lease import SERVER

    if redis_lease is None:
        pytest.skip(f"Redis does not answer at {SERVER}, or has no free database: start "
                    "redis-server to run this test")
    redis_lease.empty()
    yield redis_lease.url
    redis_lease.empty()


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
