"""lk-audit-syslog: every event of the portal's audit journal, sent to a syslog collector (a SIEM)
as one RFC 5424 message over UDP, so the supplier's security team sees sign-ins and access to
personal data (152-FZ) where it watches everything else.

Settings (``app.config`` first, then the environment):

- ``AUDIT_SYSLOG_ADDRESS``: ``host:port`` (``[::1]:514`` for IPv6) of the collector; unset or
  empty, the plugin does nothing. A malformed or unresolvable address stops the portal at
  start-up instead of losing the feed quietly.
- ``AUDIT_SYSLOG_FACILITY``: syslog facility name, default ``authpriv``.
- ``AUDIT_SYSLOG_MAX_BYTES``: largest datagram, default 8192; a longer event is sent without its
  ``details`` (marked ``"truncated": true``) rather than cut mid-JSON.

The message: ``<PRI>1 TIMESTAMP HOSTNAME lk-portal PROCID ACTION [lkAudit@32473 id=.. at=..
actor=.. objectType=.. objectId=.. ip=..] BOM{json of the event}``. The journal masks secrets
before any plugin sees an event; this plugin masks them again, in nested values too, because a
SIEM keeps what it receives for years.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import socket
from typing import Any

from flask import current_app

from app.plugins import hookimpl
from app.services.audit import SECRET_KEYS

__version__ = "0.1.0"

log = logging.getLogger(__name__)

EXTENSION = "audit_syslog"
APP_NAME = "lk-portal"
#: Structured-data id; 32473 is the private enterprise number reserved for examples (RFC 5612).
SD_ID = "lkAudit@32473"
DEFAULT_MAX_BYTES = 8192
BOM = "\ufeff"

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "authpriv": 10,
    **{f"local{n}": 16 + n for n in range(8)},
}
WARNING, NOTICE = 4, 5

#: Keys whose values never leave the portal: the journal's own list, and keys ending in these.
SECRET_SUFFIXES = ("password", "otp", "token", "secret", "api_key", "apikey")
_FAILURE = re.compile(r"fail|denied|refused|blocked|locked", re.IGNORECASE)
_NOT_PRINTUSASCII = re.compile(r"[^\x21-\x7e]")


def parse_address(value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6 address]:port`` -> (host, port)."""
    match = re.fullmatch(r"\[([^\]]+)\]:(\d+)|([^:\s]+):(\d+)", value.strip())
    if not match:
        raise ValueError(f"AUDIT_SYSLOG_ADDRESS must be host:port, not {value!r}")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 0 < port < 65536:
        raise ValueError(f"AUDIT_SYSLOG_ADDRESS has no valid port: {value!r}")
    return host, port


def mask(value: Any) -> Any:
    """Replace the values of secret-looking keys, at any depth."""
    if isinstance(value, dict):
        return {k: "***" if _is_secret(k) else mask(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask(v) for v in value]
    return value


def _is_secret(key: Any) -> bool:
    key = str(key).lower()
    return key in SECRET_KEYS or key.endswith(SECRET_SUFFIXES)


def _header_field(value: Any, limit: int) -> str:
    text = _NOT_PRINTUSASCII.sub("_", str(value or ""))[:limit]
    return text or "-"


def _sd_value(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


class SyslogSender:
    """Formats audit events as RFC 5424 messages and sends each as one UDP datagram."""

    def __init__(self, host: str, port: int, facility: str = "authpriv",
                 max_bytes: int = DEFAULT_MAX_BYTES):
        if facility not in FACILITIES:
            raise ValueError(f"AUDIT_SYSLOG_FACILITY must be one of {', '.join(FACILITIES)}")
        self.address = (host, port)
        self.facility = FACILITIES[facility]
        self.max_bytes = max_bytes
        try:
            family, _type, _proto, _name, sockaddr = socket.getaddrinfo(
                host, port, type=socket.SOCK_DGRAM)[0]
        except socket.gaierror as exc:
            raise ValueError(
                f"AUDIT_SYSLOG_ADDRESS {host}:{port} does not resolve: {exc}") from None
        self.family, self.sockaddr = family, sockaddr
        self.hostname = _header_field(socket.gethostname(), 255)

    def format(self, event: dict[str, Any]) -> bytes:
        event = mask(dict(event))
        severity = WARNING if _FAILURE.search(str(event.get("action", ""))) else NOTICE
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
        params = {"id": event.get("id"), "at": event.get("at"), "actor": event.get("actor_id"),
                  "objectType": event.get("object_type"), "objectId": event.get("object_id"),
                  "ip": event.get("ip")}
        sd = " ".join(f'{k}="{_sd_value(v)}"' for k, v in params.items() if v is not None)
        header = (
            f"<{self.facility * 8 + severity}>1 {now.replace('+00:00', 'Z')} {self.hostname} "
            f"{APP_NAME} {os.getpid()} {_header_field(event.get('action'), 32)} "
            f"[{SD_ID}{' ' + sd if sd else ''}] "
        )
        message = (header + BOM + self._json(event)).encode("utf-8")
        if len(message) > self.max_bytes:
            shorter = {**event, "details": {"truncated": True}}
            message = (header + BOM + self._json(shorter)).encode("utf-8")[: self.max_bytes]
        return message

    @staticmethod
    def _json(event: dict[str, Any]) -> str:
        return json.dumps(event, ensure_ascii=False, default=str, sort_keys=True,
                          separators=(",", ":"))

    def send(self, event: dict[str, Any]) -> None:
        datagram = self.format(event)
        try:
            with socket.socket(self.family, socket.SOCK_DGRAM) as sock:
                sock.sendto(datagram, self.sockaddr)
        except OSError as exc:
            log.warning("audit event %s not sent to syslog %s:%s: %s",
                        event.get("id"), *self.address, exc)


def _setting(app, name: str, default: str | None = None) -> str | None:
    value = app.config[name] if name in app.config else os.environ.get(name)
    return default if value in (None, "") else str(value)


@hookimpl
def configure(app):
    """Read AUDIT_SYSLOG_* once per app; without an address, stay idle."""
    address = _setting(app, "AUDIT_SYSLOG_ADDRESS")
    if not address:
        app.extensions[EXTENSION] = None
        return
    host, port = parse_address(address)
    app.extensions[EXTENSION] = SyslogSender(
        host, port,
        facility=_setting(app, "AUDIT_SYSLOG_FACILITY", "authpriv"),
        max_bytes=int(_setting(app, "AUDIT_SYSLOG_MAX_BYTES", str(DEFAULT_MAX_BYTES))),
    )
    log.info("audit events go to syslog at %s:%s", host, port)


@hookimpl
def audit_event(event):
    sender = current_app.extensions.get(EXTENSION)
    if sender is not None:
        sender.send(event)
