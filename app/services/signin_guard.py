"""Failed sign-ins, counted so that they stop an attacker and never lock out the owner (OWASP
ASVS 5 V6.3, NIST SP 800-63B §5.2.2).

- Hard limits, refused with the time to wait: failures per account *and* address (someone at
  one address guessing one account) and per address (one address guessing many accounts).
- A soft limit per account, whatever the address: after ``challenge_after`` failures every
  sign-in to the account from an address it has not signed in from must carry a solved proof
  of work (app.services.challenge), whose work doubles every ``doubling`` failures up to
  ``max_growth`` times: the growing delay falls on each guess, and the owner pays it once.
- Addresses the account signed in from (kept ``known_days``, as keyed hashes) skip the
  challenge and the per-address limit: the owner at home signs in while a botnet guesses.

Everything lives in the rate-limit storage (memory, or Redis shared by every process). The
account is the user's id when the login names one (so a phone typed three ways is one
account), else the login as typed, normalized: unknown logins behave the same, so nobody
learns which exist. An IPv6 address counts by its /64 network, which one subscriber holds."""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from dataclasses import dataclass

from flask import Flask
from limits import parse
from limits.strategies import MovingWindowRateLimiter

from app.services import challenge
from app.services.phones import normalize_phone
from app.services.throttle import Throttled

#: Shown when a proof is needed and missing, spent, expired or issued for less work.
CHALLENGE_NEEDED = ("Подтвердите, что вы не робот: в эту учётную запись недавно много раз "
                    "пытались войти с неверным паролем. Дождитесь окончания проверки, введите "
                    "пароль ещё раз и нажмите «Войти».")
CHALLENGE_FAILED = ("Проверка «Я не робот» не пройдена или устарела. Дождитесь окончания "
                    "новой проверки, введите пароль ещё раз и нажмите «Войти».")


@dataclass(frozen=True)
class SigninRules:
    pair: str = "10 per 15 minutes"
    address: str = "30 per 15 minutes"
    #: Failures per account counted for the soft limit (never refused for them).
    account: str = "500 per day"
    challenge_after: int = 5
    #: Tries of the first challenge (about a quarter of a second in a desktop browser).
    work: int = 1000
    doubling: int = 10
    max_growth: int = 16
    known_days: int = 90


@dataclass(frozen=True)
class Refusal:
    """Why a sign-in was not let in beyond a wrong password, for the entrance to show."""

    message: str | None  # None: the entrance's own «wrong login or password»
    retry_after: int | None = None  # a hard limit: seconds to wait
    challenge: dict | None = None  # the next attempt must carry its solution


class ChallengeNeeded(Exception):
    def __init__(self, message: str, challenge_json: dict):
        super().__init__(message)
        self.challenge = challenge_json


