"""Push notices to a person's devices (Web Push, RFC 8030/8291/8292).

A browser that allowed notices hands the page its subscription (``PushSubscription.toJSON()``:
an endpoint at the browser's push service and two keys); the page posts it here and it is kept
per device. One device belongs to one user at a time: a phone shared by a family, or signed
into by another person, is bound to whoever subscribed it last, never left delivering to the
one before. A push service's 404 or 410 means the device unsubscribed: the row goes.

The transport is a plugin (``register_notification_transports``, channel "push"; the built-in
one is app/plugins/web_push.py). Endpoints and keys are the device's secrets: they are never
logged, shown or journaled; a device is named by its row id and its label («Chrome на
Android»)."""
from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import PushSubscription, utcnow
from app.services import audit, vapid
from app.services.channels import ChannelConfigError
from app.services.devices import device_label

if TYPE_CHECKING:
    from app.plugins.interfaces import PushTransport

log = logging.getLogger(__name__)

CHANNEL = "push"
#: Devices one person may subscribe; a dead one goes when its push service says so.
MAX_DEVICES = 20
MAX_ENDPOINT = 1000
#: How long a push service keeps a notice for a device that is off (seconds).
TTL = 2 * 24 * 3600
#: Users whose devices are read in one query.
CHUNK = 500
MAX_TITLE, MAX_BODY = 120, 300

BAD_SUBSCRIPTION = ("Браузер передал неполные данные подписки. Обновите страницу и включите "
                    "уведомления ещё раз.")
TOO_MANY = (f"Уведомления уже включены на {MAX_DEVICES} устройствах. Отключите те, которыми "
            "вы больше не пользуетесь, и попробуйте снова.")
UNAVAILABLE = "Уведомления на устройство сейчас недоступны. Попробуйте позже."


class PushError(ValueError):
    """A refused subscription; the text is safe to show to the user."""


class SubscriptionGone(Exception):
    """The push service says the subscription no longer exists (404 or 410)."""


