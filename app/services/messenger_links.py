"""A resident's cabinet linked to a chat with the portal's bot (a messenger plugin such as
plugins/telegram_bot), never by a password typed into the chat.

- The profile issues a one-time link (``https://t.me/<bot>?start=<token>``): the token is
  random, only its SHA-256 is stored, it expires in 15 minutes and its first use spends it. A
  new link voids the user's earlier unused ones.
- The bot redeems it (``/start <token>``): the chat is tied to the cabinet that issued the
  link. A chat serves one cabinet and a cabinet one chat per messenger; linking another chat
  replaces the first.
- Either side ends it: «Отключить» in the profile or in the bot.
- The bot looks its user up by the chat: an active resident, else nobody (the bot then tells
  how to link). What it shows is the user's own accounts, by the residents' rule
  (app.services.accounts.bound_account).
- Notices: a messenger is a notification transport (``channel = "messenger"``, offered through
  ``register_notification_transports``, app.services.channels); the resident chooses per topic
  whether notices also go to the chat (``MessengerLink.notify_<topic>``), and
  app.services.notices sends them there.
- The conversation in progress (awaiting a reading for a meter) is kept on the link row with an
  expiry, not in the chat.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import segno
from flask import has_app_context
from sqlalchemy import delete, exists, false, select, update
from sqlalchemy.orm import Session

from app.models import MessengerLink, MessengerLinkToken, NoticeTopic, PortalUser, utcnow
from app.services import audit
from app.services.channels import messenger_transports
from app.services.notify import Notice
from app.services.sessions import token_hash

log = logging.getLogger(__name__)

TOKEN_LIFETIME = dt.timedelta(minutes=15)
#: How long the bot waits for the next step of a conversation (a reading, a confirmation).
STATE_LIFETIME = dt.timedelta(minutes=15)
#: Telegram's deep-link parameter allows 1-64 characters of A-Z, a-z, 0-9, _ and -.
TOKEN_BYTES = 24

WRONG = "Ссылка для подключения недействительна. Получите новую в профиле личного кабинета."
EXPIRED = ("Ссылка для подключения устарела (она действует 15 минут). Получите новую в профиле "
           "личного кабинета.")
USED = ("Эта ссылка для подключения уже использована. Если это были не вы, отключите бота в "
        "профиле личного кабинета и получите новую ссылку.")
TAKEN = ("Этот чат уже подключён к другому личному кабинету. Сначала отключите его командой "
         "/stop.")
NOT_RESIDENT = ("Бот работает с личным кабинетом жителя. Войдите в кабинет жителя и подключите "
                "бота там.")


class LinkError(Exception):
    """A link refused; the text is safe to show in the chat."""


@dataclass(frozen=True)
class IssuedLink:
    """A link shown once, on the page that issued it (the token is kept nowhere in clear)."""

    url: str
    expires_at: dt.datetime
    bot_title: str

    @property
    def minutes(self) -> int:
        return int(TOKEN_LIFETIME.total_seconds() // 60)

    @property
    def qr_svg(self) -> str:
        """The link as a QR code, to open it with the phone's camera from a computer."""
        return segno.make(self.url, error="m").svg_inline(scale=4, dark="#1b2430")


@dataclass(frozen=True)
class Messenger:
    """A messenger the portal has a bot in, and the user's link to it (None: not linked)."""

    name: str
    title: str
    link: MessengerLink | None

    @property
    def topics(self) -> dict[str, bool]:
        """Which notices (NoticeTopic) also go to the chat."""
        return topics(self.link)

    @property
    def topic_labels(self) -> list[str]:
        return [NoticeTopic.label(topic) for topic, on in self.topics.items() if on]


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive UTC times."""
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def transport(messenger: str):
    """The bot's transport for ``messenger``, or None when no plugin offers it."""
    return messenger_transports().get(messenger)


# ---------------------------------------------------------------------------------------------
# Linking from the profile, redeeming in the bot