class SigninGuard:
    """The sign-in's counters, shared by every entrance and the profile's password check."""

    def __init__(self, limiter: MovingWindowRateLimiter, key: str,
                 rules: SigninRules = SigninRules()):
        self.limiter, self.key, self.rules = limiter, key, rules
        self.pair_limit = parse(rules.pair)
        self.address_limit = parse(rules.address)
        self.account_limit = parse(rules.account)

    # Keys: keyed hashes, so the storage holds no login or address in clear.

    def _digest(self, *parts: str) -> str:
        message = "\x1f".join(parts).encode()
        return hmac.new(self.key.encode(), message, hashlib.sha256).hexdigest()[:32]

    def subject(self, user_id: int | None, login: str) -> str:
        """The account a sign-in counts against."""
        if user_id is not None:
            return f"user:{user_id}"
        login = login.strip()
        return f"login:{normalize_phone(login) or login.lower()}"

    @staticmethod
    def network(ip: str | None) -> str | None:
        """The address as counted: IPv4 itself, IPv6 its /64."""
        if not ip:
            return None
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return ip
        if address.version == 4:
            return str(address)
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))

    def _pair_key(self, subject: str, network: str) -> str:
        return f"signin-pair:{self._digest(subject, network)}"

    def _address_key(self, network: str) -> str:
        return f"signin-address:{self._digest(network)}"

    def _account_key(self, subject: str) -> str:
        return f"signin-account:{self._digest(subject)}"

    def _known_key(self, subject: str, network: str) -> str:
        return f"signin-known:{self._digest('known', subject, network)}"

    # The state.

    def is_known(self, subject: str, ip: str | None) -> bool:
        """Whether the account signed in from this address lately."""
        network = self.network(ip)
        return bool(network) and self.limiter.storage.get(self._known_key(subject, network)) > 0

    def failures(self, subject: str) -> int:
        """Failures of the account in the soft limit's window, from any address."""
        stats = self.limiter.get_window_stats(self.account_limit, self._account_key(subject))
        return self.account_limit.amount - stats.remaining

    def work_for(self, failures: int) -> int:
        """The tries a challenge asks after this many failures: doubling, up to a cap."""
        rules = self.rules
        doublings = max(0, failures - rules.challenge_after) // rules.doubling
        return rules.work * min(rules.max_growth, 2 ** doublings)

    def needs_challenge(self, subject: str, ip: str | None, failures: int) -> bool:
        return failures >= self.rules.challenge_after and not self.is_known(subject, ip)

    # The checks.

    def check_limits(self, subject: str, ip: str | None, known: bool = False) -> None:
        """Raise Throttled when this account failed too often from this address, or this
        address too often on any account (not counted for an address the account knows)."""
        network = self.network(ip)
        if not network:
            return
        checks = [(self.pair_limit, self._pair_key(subject, network))]
        if not known:
            checks.append((self.address_limit, self._address_key(network)))
        for item, key in checks:
            if not self.limiter.test(item, key):
                reset = self.limiter.get_window_stats(item, key).reset_time
                raise Throttled("signin", max(1, int(reset - time.time())))

    def admit(self, subject: str, ip: str | None, proof: str | None) -> None:
        """Let a sign-in go on to the password check, or raise Throttled (a hard limit) or
        ChallengeNeeded (the account asks a proof of work from this address)."""
        known = self.is_known(subject, ip)
        self.check_limits(subject, ip, known)
        failures = self.failures(subject)
        if known or failures < self.rules.challenge_after:
            return
        work = self.work_for(failures)
        verdict = challenge.verify(self.key, self.limiter.storage, proof, work)
        if verdict is challenge.Verdict.GOOD:
            return
        if verdict is challenge.Verdict.INVALID:
            self._hit_address(ip)  # a forged proof is a failure of the address
        message = CHALLENGE_NEEDED if verdict is challenge.Verdict.MISSING else CHALLENGE_FAILED
        raise ChallengeNeeded(message, challenge.issue(self.key, work))

    def next_challenge(self, subject: str, ip: str | None, failures: int) -> dict | None:
        """The challenge the next attempt from this address must solve, if it must."""
        if not self.needs_challenge(subject, ip, failures):
            return None
        return challenge.issue(self.key, self.work_for(failures))

    # The outcomes.

    def _hit_address(self, ip: str | None) -> None:
        network = self.network(ip)
        if network:
            self.limiter.hit(self.address_limit, self._address_key(network))

    def failed(self, subject: str, ip: str | None) -> int:
        """Count a failure; returns the account's failures now."""
        network = self.network(ip)
        if network:
            self.limiter.hit(self.pair_limit, self._pair_key(subject, network))
            self.limiter.hit(self.address_limit, self._address_key(network))
        self.limiter.hit(self.account_limit, self._account_key(subject))
        return self.failures(subject)

    def succeeded(self, subject: str, ip: str | None) -> None:
        """The owner is in: their failures are forgiven (those of the address are not), and
        the address becomes one the account knows, for ``known_days`` from now."""
        storage = self.limiter.storage
        self.limiter.clear(self.account_limit, self._account_key(subject))
        network = self.network(ip)
        if network:
            self.limiter.clear(self.pair_limit, self._pair_key(subject, network))
            known = self._known_key(subject, network)
            storage.clear(known)
            storage.incr(known, self.rules.known_days * 86400)


def init_app(app: Flask) -> None:
    """The sign-in guard over the rate-limit storage app.services.throttle.init_app set up."""
    rules = SigninRules(work=int(app.config.get("SIGNIN_CHALLENGE_WORK") or SigninRules.work))
    app.extensions["signin_guard"] = SigninGuard(app.extensions["rate_limiter"],
                                                 app.config["OTP_HASH_KEY"], rules)
