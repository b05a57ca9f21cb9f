"""Delivery of event notices: who may be told on which channels, the journal that keeps anyone
from being told twice, and the sending (e-mail, SMS, push). What each event tells and to whom
is in app.services.notice_events; the wordings in app.services.notice_wordings.

- A notice on a topic of the profile (``NoticeTopic``: bills, readings, payments) goes to the
  channels the user chose and has a real contact for (push: a subscribed device,
  app.services.push); the answers to a customer's own request go by e-mail to the requester
  whatever the topics (never to a placeholder address), and by SMS to the requester's phone
  when the wording has an SMS text. A push carries the notice's title and its short ``push``
  line and opens the notice's link. A resident who linked the portal's bot in a messenger
  (app.services.messenger_links) chooses per topic whether the notice also goes to the chat.
- Staff's wording that fails on real data falls back to the default rather than leave the
  customer uninformed.
- What was told is journaled in ``notice_log`` under a unique (code, user, object) key, claimed
  before sending, so a scheduled job run twice (or by two workers) tells nobody twice. A notice
  that reached no channel is forgotten, so the next run tries again.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import String, and_, cast, delete, exists, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import NoticeLog, PortalUser, PushSubscription, utcnow
from app.services import messenger_links, notice_wordings, push
from app.services.notice_wordings import Letter
from app.services.notify import send_notice

log = logging.getLogger(__name__)

DEFAULT_TZ = "Europe/Moscow"
#: What separates a letter's text from its footer (notice_wordings.compose).
FOOTER_RULE = "\n\n--\n"


@dataclass(frozen=True)
class Recipient:
    user_id: int | None
    name: str
    email: str | None  # None: not by e-mail
    phone: str | None  # None: not by SMS
    push: bool = False  # to the user's subscribed devices, if any


@dataclass
class Outgoing:
    """One notice to one recipient, about the objects ``keys`` (journaled each)."""

    recipient: Recipient
    keys: list[str]
    values: dict[str, Any]
    #: Attachments of the e-mail, made only once the notice is claimed.
    attach: Callable[[], tuple[tuple[str, str, bytes], ...]] | None = None
    channels: list[str] = field(default_factory=list)


def app_config(config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The settings given, else the running app's."""
    return config if config is not None else current_app.config


def full_name(user: PortalUser) -> str:
    return " ".join(p for p in ((user.first_name or "").strip(), (user.last_name or "").strip())
                    if p)


def topic_recipient(user: PortalUser, topic: str) -> Recipient:
    """Where a notice on ``topic`` may go: the channels the user chose and can be reached on
    (for push, the devices are looked up when sending)."""
    return Recipient(user.id, full_name(user),
                     user.deliverable_email if user.wants_notice(topic, "email") else None,
                     user.phone if user.wants_notice(topic, "sms") else None,
                     user.wants_notice(topic, "push"))


def wants_any(topic: str):
    """SQL: the user takes notices on ``topic`` by at least one channel they can be reached on
    (a chat linked to the portal's bot among them)."""
    by_email = getattr(PortalUser, f"notify_{topic}_email")
    by_sms = getattr(PortalUser, f"notify_{topic}_sms")
    by_push = getattr(PortalUser, f"notify_{topic}_push")
    has_device = exists().where(PushSubscription.user_id == PortalUser.id)
    return and_(PortalUser.active.is_(True),
                or_(and_(by_email.is_(True), PortalUser.email_is_placeholder.is_(False)),
                    and_(by_sms.is_(True), PortalUser.phone.isnot(None)),
                    and_(by_push.is_(True), has_device),
                    messenger_links.wants(topic)))


def not_told(code: str, key) -> Any:
    """SQL: the user has not been told ``code`` about ``key`` (a string or an expression)."""
    return ~exists().where(NoticeLog.code == code, NoticeLog.user_id == PortalUser.id,
                           NoticeLog.object_key == key)


def object_key(prefix: str, column) -> Any:
    return literal(f"{prefix}:") + cast(column, String)


def requester(user: PortalUser) -> Recipient:
    """The requester's real e-mail (never a placeholder) and phone, whatever the topics."""
    return Recipient(user.id, full_name(user), user.deliverable_email, user.phone)


