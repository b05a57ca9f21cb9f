"""The portal with the bot configured against a loopback Bot API: one app and one SQLite
database for the module's tests (building an app and syncing roles takes seconds), its rows
deleted after each test, the fake's records and the throttle's counters emptied. The
development chat's tests get an app of their own, with TELEGRAM_DEV_CHAT on and no token."""
from __future__ import annotations

import contextlib

import pytest
from flask_appbuilder import Model
from sqlalchemy import create_engine

import app.models  # noqa: F401  (registers the tables)
from app import create_app
from app.extensions import db
from app.views.access import sync_roles
from lk_telegram_bot.testing import SECRET, TOKEN, FakeBotApi

#: FAB's tables synced once and kept.
KEPT_TABLES = {"ab_permission", "ab_view_menu", "ab_permission_view", "ab_role",
               "ab_permission_view_role"}
PORTAL_URL = "https://lk.example.test"


@pytest.fixture(scope="session")
def fake():
    server = FakeBotApi()
    yield server
    server.close()


def build_app(folder, **config):
    """A portal over a new SQLite file in ``folder``, its roles synced."""
    url = f"sqlite:///{folder / 'bot.sqlite3'}"
    engine = create_engine(url)
    Model.metadata.create_all(engine)
    engine.dispose()
    flask_app = create_app({
        "TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SERVER_NAME": "localhost",
        "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False, "MAIL_SERVER": None,
        "DEV_OUTBOX_DIR": str(folder / "outbox"), "PORTAL_URL": PORTAL_URL,
        "FAB_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        # Readings are taken every day of the month unless a test closes the window.
        "READING_WINDOW_FIRST_DAY": 1, "READING_WINDOW_LAST_DAY": 31, **config})
    with flask_app.app_context():
        sync_roles(flask_app.appbuilder)
        db.session.remove()
    return flask_app


@contextlib.contextmanager
def one_test(flask_app):
    """The app, in its context, for one test; its data and changed settings gone after it."""
    settings = dict(flask_app.config)
    try:
        with flask_app.app_context():
            try:
                yield flask_app
            finally:
                db.session.rollback()
                for table in reversed(Model.metadata.sorted_tables):
                    if table.name not in KEPT_TABLES:
                        db.session.execute(table.delete())
                db.session.commit()
                db.session.remove()
    finally:
        flask_app.config.clear()
        flask_app.config.update(settings)
        for guard in flask_app.extensions["failure_guards"].values():
            guard.limiter.storage.reset()


@pytest.fixture(scope="session")
def portal_app(tmp_path_factory, fake):
    flask_app = build_app(tmp_path_factory.mktemp("telegram"),
                          TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_WEBHOOK_SECRET=SECRET,
                          TELEGRAM_API_URL=fake.url, TELEGRAM_TIMEOUT="5")
    yield flask_app
    with flask_app.app_context():
        db.engine.dispose()


@pytest.fixture
def portal(portal_app, fake):
    """The app, in its context, for one test; its data gone after it."""
    fake.reset()
    with one_test(portal_app) as flask_app:
        yield flask_app


@pytest.fixture(scope="session")
def dev_app(tmp_path_factory):
    """The portal with the development chat on (TELEGRAM_DEV_CHAT) and no token."""
    flask_app = build_app(tmp_path_factory.mktemp("dev_chat"), TELEGRAM_DEV_CHAT="1",
                          TELEGRAM_TIMEOUT="5")
    yield flask_app
    flask_app.extensions["lk_telegram_bot"]["dev_chat"].close()
    with flask_app.app_context():
        db.engine.dispose()


@pytest.fixture
def dev(dev_app):
    """The development chat's app for one test, its chat empty."""
    dev_app.extensions["lk_telegram_bot"]["dev_chat"].clear()
    with one_test(dev_app) as flask_app:
        yield flask_app
