"""Built-in plugin: the development outbox. The code channels and notification transports
``dev-sms`` and ``dev-email`` write each message as a JSON file into DEV_OUTBOX_DIR and log it
to the console, so a developer can sign up without a real SMS provider or SMTP server. They are
chosen only when no real channel is configured, and production settings refuse them."""
from __future__ import annotations

import datetime as dt
import json
import logging
from contextlib import contextmanager
from pathlib import Path

from flask import current_app

from app.plugins.hookspecs import hookimpl

log = logging.getLogger("lk_portal.dev_outbox")


def outbox_folder() -> Path:
    """DEV_OUTBOX_DIR of the app at work, read when a message is written: the plugin module
    is shared by every app of the process, so it keeps no folder of its own."""
    return Path(current_app.config["DEV_OUTBOX_DIR"])


class OutboxChannel:
    def __init__(self, name: str):
        self.name = name

    @property
    def folder(self) -> Path:
        return outbox_folder()

    def send(self, destination: str, code: str, purpose: str) -> None:
        self.write(destination, f"Код НЭСК: {code}", purpose=purpose)

    def write(self, destination: str, text: str, **extra) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.timezone.utc)
        record = {"at": now.isoformat(), "channel": self.name, "to": destination,
                  "text": text, **extra}
        path = self.folder / f"{now:%Y%m%dT%H%M%S%f}-{self.name}.json"
        path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        log.warning("DEV OUTBOX (не для продакшена) %s -> %s: %s", self.name, destination, text)


class OutboxTransport(OutboxChannel):
    def __init__(self, name: str, channel: str):
        super().__init__(name)
        self.channel = channel

    def send(self, notice) -> None:
        """The text; for a letter also whether it has an HTML part and its attachments' names."""
        extra = {}
        if self.channel == "email":
            extra = {"html": bool(getattr(notice, "html", None)),
                     "attachments": [a[0] for a in getattr(notice, "attachments", ())]}
        self.write(notice.to, notice.text, subject=notice.subject, **extra)


class OutboxBulkMailer:
    """Mailings into the outbox folder, one .eml file a message (open it in a mail client)."""

    name = "dev-email"
    development = True

    @property
    def folder(self) -> Path:
        return outbox_folder()

    @contextmanager
    def connect(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        yield self

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        (self.folder / f"{now:%Y%m%dT%H%M%S%f}-mailing.eml").write_bytes(message)


@hookimpl
def register_otp_channels():
    return [OutboxChannel("dev-sms"), OutboxChannel("dev-email")]


@hookimpl
def register_notification_transports():
    return [OutboxTransport("dev-sms", "sms"), OutboxTransport("dev-email", "email")]


@hookimpl
def register_bulk_mailers():
    return [OutboxBulkMailer()]
