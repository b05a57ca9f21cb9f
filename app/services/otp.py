"""One-time codes: 6 random digits, kept only as a keyed hash bound to the purpose and the
destination, single use, valid 10 minutes, 5 wrong tries, resend after 60 s, 5 codes per
destination per hour and a per-IP hourly cap. The state lives in the database, so every web
process sees the same limits."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import OtpChallenge

CODE_TTL = dt.timedelta(minutes=10)
MAX_ATTEMPTS = 5
RESEND_COOLDOWN = dt.timedelta(seconds=60)
PER_DESTINATION_PER_HOUR = 5
PER_IP_PER_HOUR = 30
HOUR = dt.timedelta(hours=1)

PURPOSES = ("register", "recover", "login", "change_contact")


class OtpError(Exception):
    """A code could not be issued or accepted; the text is safe to show to the user."""


class RetryLater(OtpError):
    def __init__(self, message: str, retry_after: dt.timedelta):
        super().__init__(message)
        self.retry_after = retry_after


class CodeRejected(OtpError):
    """Wrong, expired, used up or unknown code."""


@dataclass(frozen=True)
class IssuedCode:
    challenge_id: int
    expires_at: dt.datetime


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes; everything here is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def destination_hash(key: str, destination: str) -> str:
    """A keyed hash of a normalized phone or e-mail: limits are counted without storing it."""
    return hmac.new(key.encode(), destination.strip().lower().encode(), hashlib.sha256).hexdigest()


def _code_hash(key: str, purpose: str, dest_hash: str, code: str) -> str:
    message = f"{purpose}|{dest_hash}|{code}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def generate_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def _wait_text(delta: dt.timedelta) -> str:
    seconds = max(1, math.ceil(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} с"
    return f"{math.ceil(seconds / 60)} мин"


def check_request_allowed(session: Session, *, key: str, purpose: str, destination: str,
                          ip: str | None, now: dt.datetime | None = None) -> None:
    """Raise RetryLater when a new code for this destination or IP would break a limit."""
    now = now or utcnow()
    dest = destination_hash(key, destination)
    rows = session.execute(
        select(OtpChallenge.created_at, OtpChallenge.purpose)
        .where(OtpChallenge.destination_hash == dest, OtpChallenge.created_at > now - HOUR)
        .order_by(OtpChallenge.created_at.desc())
    ).all()
    recent = [created_at for created_at, _purpose in rows]
    same_flow = [created_at for created_at, row_purpose in rows if row_purpose == purpose]
    if same_flow:
        last = _aware(same_flow[0])
        if now - last < RESEND_COOLDOWN:
            wait = RESEND_COOLDOWN - (now - last)
            raise RetryLater(f"Новый код можно запросить через {_wait_text(wait)}.", wait)
    if len(recent) >= PER_DESTINATION_PER_HOUR:
        wait = _aware(recent[PER_DESTINATION_PER_HOUR - 1]) + HOUR - now
        raise RetryLater(
            f"Слишком много кодов за час. Попробуйте снова через {_wait_text(wait)}.", wait
        )
    if ip:
        per_ip = session.execute(
            select(func.count(OtpChallenge.id), func.min(OtpChallenge.created_at))
            .where(OtpChallenge.ip == ip, OtpChallenge.created_at > now - HOUR)
        ).one()
        if per_ip[0] >= PER_IP_PER_HOUR:
            wait = _aware(per_ip[1]) + HOUR - now
            raise RetryLater(
                f"Слишком много запросов с вашего адреса. Попробуйте через {_wait_text(wait)}.",
                wait,
            )


def issue_code(session: Session, *, key: str, purpose: str, channel: str, destination: str,
               send: Callable[[str, str], None] | None, ip: str | None = None,
               user_id: int | None = None, now: dt.datetime | None = None) -> IssuedCode:
    """Check the limits, create a challenge and deliver the code through ``send``.

    ``send=None`` records the challenge without delivering anything: used for unknown
    contacts in recovery, so that known and unknown ones look and cost the same. When
    ``send`` raises, the challenge is removed and the error propagates: nothing half-done.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    now = now or utcnow()
    check_request_allowed(session, key=key, purpose=purpose, destination=destination, ip=ip,
                          now=now)
    code = generate_code()
    dest = destination_hash(key, destination)
    challenge = OtpChallenge(
        purpose=purpose, channel=channel, destination_hash=dest,
        code_hash=_code_hash(key, purpose, dest, code), user_id=user_id, ip=ip,
        attempts=0, created_at=now, expires_at=now + CODE_TTL,
    )
    session.add(challenge)
    session.flush()
    if send is not None:
        try:
            send(destination, code)
        except Exception:
            session.rollback()
            raise
    session.commit()
    return IssuedCode(challenge.id, now + CODE_TTL)


def verify_code(session: Session, *, key: str, purpose: str, destination: str, code: str,
                now: dt.datetime | None = None) -> OtpChallenge:
    """Accept the latest live code for this purpose and destination, once.

    Every wrong try counts; after MAX_ATTEMPTS the code is dead and a new one is needed."""
    now = now or utcnow()
    dest = destination_hash(key, destination)
    challenge = session.execute(
        select(OtpChallenge)
        .where(OtpChallenge.destination_hash == dest, OtpChallenge.purpose == purpose,
               OtpChallenge.consumed_at.is_(None))
        .order_by(OtpChallenge.created_at.desc())
        .limit(1)
        .with_for_update()
    ).scalar_one_or_none()
    if challenge is None:
        raise CodeRejected("Код неверный или устарел. Запросите новый код.")
    if _aware(challenge.expires_at) <= now:
        raise CodeRejected("Срок действия кода истёк. Запросите новый код.")
    if challenge.attempts >= MAX_ATTEMPTS:
        raise CodeRejected("Превышено число попыток ввода кода. Запросите новый код.")
    given = "".join(ch for ch in (code or "") if ch.isdigit())
    expected = challenge.code_hash
    if not hmac.compare_digest(_code_hash(key, purpose, dest, given), expected):
        challenge.attempts += 1
        left = MAX_ATTEMPTS - challenge.attempts
        session.commit()
        if left <= 0:
            raise CodeRejected("Превышено число попыток ввода кода. Запросите новый код.")
        raise CodeRejected(f"Неверный код. Осталось попыток: {left}.")
    challenge.consumed_at = now
    session.commit()
    return challenge