def _claim(session: Session, code: str, batch: list[Outgoing]) -> list[tuple[Outgoing, list[int]]]:
    """Journal the notices before sending; those another run journaled first are dropped."""
    for attempt in range(2):
        rows = [{"code": code, "user_id": out.recipient.user_id, "object_key": key,
                 "sent_at": utcnow()} for out in batch for key in out.keys]
        if not rows:
            return []
        try:
            ids = session.scalars(insert(NoticeLog).returning(NoticeLog.id,
                                                              sort_by_parameter_order=True),
                                  rows).all()
            session.commit()
        except IntegrityError:
            session.rollback()
            if attempt:
                return []
            taken = set(session.execute(
                select(NoticeLog.user_id, NoticeLog.object_key).where(
                    NoticeLog.code == code,
                    NoticeLog.user_id.in_(list({o.recipient.user_id for o in batch})))).all())
            batch = [o for o in batch
                     if not any((o.recipient.user_id, k) in taken for k in o.keys)]
            continue
        claimed, position = [], 0
        for out in batch:
            claimed.append((out, list(ids[position:position + len(out.keys)])))
            position += len(out.keys)
        return claimed
    return []


def deliver(session: Session, code: str, batch: list[Outgoing],
            config: Mapping[str, Any] | None = None) -> int:
    """Claim, render and send a batch of notices of one kind; returns how many reached the
    recipient on at least one channel."""
    if not batch:
        return 0
    config = app_config(config)
    claimed = _claim(session, code, batch)
    if not claimed:
        return 0
    staff_wording = notice_wordings.wording(session, code)
    fallback = notice_wordings.default_wording(code)
    common = {"portal_url": portal_url(config), "supplier_phone": config.get("SUPPLIER_PHONE", "")}
    pushes: list[tuple[Outgoing, tuple[int, push.PushContent]]] = []
    chats = messenger_links.chats(session, [out.recipient.user_id for out, _ in claimed],
                                  notice_wordings.NOTICES[code].topic)
    for out, _log_ids in claimed:
        values = {**common, "name": out.recipient.name, **out.values}
        try:
            letter = notice_wordings.compose(code, staff_wording, values, config)
        except Exception:  # staff's wording failed on real data: never leave them untold
            log.exception("notice template %s failed on real data: the default is used", code)
            letter = notice_wordings.compose(code, fallback, values, config)
        if out.recipient.email:
            attachments = ()
            if out.attach is not None:
                try:
                    attachments = out.attach()
                except Exception:
                    log.exception("attachment of notice %s failed: sent without it", code)
            if send_notice("email", out.recipient.email, letter.subject, letter.text,
                           html=letter.html, attachments=attachments):
                out.channels.append("email")
        if out.recipient.phone and letter.sms:
            if send_notice("sms", out.recipient.phone, letter.subject, letter.sms):
                out.channels.append("sms")
        for messenger, chat_id in chats.get(out.recipient.user_id, ()):
            if messenger_links.send(messenger, chat_id, letter.subject, chat_text(letter)):
                out.channels.append(messenger)
        if out.recipient.push and out.recipient.user_id is not None:
            pushes.append((out, (out.recipient.user_id, push_content(code, letter, values))))
    for position in push.send(session, [notice for _, notice in pushes]):
        pushes[position][0].channels.append("push")
    outcome: dict[str, list[int]] = defaultdict(list)
    for out, log_ids in claimed:
        outcome[",".join(out.channels)].extend(log_ids)
    for channels, ids in outcome.items():
        if not channels:  # reached nobody: forget it, the next run tries again
            session.execute(delete(NoticeLog).where(NoticeLog.id.in_(ids)))
        else:
            session.execute(update(NoticeLog).where(NoticeLog.id.in_(ids))
                            .values(channels=channels))
    session.commit()
    return sum(1 for out, _ in claimed if out.channels)


def chat_text(letter: Letter) -> str:
    """The letter's plain text for a chat: without the e-mail's footer, which the chat's
    own settings (the profile) replace."""
    return letter.text.rsplit(FOOTER_RULE, 1)[0].strip()


def push_content(code: str, letter: Letter, values: Mapping[str, Any]) -> push.PushContent:
    """The notice on a device: its title, its short push line (the subject when it has none
    or it fails), and the page of its link, on the portal's own address."""
    body = letter.subject
    try:
        body = notice_wordings.push_line(code, values) or body
    except Exception:  # a value missing in real data: the subject still says it
        log.exception("push text of notice %s failed: the subject is used", code)
    link = urlsplit(str(values.get("link") or ""))
    url = (link.path or "/") + (f"?{link.query}" if link.query else "")
    return push.PushContent(notice_wordings.NOTICES[code].title, body, url)


def portal_url(config: Mapping[str, Any]) -> str:
    return str(config.get("PORTAL_URL") or "").rstrip("/")
