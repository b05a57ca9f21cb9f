"""Telling an account's owner that someone is guessing the password (ASVS 5 V6.3.5): once per
burst, not once per failure.

A burst begins when the account's failed sign-ins (app.services.signin_guard, from any
address) reach the point where its sign-ins from new addresses need the «not a robot» check.
The first process to see it claims the burst in the rate-limit storage (an atomic counter that
lives ``QUIET`` seconds), so a guessing botnet spread over several web processes still yields
one notice a day; the notice journal's unique key guards the sending too. The notice
(``signin_failures`` in app.services.notice_wordings, editable by staff) goes as a Celery job:
to the owner's real e-mail, phone and subscribed devices, whatever their notice topics, as
security notices do; a sign-in never waits for SMTP."""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy.orm import Session

from app.models import PortalUser
from app.services import dispatch, notices
from app.services.throttle import signin_throttle

log = logging.getLogger(__name__)

CODE = "signin_failures"
#: Seconds after a notice during which the same account's failures make no new one.
QUIET = 24 * 3600
#: Where each kind of user changes the password (none: the branch issues a new one).
PASSWORD_PAGES = {"resident": "/cabinet/profile/password", "staff": "/resetmypassword/form"}


def _burst_key(user_id: int) -> str:
    return f"signin-alerted:{user_id}"


def note_failures(user_id: int, failures: int) -> bool:
    """After a failed sign-in to an existing account: start the owner's notice when this
    failure begins a burst. Returns whether it did."""
    guard = signin_throttle()
    if failures < guard.rules.challenge_after:
        return False
    storage = guard.limiter.storage
    if storage.incr(_burst_key(user_id), QUIET) != 1:
        return False
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        dispatch.enqueue("lk_portal.send_signin_alert", user_id, failures, at)
    except Exception:  # the broker is down: the next failure tries again
        log.exception("the notice of failed sign-ins could not be queued")
        storage.clear(_burst_key(user_id))
        return False
    return True


def _local(at: dt.datetime, config: Mapping[str, Any]) -> str:
    zone = ZoneInfo(config.get("BABEL_DEFAULT_TIMEZONE") or notices.DEFAULT_TZ)
    return at.astimezone(zone).strftime("%d.%m.%Y %H:%M")


def tell_owner(session: Session, user_id: int, attempts: int, at: dt.datetime,
               config: Mapping[str, Any] | None = None) -> int:
    """Send the notice of a burst of failed sign-ins to every channel the owner can be reached
    on; returns 1 when it reached one of them, 0 otherwise (also for a closed account)."""
    config = config if config is not None else current_app.config
    user = session.get(PortalUser, user_id)
    if user is None or not user.active:
        return 0
    page = PASSWORD_PAGES.get(user.kind)
    name = " ".join(part for part in ((user.first_name or "").strip(),
                                      (user.last_name or "").strip()) if part)
    recipient = notices.Recipient(user.id, name, user.deliverable_email, user.phone, push=True)
    values = {"attempts": attempts, "at": _local(at, config),
              "link": f"{notices.portal_url(config)}{page}" if page else "",
              "by_code": user.kind == "resident"}
    burst = f"burst:{at.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%S')}"
    return notices.deliver(session, CODE, [notices.Outgoing(recipient, [burst], values)],
                           config)