@dataclass(frozen=True)
class PushContent:
    """What the service worker shows: a title, a line of text, the page a tap opens."""

    title: str
    body: str
    url: str

    def payload(self) -> bytes:
        return json.dumps({"title": self.title[:MAX_TITLE], "body": self.body[:MAX_BODY],
                           "url": self.url}, ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class PushNotice:
    """One notice to one device."""

    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str
    content: PushContent
    ttl: int = TTL


def transport() -> PushTransport | None:
    """The push transport the plugins offer to this app, None when none does (no VAPID key,
    the plugin blocked). Asked each time: a transport keeps no state of its own."""
    hook = current_app.extensions["plugins"].hook
    offered = [t for offers in hook.register_notification_transports() for t in offers
               if getattr(t, "channel", None) == CHANNEL]
    if len(offered) > 1:
        raise ChannelConfigError("more than one push transport is offered: "
                                 + ", ".join(sorted(t.name for t in offered)))
    return offered[0] if offered else None


def available() -> bool:
    return transport() is not None


def public_key(config: Mapping[str, Any] | None = None) -> str:
    """The application server key the page subscribes with (VAPID_PUBLIC_KEY or derived)."""
    config = config if config is not None else current_app.config
    return config.get("VAPID_PUBLIC_KEY") or vapid.public_key(config["VAPID_PRIVATE_KEY"])


# ---------------------------------------------------------------------------------------------
# Subscriptions


def _endpoint(value: Any, production: bool) -> str:
    """A push service's URL: https (http only outside production, for a local test server),
    no credentials, and in production a named host, never an address of the portal's own
    network: the portal posts to it."""
    if not isinstance(value, str) or not value or len(value) > MAX_ENDPOINT:
        raise PushError(BAD_SUBSCRIPTION)
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        raise PushError(BAD_SUBSCRIPTION) from None
    schemes = ("https",) if production else ("https", "http")
    if parts.scheme not in schemes or not host or parts.username or parts.password:
        raise PushError(BAD_SUBSCRIPTION)
    if production:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            raise PushError(BAD_SUBSCRIPTION)
        if "." not in host or host.endswith((".local", ".localhost", ".internal")):
            raise PushError(BAD_SUBSCRIPTION)
    return value


def _key(value: Any, size: int) -> str:
    if not isinstance(value, str) or len(value) > 100:
        raise PushError(BAD_SUBSCRIPTION)
    try:
        raw = vapid.b64url_decode(value)
    except (ValueError, TypeError):
        raise PushError(BAD_SUBSCRIPTION) from None
    if len(raw) != size:
        raise PushError(BAD_SUBSCRIPTION)
    return vapid.b64url_encode(raw)


def parse_subscription(data: Any, production: bool) -> tuple[str, str, str]:
    """(endpoint, p256dh, auth) of a browser's ``PushSubscription.toJSON()``; PushError when
    it is not one (the browser's key must be a point of P-256)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    if not isinstance(data, Mapping) or not isinstance(data.get("keys"), Mapping):
        raise PushError(BAD_SUBSCRIPTION)
    endpoint = _endpoint(data.get("endpoint"), production)
    p256dh = _key(data["keys"].get("p256dh"), 65)
    auth = _key(data["keys"].get("auth"), 16)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), vapid.b64url_decode(p256dh))
    except ValueError:
        raise PushError(BAD_SUBSCRIPTION) from None
    return endpoint, p256dh, auth


def endpoint_of(data: Any, production: bool) -> str:
    if not isinstance(data, Mapping):
        raise PushError(BAD_SUBSCRIPTION)
    return _endpoint(data.get("endpoint"), production)


def subscribe(session: Session, user_id: int, data: Any, user_agent: str | None,
              production: bool = False, ip: str | None = None) -> PushSubscription:
    """Keep (or refresh) this device's subscription for the user; a device bound to another
    user is bound to this one instead. Journaled when the device is new to the user."""
    endpoint, p256dh, auth = parse_subscription(data, production)
    label = device_label(user_agent)
    for attempt in range(2):
        row = session.execute(select(PushSubscription).where(
            PushSubscription.endpoint == endpoint)).scalar_one_or_none()
        previous = row.user_id if row is not None else None
        if previous != user_id and session.scalar(
                select(func.count(PushSubscription.id))
                .where(PushSubscription.user_id == user_id)) >= MAX_DEVICES:
            raise PushError(TOO_MANY)
        if row is None:
            row = PushSubscription(user_id=user_id, endpoint=endpoint)
            session.add(row)
        elif previous != user_id:
            row.user_id, row.created_at, row.last_used_at = user_id, utcnow(), None
        row.p256dh, row.auth, row.device = p256dh, auth, label
        try:
            session.commit()
        except IntegrityError:  # the same device subscribed in parallel: update that row
            session.rollback()
            if attempt:
                raise
            continue
        break
    if previous != user_id:
        details = {"device": label}
        if previous is not None:
            details["taken_from_user"] = previous
        audit.record(session, "push.subscribed", actor_id=user_id, object_type="push",
                     object_id=row.id, ip=ip, details=details)
    return row


def unsubscribe(session: Session, user_id: int, data: Any, production: bool = False,
                ip: str | None = None) -> bool:
    """Forget this device (the browser's own unsubscribe), if it is the user's."""
    endpoint = endpoint_of(data, production)
    row_id = session.scalar(select(PushSubscription.id).where(
        PushSubscription.endpoint == endpoint, PushSubscription.user_id == user_id))
    return row_id is not None and remove_device(session, user_id, row_id, ip) is not None


def remove_device(session: Session, user_id: int, subscription_id: int,
                  ip: str | None = None) -> str | None:
    """Switch one of the user's devices off; returns its label, or None (and changes nothing)
    when the user has no such device, another user's included."""
    row = session.execute(select(PushSubscription).where(
        PushSubscription.id == subscription_id, PushSubscription.user_id == user_id)
    ).scalar_one_or_none()
    if row is None:
        return None
    label = row.device
    session.delete(row)
    session.commit()
    audit.record(session, "push.unsubscribed", actor_id=user_id, object_type="push",
                 object_id=subscription_id, ip=ip, details={"device": label})
    return label


def devices(session: Session, user_id: int) -> list[PushSubscription]:
    return list(session.execute(
        select(PushSubscription).where(PushSubscription.user_id == user_id)
        .order_by(PushSubscription.created_at.desc(), PushSubscription.id.desc())).scalars())


# ---------------------------------------------------------------------------------------------
# Sending


def send(session: Session, notices: Sequence[tuple[int, PushContent]]) -> set[int]:
    """Send each (user id, notice) to every device of that user; returns the positions in
    ``notices`` that reached at least one device. Devices the push service calls gone are
    deleted (and skipped for the rest), the others get their last use; the caller commits.
    A query per CHUNK users, whatever the number of devices."""
    if not notices:
        return set()
    chosen = transport()
    if chosen is None:
        return set()
    devices_of: dict[int, list] = {}
    for users in _chunks(sorted({user_id for user_id, _ in notices})):
        for row in session.execute(
                select(PushSubscription.id, PushSubscription.user_id, PushSubscription.endpoint,
                       PushSubscription.p256dh, PushSubscription.auth)
                .where(PushSubscription.user_id.in_(users)).order_by(PushSubscription.id)):
            devices_of.setdefault(row.user_id, []).append(row)
    reached, gone, used = set(), set(), set()
    for position, (user_id, content) in enumerate(notices):
        for row in devices_of.get(user_id, ()):
            if row.id in gone:
                continue
            try:
                chosen.send(PushNotice(row.id, row.endpoint, row.p256dh, row.auth, content))
            except SubscriptionGone:
                gone.add(row.id)
                continue
            except Exception as exc:  # a device that failed now may take the next notice
                log.warning("push to device #%s failed: %s", row.id, type(exc).__name__)
                continue
            reached.add(position)
            used.add(row.id)
    if gone:
        log.info("push: %d device(s) gone, removed", len(gone))
    for ids in _chunks(sorted(gone)):
        session.execute(delete(PushSubscription).where(PushSubscription.id.in_(ids)))
    now = utcnow()
    for ids in _chunks(sorted(used - gone)):
        session.execute(update(PushSubscription).where(PushSubscription.id.in_(ids))
                        .values(last_used_at=now))
    return reached


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[start:start + CHUNK] for start in range(0, len(ids), CHUNK)]
