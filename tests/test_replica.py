"""Read-only pages from a streaming replica (app/replica.py), against two real PostgreSQL
servers this file makes for itself: a primary initdb'd into a temporary folder and a standby
cloned from it by pg_basebackup, each on a free port (the machine's own server and its
pg_hba are not touched). Replay paused on the standby shows where each page read from: a
person who did not write sees the old state, the one who just wrote the new one, and
everybody the new one once replay resumes; a replica too far behind, or stopped, is passed
over for the primary.

The servers are built once for the session of the worker that runs this file; the test needs
no test database, so `make test-postgres` (DATABASE_TESTS_ONLY=1) leaves it to the SQLite
pass. Without PostgreSQL's server binaries it is skipped, saying why."""
from __future__ import annotations

import datetime as dt
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import event

from app import create_app, replica
from app.extensions import db
from app.services.binding import bind_accounts
from tests.conftest import _migrate, _test_config, free_port
from tests.factories import PASSWORD, build_branch_world, make_user

PG_ROOT = Path("/usr/lib/postgresql")
TOOLS = ("initdb", "pg_ctl", "pg_basebackup")
#: How long a writer's reads stay on the primary in this test (seconds): short, since the
#: test waits it out twice.
STICKY = 2.0
WAIT = 30.0
#: Inside the reading window, as tests/test_cabinet.py pins it.
TODAY = dt.date(2026, 11, 20)
SUBMITTED = "Показания переданы"
ACCOUNT = ("230000000001", "SN-KRD-1")

pytestmark = pytest.mark.postgres


def _bin_dir() -> Path | None:
    """The newest PostgreSQL version's server binaries, if installed."""
    found = [d for d in PG_ROOT.glob("*/bin") if all((d / tool).exists() for tool in TOOLS)]
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0,
               default=None)


class Server:
    """One PostgreSQL server in ``data``, run as ``run_as`` (the postgres user when we are
    root: the server refuses to run as root)."""

    def __init__(self, bin_dir: Path, data: Path, folder: Path, run_as: list[str]):
        self.bin_dir, self.data, self.folder, self.run_as = bin_dir, data, folder, run_as
        self.port = free_port()

    def run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.run_as, str(self.bin_dir / tool), *args], cwd=self.folder,
                       check=True, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)

    def configure(self, **settings) -> None:
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / f"{self.data.name}.log"),
                 "-w", "-t", "60", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, *params, database: str = "postgres"):
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres "
                             f"dbname={database}", autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(statement, params or None)
            return cursor.fetchall() if cursor.description else None


def _wait(what: str, check) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {WAIT:g} s for {what}")
        time.sleep(0.05)


def caught_up(primary: Server, standby: Server) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    target = primary.sql("SELECT pg_current_wal_lsn()::text")[0][0]
    _wait("the standby to replay the primary's WAL", lambda: standby.sql(
        "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", target)[0][0])