def issue_link(session: Session, user: PortalUser, messenger: str,
               ip: str | None = None) -> IssuedLink:
    """A new one-time link for ``user``; the earlier unused ones stop working."""
    bot = transport(messenger)
    if bot is None:
        raise LinkError("Бот недоступен.")
    if user.kind != "resident":
        raise LinkError(NOT_RESIDENT)
    now = utcnow()
    session.execute(delete(MessengerLinkToken).where(
        MessengerLinkToken.user_id == user.id, MessengerLinkToken.messenger == messenger))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = MessengerLinkToken(user_id=user.id, messenger=messenger, token_hash=token_hash(token),
                             created_at=now, expires_at=now + TOKEN_LIFETIME)
    session.add(row)
    session.commit()
    audit.record(session, "messenger.link_issued", actor_id=user.id, object_type="user",
                 object_id=user.id, ip=ip, details={"messenger": messenger})
    return IssuedLink(bot.link_url(token), row.expires_at, getattr(bot, "title", messenger))


def redeem(session: Session, messenger: str, chat_id: str, token: str) -> PortalUser:
    """Tie the chat to the cabinet that issued ``token``; raises LinkError with the reason
    (wrong, expired, used, the chat serving another cabinet). The token is spent by one
    conditional UPDATE, so two chats racing for it cannot both win."""
    chat_id = str(chat_id)
    now = utcnow()
    row = session.execute(select(MessengerLinkToken).where(
        MessengerLinkToken.token_hash == token_hash(token or ""),
        MessengerLinkToken.messenger == messenger)).scalar_one_or_none()
    if row is None:
        raise LinkError(WRONG)
    if row.used_at is not None:
        raise LinkError(USED)
    if _aware(row.expires_at) <= now:
        raise LinkError(EXPIRED)
    user = session.get(PortalUser, row.user_id)
    if user is None or not user.active or user.kind != "resident":
        raise LinkError(WRONG)
    current = chat_link(session, messenger, chat_id)
    if current is not None and current.user_id != user.id:
        raise LinkError(TAKEN)
    spent = session.execute(
        update(MessengerLinkToken)
        .where(MessengerLinkToken.id == row.id, MessengerLinkToken.used_at.is_(None))
        .values(used_at=now)).rowcount
    if spent != 1:
        session.rollback()
        raise LinkError(USED)
    session.execute(delete(MessengerLink).where(MessengerLink.user_id == user.id,
                                                MessengerLink.messenger == messenger))
    session.add(MessengerLink(user_id=user.id, messenger=messenger, chat_id=chat_id,
                              linked_at=now))
    session.commit()
    audit.record(session, "messenger.linked", actor_id=user.id, object_type="user",
                 object_id=user.id, details={"messenger": messenger})
    return user


def unlink(session: Session, user_id: int, messenger: str, *, by: str,
           ip: str | None = None) -> bool:
    """End the user's link to ``messenger`` (``by`` "profile" or "bot"); the chat is told when
    it ends from the profile. False when there was none."""
    link = session.execute(select(MessengerLink).where(
        MessengerLink.user_id == user_id, MessengerLink.messenger == messenger)
    ).scalar_one_or_none()
    if link is None:
        return False
    chat_id = link.chat_id
    session.delete(link)
    session.commit()
    audit.record(session, "messenger.unlinked", actor_id=user_id, object_type="user",
                 object_id=user_id, ip=ip, details={"messenger": messenger, "by": by})
    if by == "profile":
        send(messenger, chat_id, "Бот отключён",
             "Бот отключён от личного кабинета НЭСК. Подключить его снова можно в профиле "
             "личного кабинета.")
    return True


def chat_link(session: Session, messenger: str, chat_id: str) -> MessengerLink | None:
    """The link of a chat, whoever it serves."""
    return session.execute(select(MessengerLink).where(
        MessengerLink.messenger == messenger, MessengerLink.chat_id == str(chat_id))
    ).scalar_one_or_none()


def user_for_chat(session: Session, messenger: str, chat_id: str) -> MessengerLink | None:
    """The link of a chat whose user may use the bot (an active resident), with the user
    loaded; None for a chat nobody linked."""
    return session.execute(
        select(MessengerLink).join(PortalUser, PortalUser.id == MessengerLink.user_id)
        .where(MessengerLink.messenger == messenger, MessengerLink.chat_id == str(chat_id),
               PortalUser.active.is_(True), PortalUser.kind == "resident")
    ).scalar_one_or_none()


def messengers(session: Session, user: PortalUser) -> list[Messenger]:
    """The profile's «Telegram-бот» block: each messenger offered, and the user's link to it
    (one query)."""
    offered = messenger_transports()
    if not offered or user.kind != "resident":
        return []
    links = {link.messenger: link for link in session.execute(
        select(MessengerLink).where(MessengerLink.user_id == user.id)).scalars()}
    return [Messenger(name, getattr(bot, "title", name), links.get(name))
            for name, bot in sorted(offered.items())]


