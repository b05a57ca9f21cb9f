"""The audit journal: append-only events of security and personal-data access."""
from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy.orm import Session

from app.models import AuditEvent
from app.services import dispatch

log = logging.getLogger(__name__)

#: Keys whose values never reach the journal, the log or a plugin.
SECRET_KEYS = frozenset({"password", "code", "otp", "token", "secret", "api_key"})


def _clean(details: dict[str, Any] | None) -> dict[str, Any]:
    return {k: ("***" if k.lower() in SECRET_KEYS else v) for k, v in (details or {}).items()}


def record(
    session: Session,
    action: str,
    *,
    actor_id: int | None = None,
    object_type: str | None = None,
    object_id: Any = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
    commit: bool = True,
) -> AuditEvent:
    """Append an event, commit, then tell the plugins (their failures never reach the caller)."""
    clean = _clean(details)
    event = AuditEvent(
        action=action,
        actor_id=actor_id,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        ip=ip,
        details=json.dumps(clean, ensure_ascii=False, default=str) if clean else None,
    )
    session.add(event)
    if commit:
        session.commit()
        dispatch.fire(
            "audit_event",
            event={
                "id": event.id,
                "at": event.at.isoformat() if event.at else None,
                "action": action,
                "actor_id": actor_id,
                "object_type": object_type,
                "object_id": event.object_id,
                "ip": ip,
                "details": clean,
            },
        )
    return event