@pytest.fixture(scope="session")
def servers():
    """(primary, standby): a primary and its streaming standby in a temporary folder, on
    free ports; stopped and removed at the end of the session."""
    pytest.importorskip("psycopg")
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip(f"PostgreSQL's server binaries ({', '.join(TOOLS)}) are not installed "
                    f"under {PG_ROOT}/<version>/bin: apt-get install postgresql")
    run_as, owner = [], None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("run as root, and there is no `postgres` user to run the servers as")
        if shutil.which("runuser") is None:
            pytest.skip("run as root, and there is no `runuser` to start the servers as postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="lk-replica-"))
    if owner is not None:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    primary = Server(bin_dir, folder / "primary", folder, run_as)
    standby = Server(bin_dir, folder / "standby", folder, run_as)
    try:
        primary.run("initdb", "-D", str(primary.data), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--locale=C", "--no-sync")
        (primary.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all all 127.0.0.1/32 trust\n"
            "host replication all 127.0.0.1/32 trust\n")
        primary.configure(listen_addresses="'127.0.0.1'", port=primary.port,
                          unix_socket_directories=f"'{folder}'", fsync="off",
                          shared_buffers="16MB", max_connections=40, wal_level="replica",
                          max_wal_senders=4, hot_standby="on")
        primary.start()
        primary.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U",
                    "postgres", "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast",
                    "--no-sync")
        standby.configure(port=standby.port)
        standby.start()
        _wait("the standby to stream", lambda: standby.sql(
            "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'")[0][0])
        yield primary, standby
    finally:
        for server in (standby, primary):
            try:
                server.stop()
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def portal(servers, tmp_path, monkeypatch):
    """The portal over the migrated primary with the standby as its replica, measured on
    every request (REPLICA_CHECK_SECONDS=0); a resident account bound to two residents,
    «writer» and «reader», both signed in. Yields (app, writer's client, reader's client,
    the statements each engine ran); afterwards, checks that the replica's engine never ran
    an INSERT, UPDATE or DELETE."""
    primary, standby = servers
    primary.sql("CREATE DATABASE portal")
    _migrate(primary.url("portal"))
    monkeypatch.setattr("app.views.cabinet.local_today", lambda: TODAY)
    monkeypatch.setattr("app.views.readings.local_today", lambda: TODAY)
    app = create_app({**_test_config(primary.url("portal"), tmp_path),
                      "DATABASE_REPLICA_URL": standby.url("portal"),
                      "REPLICA_STICKY_SECONDS": STICKY, "REPLICA_CHECK_SECONDS": 0})
    ran = {"primary": [], "replica": []}
    replica_ran = []  # everything the replica's engine ran, never cleared
    with app.app_context():
        engines = {"primary": db.engines[None], "replica": db.engines[replica.BIND]}
        build_branch_world(db.session, "krd", "Краснодарэнергосбыт", "Краснодар", 1)
        db.session.commit()
        for name in ("writer", "reader"):
            user = make_user(db.session, app.appbuilder.sm, username=name, role="Resident",
                             kind="resident")
            bind_accounts(db.session, user.id, [ACCOUNT], None)
        db.session.remove()
    for name, engine in engines.items():
        event.listen(engine, "before_cursor_execute",
                     lambda _c, _cur, statement, *_a, name=name: ran[name].append(statement))
    event.listen(engines["replica"], "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: replica_ran.append(statement))
    clients = []
    for name in ("writer", "reader"):
        client = app.test_client()
        assert client.post("/auth/", data={"login": name, "password": PASSWORD}).status_code \
            == 302
        assert client.get_cookie(replica.COOKIE), "a sign-in writes: its reads are sticky"
        clients.append(client)
    caught_up(primary, standby)
    try:
        yield app, *clients, ran
        assert replica_ran and not _wrote(replica_ran), "no write ever reaches the replica"
    finally:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


def _sticky_until(*clients) -> float:
    return max(float(c.get_cookie(replica.COOKIE).value) for c in clients
               if c.get_cookie(replica.COOKIE))


def _home(client, ran) -> tuple[str, set[str]]:
    """The cabinet's home page, and the engines its account queries ran on."""
    for statements in ran.values():
        statements.clear()
    response = client.get("/cabinet/")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Лицевой счёт 230000000001" in body
    return body, {name for name, statements in ran.items()
                  if any("personal_account" in s for s in statements)}


def _wrote(statements) -> list[str]:
    return [s for s in statements
            if s.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}]


def test_read_only_pages_read_from_the_replica_and_a_writer_from_the_primary(
        servers, portal, caplog):
    primary, standby = servers
    app, writer, reader, ran = portal
    ended = app.test_client()  # the reader's second browser, signed out elsewhere below
    assert ended.post("/auth/", data={"login": "reader", "password": PASSWORD}).status_code \
        == 302
    caught_up(primary, standby)
    time.sleep(max(0.0, _sticky_until(writer, reader, ended) - time.time()))
    assert _home(ended, ran)[1] == {"replica"}

    body, engines = _home(reader, ran)
    assert engines == {"replica"} and SUBMITTED not in body
    reader.set_cookie(replica.COOKIE, f"{time.time() + 3600:.3f}")
    assert _home(reader, ran)[1] == {"replica"}, "a cookie further ahead than ours is ignored"
    reader.delete_cookie(replica.COOKIE)

    standby.sql("SELECT pg_wal_replay_pause()")
    _wait("replay to pause", lambda: standby.sql(
        "SELECT pg_get_wal_replay_pause_state()", database="portal")[0][0] == "paused")
    for statements in ran.values():
        statements.clear()
    account_id = primary.sql("SELECT id FROM personal_account WHERE number = %s", ACCOUNT[0],
                             database="portal")[0][0]
    meter_id = primary.sql("SELECT id FROM meter WHERE account_id = %s", account_id,
                           database="portal")[0][0]
    done = writer.post(f"/cabinet/readings/{account_id}",
                       data={f"m{meter_id}_t1": "1334", "action": "confirm"})
    assert done.status_code == 302, "a POST works while the replica is paused"
    assert _wrote(ran["primary"]) and not _wrote(ran["replica"])
    saved = "SELECT count(*) FROM reading WHERE meter_id = %s AND t1 = 1334"
    assert primary.sql(saved, meter_id, database="portal") == [(1,)]
    assert standby.sql(saved, meter_id, database="portal") == [(0,)]

    body, engines = _home(writer, ran)
    assert SUBMITTED in body and engines == {"primary"}, "the writer sees their own reading"
    primary.sql("UPDATE user_session SET ended_at = now() WHERE id = (SELECT max(id) FROM "
                "user_session WHERE user_id = (SELECT id FROM ab_user WHERE username = %s))",
                "reader", database="portal")  # the newest: `ended`'s
    assert ended.get("/cabinet/").status_code == 302, \
        "a sign-in ended on the primary ends at once, though the replica still has it live"
    app_client = app.test_client(use_cookies=False)  # the mobile app: a token, no cookies
    token = app_client.post("/api/v1/security/login", json={
        "username": "reader", "password": PASSWORD, "provider": "db"}).get_json()["access_token"]
    for statements in ran.values():
        statements.clear()
    listed = app_client.get("/api/v1/account/", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200, "its new sign-in is read where it was written"
    assert [row["number"] for row in listed.get_json()["result"]] == [ACCOUNT[0]]
    assert not any("personal_account" in s for s in ran["replica"])
    body, engines = _home(reader, ran)
    assert SUBMITTED not in body and engines == {"replica"}, "the others read the replica"

    time.sleep(max(0.0, _sticky_until(writer) - time.time()))
    body, engines = _home(writer, ran)
    assert SUBMITTED not in body and engines == {"replica"}, "stickiness lasts STICKY s"

    caplog.set_level(logging.WARNING, logger="app.replica")
    app.config["REPLICA_MAX_LAG_SECONDS"] = 1  # replay has been paused longer than that
    body, engines = _home(reader, ran)
    assert SUBMITTED in body and engines == {"primary"}
    assert "is behind by" in caplog.text and "reading from the primary" in caplog.text
    app.config["REPLICA_MAX_LAG_SECONDS"] = 30

    standby.sql("SELECT pg_wal_replay_resume()")
    caught_up(primary, standby)
    body, engines = _home(reader, ran)
    assert SUBMITTED in body and engines == {"replica"}

    caplog.clear()
    standby.stop()
    for _ in range(2):
        body, engines = _home(reader, ran)
        assert SUBMITTED in body and engines == {"primary"}, "a stopped replica is passed over"
    assert caplog.text.count("does not answer") == 1, "warned once a minute, not per request"


def test_without_a_replica_there_is_one_engine_and_no_cookie(app, owner, client):
    assert set(db.engines) == {None} and replica.BIND not in app.extensions
    assert client.get_cookie(replica.COOKIE) is None
    assert client.get("/cabinet/").status_code == 200


def test_a_replica_needs_postgresql(make_app, tmp_path):
    with pytest.raises(RuntimeError, match="PostgreSQL"):
        make_app(DATABASE_REPLICA_URL=f"sqlite:///{tmp_path / 'replica.sqlite3'}")