# ---------------------------------------------------------------------------------------------
# The conversation in progress


def state(link: MessengerLink) -> dict[str, Any] | None:
    """The step the chat is in, or None (none, or expired)."""
    if not link.state or link.state_expires_at is None or \
            _aware(link.state_expires_at) <= utcnow():
        return None
    try:
        value = json.loads(link.state)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def set_state(session: Session, link: MessengerLink, value: dict[str, Any] | None) -> None:
    """Remember the next step (None: forget it)."""
    link.state = json.dumps(value, ensure_ascii=False) if value else None
    link.state_expires_at = utcnow() + STATE_LIFETIME if value else None
    session.commit()


# ---------------------------------------------------------------------------------------------
# Notices to the chat


def topic_field(topic: str) -> str:
    if topic not in NoticeTopic.labels:
        raise ValueError(f"unknown notice topic {topic!r}")
    return f"notify_{topic}"


def topics(link: MessengerLink | None) -> dict[str, bool]:
    return {topic: bool(link is not None and getattr(link, topic_field(topic)))
            for topic in NoticeTopic.values()}


def linked(session: Session, user: PortalUser) -> list[Messenger]:
    """The messengers the user linked a chat in (of those the portal has a bot in)."""
    return [m for m in messengers(session, user) if m.link is not None]


def chat_field(topic: str) -> str:
    """The profile's notices form: the field of a topic's notices to the linked chats."""
    return f"chat_{topic}"


def chat_settings(chats: list[Messenger]) -> dict[str, bool]:
    """The form's values for the linked chats (their topics are set together)."""
    first = chats[0].link if chats else None
    return {chat_field(topic): on for topic, on in topics(first).items()}


def set_chat_settings(session: Session, chats: list[Messenger], form: dict[str, Any]) -> None:
    for chat in chats:
        set_topics(session, chat.link.user_id, chat.name,
                   {topic: bool(form.get(chat_field(topic))) for topic in NoticeTopic.values()})


def set_topics(session: Session, user_id: int, messenger: str, chosen: dict[str, bool]) -> bool:
    """Save which topics also go to the chat (a topic not given: off); False when the user
    has no link."""
    link = session.execute(select(MessengerLink).where(
        MessengerLink.user_id == user_id, MessengerLink.messenger == messenger)
    ).scalar_one_or_none()
    if link is None:
        return False
    for topic in NoticeTopic.values():
        setattr(link, topic_field(topic), bool(chosen.get(topic)))
    session.commit()
    return True


def wants(topic: str):
    """SQL over PortalUser: a chat linked to a messenger the portal has a bot in takes
    notices on ``topic`` (false when no bot is configured)."""
    offered = list(messenger_transports()) if has_app_context() else []
    if not offered:
        return false()
    return exists().where(MessengerLink.user_id == PortalUser.id,
                          MessengerLink.messenger.in_(offered),
                          getattr(MessengerLink, topic_field(topic)).is_(True))


def chats(session: Session, user_ids: list[int | None], topic: str | None
          ) -> dict[int, list[tuple[str, str]]]:
    """Per user, the (messenger, chat id) pairs that take notices on ``topic``: one query for
    a whole batch; nothing for an answer to a request (no topic) or without a bot."""
    offered = list(messenger_transports())
    ids = sorted({uid for uid in user_ids if uid is not None})
    if topic is None or not offered or not ids:
        return {}
    found: dict[int, list[tuple[str, str]]] = {}
    for user_id, messenger, chat_id in session.execute(
            select(MessengerLink.user_id, MessengerLink.messenger, MessengerLink.chat_id)
            .where(MessengerLink.user_id.in_(ids), MessengerLink.messenger.in_(offered),
                   getattr(MessengerLink, topic_field(topic)).is_(True))):
        found.setdefault(user_id, []).append((messenger, chat_id))
    return found


def send(messenger: str, chat_id: str, subject: str, text: str) -> bool:
    """One message to a chat through the messenger's transport; a failure is logged, never
    raised (the notice or the unlinking it reports stands)."""
    bot = transport(messenger)
    if bot is None:
        return False
    try:
        bot.send(Notice(str(chat_id), subject, text))
    except Exception:
        log.exception("message to a %s chat failed", messenger)
        return False
    return True
