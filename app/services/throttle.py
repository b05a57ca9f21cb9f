"""Throttling of failed attempts: guesses of account numbers when binding accounts, of meters
and bills on the public pages, and messages sent; sign-ins on every entrance have their own
rules over the same storage (app.services.signin_guard). Counters live in the rate-limit
storage (memory, or Redis when configured), so several web processes share them; they are
checked before any lookup."""
from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

if TYPE_CHECKING:
    from app.services.signin_guard import SigninGuard

#: Failures allowed, per subject and per IP address, for each guarded action.
RULES = {
    "bind": ("10 per hour", "30 per hour"),
    "guest_reading": ("5 per hour", "20 per hour"),
    # Not failures: every message sent (per sender's e-mail or user, and per IP) counts.
    "feedback": ("5 per hour", "5 per hour"),
    # A messenger bot's readings and account lookups, per user (every update comes from the
    # messenger's servers, so no IP is given).
    "bot_reading": ("10 per hour", "10 per hour"),
}

MESSAGES = {
    "signin": "Слишком много неудачных попыток входа. Попробуйте снова через {minutes} мин.",
    "bind": "Слишком много неудачных попыток привязать счёт. Попробуйте снова через "
            "{minutes} мин.",
    "guest_reading": "Слишком много неудачных попыток найти счётчик. Попробуйте снова через "
                     "{minutes} мин.",
    "feedback": "Слишком много обращений за короткое время. Попробуйте снова через "
                "{minutes} мин. или позвоните в контактный центр.",
    "bot_reading": "Слишком много попыток за короткое время. Попробуйте снова через {minutes} "
                   "мин. или передайте показания в личном кабинете.",
}


class Throttled(Exception):
    def __init__(self, action: str, retry_after: int):
        self.retry_after = retry_after
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(MESSAGES[action].format(minutes=minutes))


@dataclass
class FailureGuard:
    """Counts failures of one action per subject (a login, a user id) and per IP."""

    action: str
    limiter: MovingWindowRateLimiter
    key: str

    def __post_init__(self):
        subject_rule, ip_rule = RULES[self.action]
        self.subject_limit = parse(subject_rule)
        self.ip_limit = parse(ip_rule)

    def _subject_key(self, subject: str) -> str:
        digest = hmac.new(self.key.encode(), subject.strip().lower().encode(), hashlib.sha256)
        return f"{self.action}-subject:{digest.hexdigest()[:32]}"

    def _checks(self, subject: str, ip: str | None):
        yield self.subject_limit, self._subject_key(subject)
        if ip:
            yield self.ip_limit, f"{self.action}-ip:{ip}"

    def check(self, subject: str, ip: str | None) -> None:
        """Raise Throttled when this subject or this IP has failed too often lately."""
        for item, key in self._checks(subject, ip):
            if not self.limiter.test(item, key):
                reset = self.limiter.get_window_stats(item, key).reset_time
                raise Throttled(self.action, max(1, int(reset - time.time())))

    def failed(self, subject: str, ip: str | None) -> None:
        for item, key in self._checks(subject, ip):
            self.limiter.hit(item, key)

    def clear(self, subject: str) -> None:
        """A success forgives the subject's earlier failures (not the IP's)."""
        self.limiter.clear(self.subject_limit, self._subject_key(subject))


def init_app(app: Flask) -> None:
    """The rate-limit storage and a guard per action; the sign-in guard shares the storage
    (app.services.signin_guard.init_app, called next by create_app)."""
    uri = app.config.get("RATELIMIT_STORAGE_URI") or "memory://"
    limiter = MovingWindowRateLimiter(storage_from_string(uri))
    key = app.config["OTP_HASH_KEY"]
    app.extensions["failure_guards"] = {
        action: FailureGuard(action, limiter, key) for action in RULES
    }
    app.extensions["rate_limiter"] = limiter


def guard(action: str) -> FailureGuard:
    return current_app.extensions["failure_guards"][action]


def signin_throttle() -> SigninGuard:
    return current_app.extensions["signin_guard"]
