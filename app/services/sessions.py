"""Sign-ins that really end: every browser session and every mobile app sign-in is a row.

A sign-in gets a random token; the browser keeps it in its session and «Запомнить меня» cookie
(PortalUser.get_id), the app in its tokens' ``sid`` claim. The row keeps only its SHA-256: the
token has 256 random bits, so no key or salt is needed to make a stolen table worthless. The
security manager finds the row with the user in one query (app.security) and refuses one that
has ended or expired; so a copied cookie or token stops working the moment its row ends: on
sign-out, from the list of sign-ins in the profile, after a new password or a withdrawn consent.

``last_used_at`` is written at most once a TOUCH_EVERY per sign-in, not on every page view. A
browser session without «Запомнить меня» ends after ``idle`` without use (PERMANENT_SESSION_
LIFETIME); the others at a fixed term (the remember cookie's, the refresh token's). Rows that
ended or expired are deleted by ``prune`` (`flask sessions prune`, daily by Celery beat).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from app.models import UserSession, utcnow
from app.services import audit
from app.services.devices import device_label

WEB, API = "web", "api"
#: How often a sign-in's «last used» is written: a page view costs no write within it.
TOUCH_EVERY = dt.timedelta(minutes=1)
#: Bulk writes leave loaded rows alone (the commit after them expires those): SQLite's
#: timestamps come back without a zone, which Python cannot compare with an aware "now".
UNSYNCHRONIZED = {"synchronize_session": False}

@dataclass(frozen=True)
class Opened:
    """A sign-in just opened: its row and the token to hand to the browser or the app."""

    id: int
    token: str


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, user_id: int, kind: str, lifetime: dt.timedelta, *,
                 remember: bool = False, user_agent: str | None = None,
                 ip: str | None = None) -> Opened:
    """Open a sign-in of ``lifetime`` (for a browser without «Запомнить меня»: its idle
    time, renewed with use) and return its token, which is nowhere else."""
    token = new_token()
    now = utcnow()
    row = UserSession(user_id=user_id, kind=kind, token_hash=token_hash(token),
                      remember=remember, device=device_label(user_agent, app=kind == API), ip=ip,
                      created_at=now, last_used_at=now, expires_at=now + lifetime)
    session.add(row)
    session.commit()
    return Opened(row.id, token)


def live(now: dt.datetime):
    """The condition of a sign-in that still opens the cabinet."""
    return and_(UserSession.ended_at.is_(None), UserSession.expires_at > now)


def touch(session: Session, session_id: int, ip: str | None,
          idle: dt.timedelta | None = None) -> None:
    """Note a sign-in's use (the caller does so once a TOUCH_EVERY); ``idle`` moves the end
    of a sign-in that ends when unused."""
    now = utcnow()
    values = {"last_used_at": now, "ip": ip}
    if idle is not None:
        values["expires_at"] = now + idle
    session.execute(update(UserSession).where(UserSession.id == session_id, live(now))
                    .values(**values), execution_options=UNSYNCHRONIZED)
    session.commit()


def active(session: Session, user_id: int) -> list[UserSession]:
    """The user's sign-ins that still open the cabinet, the latest used first."""
    return list(session.execute(
        select(UserSession).where(UserSession.user_id == user_id, live(utcnow()))
        .order_by(UserSession.last_used_at.desc(), UserSession.id.desc())).scalars())


def _end(session: Session, *conditions) -> int:
    now = utcnow()
    ended = session.execute(update(UserSession).where(*conditions, live(now))
                            .values(ended_at=now), execution_options=UNSYNCHRONIZED).rowcount
    session.commit()
    return ended


def end(session: Session, user_id: int, session_id: int, ip: str | None = None, *,
        journal: bool = True) -> str | None:
    """End one of the user's sign-ins; returns its device label, or None (and changes
    nothing) when the user has no such live sign-in, another user's included."""
    row = session.execute(select(UserSession).where(
        UserSession.id == session_id, UserSession.user_id == user_id, live(utcnow()))
    ).scalar_one_or_none()
    if row is None:
        return None
    label = row.device
    _end(session, UserSession.id == session_id)
    if journal:
        audit.record(session, "session.ended", actor_id=user_id, object_type="user",
                     object_id=user_id, ip=ip, details={"device": label})
    return label


def end_others(session: Session, user_id: int, keep_id: int | None, ip: str | None = None,
               *, journal: bool = True) -> int:
    """End every sign-in of the user but ``keep_id`` (this browser's); returns how many."""
    conditions = [UserSession.user_id == user_id]
    if keep_id is not None:
        conditions.append(UserSession.id != keep_id)
    ended = _end(session, *conditions)
    if ended and journal:
        audit.record(session, "session.ended_others", actor_id=user_id, object_type="user",
                     object_id=user_id, ip=ip, details={"count": ended})
    return ended


def end_all(session: Session, user_id: int) -> int:
    """End every sign-in of the user (a password reset by staff, a withdrawn consent)."""
    return _end(session, UserSession.user_id == user_id)


def prune(session: Session) -> int:
    """Delete the sign-ins that ended or expired; returns how many."""
    deleted = session.execute(delete(UserSession).where(or_(
        UserSession.ended_at.is_not(None), UserSession.expires_at <= utcnow())
    ), execution_options=UNSYNCHRONIZED).rowcount
    session.commit()
    return deleted
