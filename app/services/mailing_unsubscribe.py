"""Unsubscribing from mailings: the one-click link every letter carries, signed with the
portal's secret, and opting its user out (security codes and their own notices still come)."""
from __future__ import annotations

import functools

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import PortalUser
from app.services import audit

UNSUBSCRIBE_SALT = "mailing-unsubscribe"


@functools.lru_cache(maxsize=8)
def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(secret: str, user_id: int) -> str:
    return _serializer(secret).dumps(user_id)


def unsubscribe_link(config, user_id: int) -> str:
    """The one-click link of a letter: PORTAL_URL, since a worker has no request to go by."""
    token = unsubscribe_token(config["SECRET_KEY"], user_id)
    return f"{str(config.get('PORTAL_URL') or '').rstrip('/')}/unsubscribe/{token}"


def user_for_token(secret: str, token: str) -> int | None:
    try:
        value = _serializer(secret).loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, int) else None


def unsubscribe(session: Session, secret: str, token: str, ip: str | None = None) -> bool:
    """Opt the token's user out of mailings (security codes and their own notices still
    come); False for a token that is not ours."""
    user_id = user_for_token(secret, token)
    if user_id is None or session.get(PortalUser, user_id) is None:
        return False
    session.execute(update(PortalUser).where(PortalUser.id == user_id)
                    .values(mailing_opt_out=True))
    session.commit()
    audit.record(session, "mailing.unsubscribed", actor_id=user_id, object_type="user",
                 object_id=str(user_id), ip=ip)
    return True
