"""The syslog plugin against a real UDP socket on 127.0.0.1, through the portal's audit journal."""
from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import re
import socket

import pytest
from flask_appbuilder import Model
from sqlalchemy import create_engine

import lk_audit_syslog
from app import create_app
from app.extensions import db
from app.services import audit

#: <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG
RFC5424 = re.compile(
    rb"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>[\x21-\x7e]+) (?P<app>\S+) (?P<proc>\S+) "
    rb"(?P<msgid>\S+) \[(?P<sd>(?:[^\]\\]|\\.)*)\] (?P<msg>.*)\Z",
    re.DOTALL,
)
SD_PARAM = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@pytest.fixture
def collector():
    """A syslog collector: a UDP socket on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    try:
        yield sock
    finally:
        sock.close()


@pytest.fixture
def make_app(tmp_path):
    url = f"sqlite:///{tmp_path / 'syslog.sqlite3'}"
    engine = create_engine(url)
    Model.metadata.create_all(engine)
    engine.dispose()

    def _make(**config):
        return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url,
                           "DEV_OUTBOX_DIR": str(tmp_path / "outbox"), **config})

    return _make


def address(sock) -> str:
    host, port = sock.getsockname()
    return f"{host}:{port}"


def receive(sock) -> dict:
    data, _ = sock.recvfrom(65535)
    match = RFC5424.match(data)
    assert match, data
    parts = {k: v.decode("utf-8") for k, v in match.groupdict().items()}
    parts["raw"] = data
    parts["sd_params"] = {k: re.sub(r"\\(.)", r"\1", v)
                          for k, v in SD_PARAM.findall(parts["sd"])}
    return parts


def test_entry_point_names_the_package():
    (ep,) = [e for e in importlib.metadata.entry_points(group="lk_portal")
             if e.name == "audit_syslog"]
    assert ep.load() is lk_audit_syslog


def test_audit_event_arrives_as_rfc5424_without_secrets(make_app, collector):
    app = make_app(AUDIT_SYSLOG_ADDRESS=address(collector))
    with app.app_context():
        event = audit.record(
            db.session, "account.viewed", object_type="personal_account", object_id=230000000001,
            ip="10.0.0.5",
            details={"password": "hunter2-пароль", "branch_code": "krd",
                     "nested": {"access_token": "tok-123", "items": [{"otp": "4711"}]}},
        )
        event_id = event.id
    got = receive(collector)

    assert int(got["pri"]) == 10 * 8 + 5  # authpriv.notice
    ts = dt.datetime.fromisoformat(got["ts"].replace("Z", "+00:00"))
    assert ts.tzinfo is not None
    assert abs(dt.datetime.now(dt.timezone.utc) - ts) < dt.timedelta(minutes=1)
    assert got["host"] == lk_audit_syslog._header_field(socket.gethostname(), 255)
    assert got["app"] == "lk-portal" and got["proc"] == str(os.getpid())
    assert got["msgid"] == "account.viewed"
    assert got["sd"].startswith("lkAudit@32473 ")
    assert got["sd_params"] == {"id": str(event_id), "at": got["sd_params"]["at"],
                                "objectType": "personal_account", "objectId": "230000000001",
                                "ip": "10.0.0.5"}
    assert got["msg"].startswith("\ufeff")
    body = json.loads(got["msg"][1:])
    assert body["id"] == event_id and body["action"] == "account.viewed"
    assert body["details"] == {"password": "***", "branch_code": "krd",
                               "nested": {"access_token": "***", "items": [{"otp": "***"}]}}
    for secret in ("hunter2", "tok-123", "4711"):
        assert secret.encode() not in got["raw"]


def test_failures_are_warnings(make_app, collector):
    app = make_app(AUDIT_SYSLOG_ADDRESS=address(collector), AUDIT_SYSLOG_FACILITY="local3")
    with app.app_context():
        audit.record(db.session, "login.failure", object_type="user", object_id=1)
    got = receive(collector)
    assert int(got["pri"]) == 19 * 8 + 4  # local3.warning
    assert got["msgid"] == "login.failure"


def test_structured_data_is_escaped():
    sender = lk_audit_syslog.SyslogSender("127.0.0.1", 514)
    datagram = sender.format({"id": 1, "action": "weird action", "object_id": 'a"b]c\\d'})
    assert b' weird_action [' in datagram
    assert b'objectId="a\\"b\\]c\\\\d"' in datagram


def test_long_event_is_sent_without_details(make_app, collector):
    app = make_app(AUDIT_SYSLOG_ADDRESS=address(collector), AUDIT_SYSLOG_MAX_BYTES=700)
    with app.app_context():
        audit.record(db.session, "mailing.sent", details={"text": "Ж" * 5000})
    got = receive(collector)
    assert len(got["raw"]) <= 700
    body = json.loads(got["msg"][1:])
    assert body["action"] == "mailing.sent" and body["details"] == {"truncated": True}


def test_without_address_nothing_is_sent(make_app, monkeypatch):
    opened = []
    monkeypatch.setattr(lk_audit_syslog.socket, "socket",
                        lambda *a, **k: opened.append(a) or pytest.fail("a socket was opened"))
    monkeypatch.delenv("AUDIT_SYSLOG_ADDRESS", raising=False)
    app = make_app()
    with app.app_context():
        assert app.extensions["audit_syslog"] is None
        assert "audit_syslog" in [app.extensions["plugins"].get_name(p)
                                  for p in app.extensions["plugins"].get_plugins()]
        audit.record(db.session, "login.success")
    assert opened == []


def test_address_from_the_environment(make_app, collector, monkeypatch):
    monkeypatch.setenv("AUDIT_SYSLOG_ADDRESS", address(collector))
    app = make_app()
    with app.app_context():
        audit.record(db.session, "login.success")
    assert receive(collector)["msgid"] == "login.success"


@pytest.mark.parametrize("bad, message", [
    ("localhost", "must be host:port"),
    ("127.0.0.1:0", "no valid port"),
    ("127.0.0.1:70000", "no valid port"),
    ("[::1]", "must be host:port"),
    ("no-such-host.invalid:514", "does not resolve"),
])
def test_bad_address_stops_start_up(make_app, bad, message):
    with pytest.raises(ValueError, match=message):
        make_app(AUDIT_SYSLOG_ADDRESS=bad)


def test_unknown_facility_stops_start_up(make_app):
    with pytest.raises(ValueError, match="AUDIT_SYSLOG_FACILITY"):
        make_app(AUDIT_SYSLOG_ADDRESS="127.0.0.1:514", AUDIT_SYSLOG_FACILITY="local9")


def test_collector_down_does_not_break_the_journal(make_app, collector):
    dead = address(collector)
    collector.close()  # nothing listens there any more
    app = make_app(AUDIT_SYSLOG_ADDRESS=dead)
    with app.app_context():
        for _ in range(3):
            audit.record(db.session, "login.success")
        from app.models import AuditEvent

        assert db.session.query(AuditEvent).count() == 3
