"""VAPID keys of Web Push (RFC 8292): the server's P-256 key pair that push services check
each message against. Browsers subscribe with the public key, so every web process must sign
with the same private key, and a new key leaves every existing subscription dead.

Kept free of the app's imports: the production start-up check (app/production.py) runs
before any app is built."""
from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

#: A subject push services accept: an e-mail to write to, or a web page (RFC 8292, 2.1).
SUBJECT = re.compile(r"^(mailto:[^@\s]+@[^@\s]+\.[^@\s]+|https://[^\s/]+\.[^\s]+)$",
                     re.IGNORECASE)


def b64url_decode(value: str) -> bytes:
    """base64url with or without its padding, as browsers and web-push tools write it."""
    text = value.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def private_key(value: str):
    """The key of VAPID_PRIVATE_KEY (base64url of the raw 32-byte P-256 key); ValueError when
    it is not one."""
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        raw = b64url_decode(value)
    except (ValueError, TypeError):
        raise ValueError("not base64url") from None
    if len(raw) != 32:
        raise ValueError("not a raw 32-byte P-256 key")
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


def public_key(private: str) -> str:
    """The application server key browsers subscribe with: the uncompressed P-256 point of
    the private key, base64url."""
    from cryptography.hazmat.primitives import serialization

    point = private_key(private).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64url_encode(point)


def generate() -> tuple[str, str]:
    """A new (private, public) pair, for ``flask push vapid-keys``."""
    from cryptography.hazmat.primitives.asymmetric import ec

    raw = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    private = b64url_encode(raw.to_bytes(32, "big"))
    return private, public_key(private)


def subject(config: Mapping[str, Any]) -> str:
    """VAPID_SUBJECT, or the supplier's e-mail as a mailto: address."""
    return config.get("VAPID_SUBJECT") or f"mailto:{config.get('SUPPLIER_EMAIL') or ''}"


def problem(config: Mapping[str, Any]) -> str | None:
    """What is wrong with the VAPID settings, in English for the start-up check (None: fine)."""
    private = config.get("VAPID_PRIVATE_KEY")
    if not private:
        return "missing"
    try:
        derived = public_key(private)
    except ValueError:
        return "unreadable"
    given = config.get("VAPID_PUBLIC_KEY")
    if given and given.strip().rstrip("=") != derived:
        return "mismatch"
    if not SUBJECT.match(subject(config)):
        return "subject"
    return None
