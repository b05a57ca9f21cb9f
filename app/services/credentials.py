"""Credentials issued by staff to an organization: a generated login and a strong password,
shown once and printed in a cover letter, never stored in clear. The organization must change
the password at first sign-in."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Organization, PortalUser
from app.services import audit
from app.services.passwords import hash_password

BUSINESS_ROLE = "Business"
#: Letters and digits that cannot be confused when read from paper (no 0/O, 1/l/I).
READABLE = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PASSWORD_LENGTH = 14


@dataclass(frozen=True)
class IssuedCredentials:
    user_id: int
    login: str
    password: str


def generate_password(length: int = PASSWORD_LENGTH) -> str:
    """About 81 bits of randomness for 14 characters: strong, and typable from a letter."""
    return "".join(secrets.choice(READABLE) for _ in range(length))


def _next_login(session: Session, organization: Organization) -> str:
    prefix = f"org{organization.inn}"
    taken = session.execute(
        select(func.count(PortalUser.id)).where(PortalUser.username.like(f"{prefix}%"))
    ).scalar_one()
    return f"{prefix}-{taken + 1}"


def issue_credentials(session: Session, sm, organization: Organization, full_name: str,
                      email: str | None, issued_by: int | None,
                      ip: str | None = None) -> IssuedCredentials:
    """Create an organization's user with a fresh login and password."""
    login = _next_login(session, organization)
    password = generate_password()
    last, _, first = (full_name.strip() or organization.name).partition(" ")
    user = sm.add_user(
        username=login,
        first_name=first[:64] or "",
        last_name=last[:64],
        email=email or f"{login}@organization.invalid",
        role=sm.find_role(BUSINESS_ROLE),
        hashed_password=hash_password(password),
        commit=False,
    )
    if not user:
        raise ValueError("Не удалось создать пользователя: e-mail уже занят.")
    user.kind = "business"
    user.organization_id = organization.id
    user.branch_id = organization.branch_id
    user.email_is_placeholder = not email
    user.must_change_password = True
    session.commit()
    audit.record(session, "credentials.issued", actor_id=issued_by, object_type="user",
                 object_id=user.id, ip=ip, details={"organization_id": organization.id})
    return IssuedCredentials(user.id, login, password)
