"""The «I am not a robot» check of the sign-in: an ALTCHA proof of work, self-hosted.

The server issues a signed challenge (the ``altcha`` library, PBKDF2/SHA-256): find the
counter whose derived key starts with the given prefix. The browser's solver
(app/static/js/signin-challenge.js, WebCrypto) or any API client tries counters from zero, so
the work is the counter the server chose, between half of ``work`` and ``work``; the challenge
carries ``work`` in its signed data. A proof is good once (its nonce is spent in the
rate-limit storage, shared by every process) and for ``LIFETIME`` seconds. Nothing about the
person is kept: no cookie, no fingerprint, no third party."""
from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import time

import altcha
from limits.storage import Storage

ALGORITHM = "PBKDF2/SHA-256"
#: PBKDF2 iterations of one try: about 0.3 ms in a desktop browser, 1-2 ms on a phone.
COST = 1000
#: Seconds a challenge stays good: time to type the password again.
LIFETIME = 600
#: The form field (and the API's JSON field) of the solution, as ALTCHA's widget names it.
FIELD = "altcha"
#: Longest solution accepted (a base64 JSON of about 600 characters).
MAX_PROOF = 4096


class Verdict(enum.Enum):
    GOOD = "good"
    MISSING = "missing"
    EXPIRED = "expired"  # also: spent before
    TOO_EASY = "too_easy"  # issued for less work than the account now asks
    INVALID = "invalid"  # forged, tampered with or malformed


def _secret(key: str) -> bytes:
    """The challenges' signing key, derived from the app's keyed-hash secret."""
    return hmac.new(key.encode(), b"altcha-signin-challenge", hashlib.sha256).digest()


def issue(key: str, work: int) -> dict:
    """A new challenge (ALTCHA's JSON: ``parameters`` and ``signature``) of about ``work``
    tries."""
    work = max(2, int(work))
    counter = work // 2 + secrets.randbelow(work - work // 2 + 1)
    challenge = altcha.create_challenge(
        ALGORITHM, COST, counter=counter, expires_at=int(time.time()) + LIFETIME,
        data={"work": work}, hmac_secret=_secret(key))
    return challenge.to_dict()


def verify(key: str, storage: Storage, proof: str | None, work: int) -> Verdict:
    """Check a solution against the work asked now; a good one is spent."""
    if not proof:
        return Verdict.MISSING
    if not isinstance(proof, str) or len(proof) > MAX_PROOF:
        return Verdict.INVALID
    try:
        payload = altcha.Payload.from_base64(proof)
        result = altcha.verify_solution(payload, _secret(key))
        issued_work = (payload.challenge.parameters.data or {}).get("work")
        nonce = str(payload.challenge.parameters.nonce)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return Verdict.INVALID
    if result.expired:
        return Verdict.EXPIRED
    if not result.verified:
        return Verdict.INVALID
    # One step of slack: the account's failures may have grown while the person typed.
    if not isinstance(issued_work, int) or issued_work * 2 < work:
        return Verdict.TOO_EASY
    if storage.incr(f"signin-proof:{nonce}", LIFETIME) != 1:
        return Verdict.EXPIRED
    return Verdict.GOOD

