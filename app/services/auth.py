"""Residents' registration and password recovery by one-time code, and setting a password.

Nothing here reveals whether a phone or e-mail is registered to someone who does not hold it:
a registration code goes to any contact, a recovery code only to a registered one, but both
answers look the same, and only the holder of a valid code learns more.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import PortalUser
from app.services import audit, notify, otp
from app.services.channels import channel_for
from app.services.passwords import hash_password, password_problems
from app.services.phones import normalize_phone
from app.services.throttle import signin_throttle

#: The version of the personal-data consent document (templates/auth/consent.html).
CONSENT_VERSION = "2026-11"
RESIDENT_ROLE = "Resident"


class AuthError(Exception):
    """Bad input or a refused step; the text is safe to show to the user."""


class AlreadyRegistered(AuthError):
    pass


@dataclass(frozen=True)
class Contact:
    kind: str  # "phone" or "email"
    value: str  # E.164 phone or lower-cased e-mail

    @property
    def channel(self) -> str:
        return "sms" if self.kind == "phone" else "email"

    @property
    def masked(self) -> str:
        if self.kind == "phone":
            return f"{self.value[:2]} ({self.value[2:5]}) ***-**-{self.value[-2:]}"
        name, _, domain = self.value.partition("@")
        return f"{name[:1]}***@{domain}"


def parse_contact(kind: str, raw: str) -> Contact:
    """Normalize a phone (any usual Russian form, stored E.164) or an e-mail address."""
    raw = (raw or "").strip()
    if kind == "phone":
        phone = normalize_phone(raw)
        if not phone:
            raise AuthError("Введите номер мобильного телефона, например +7 918 123-45-67.")
        return Contact("phone", phone)
    if kind == "email":
        try:
            email = validate_email(raw, check_deliverability=False).normalized
        except EmailNotValidError:
            raise AuthError("Введите адрес электронной почты, например ivanov@mail.ru.") from None
        return Contact("email", email.lower())
    raise AuthError("Выберите способ: телефон или электронная почта.")


def find_by_contact(session: Session, contact: Contact) -> PortalUser | None:
    if contact.kind == "phone":
        condition = PortalUser.phone == contact.value
    else:
        condition = (func.lower(PortalUser.email) == contact.value) & (
            PortalUser.email_is_placeholder.is_(False)
        )
    return session.execute(select(PortalUser).where(condition)).scalar_one_or_none()


def _key() -> str:
    return current_app.config["OTP_HASH_KEY"]


def _send(contact: Contact, purpose: str):
    channel = channel_for(contact.channel)
    return lambda destination, code: channel.send(destination, code, purpose)


def request_registration_code(session: Session, contact: Contact, ip: str | None) -> None:
    """Send a registration code to any contact (the holder learns later if it is taken)."""
    otp.issue_code(session, key=_key(), purpose="register", channel=contact.channel,
                   destination=contact.value, send=_send(contact, "register"), ip=ip)
    audit.record(session, "otp.requested", ip=ip, details={"purpose": "register",
                                                             "channel": contact.channel})


def complete_registration(session: Session, sm, contact: Contact, code: str, password: str,
                          password_again: str, consent: bool, ip: str | None) -> PortalUser:
    """Create a resident once the code is right, the password good and consent given."""
    if not consent:
        raise AuthError("Чтобы зарегистрироваться, примите согласие на обработку персональных "
                        "данных.")
    if password != password_again:
        raise AuthError("Пароли не совпадают.")
    problems = password_problems(password, personal=[contact.value.lstrip("+"),
                                                     contact.value.split("@")[0]])
    if problems:
        raise AuthError(problems[0])
    otp.verify_code(session, key=_key(), purpose="register", destination=contact.value,
                    code=code)
    holders = {user for user in (find_by_contact(session, contact),
                                 sm.find_user(username=contact.value)) if user is not None}
    if not all(closed_by_withdrawal(user) for user in holders):
        raise AlreadyRegistered("Этот телефон или адрес уже зарегистрирован. Войдите или "
                                "восстановите пароль.")
    for closed in holders:
        release_contacts(session, closed)
    is_phone = contact.kind == "phone"
    user = sm.add_user(
        username=contact.value,
        first_name="",
        last_name="",
        email=placeholder_email(contact.value) if is_phone else contact.value,
        role=sm.find_role(RESIDENT_ROLE),
        hashed_password=hash_password(password),
        commit=False,
    )
    if not user:
        raise AuthError("Не удалось завершить регистрацию. Попробуйте ещё раз.")
    user.kind = "resident"
    user.phone = contact.value if is_phone else None
    user.email_is_placeholder = is_phone
    user.pd_consent_at = dt.datetime.now(dt.timezone.utc)
    user.pd_consent_version = CONSENT_VERSION
    session.commit()
    audit.record(session, "user.registered", actor_id=user.id, object_type="user",
                 object_id=user.id, ip=ip, details={"channel": contact.channel,
                                                    "consent_version": CONSENT_VERSION})
    for closed in holders:
        audit.record(session, "user.contacts_released", actor_id=user.id, object_type="user",
                     object_id=closed.id, ip=ip, details={"channel": contact.channel})
    return user


def closed_by_withdrawal(user: PortalUser) -> bool:
    """A resident's cabinet closed by the withdrawal of the personal-data consent."""
    return user.kind == "resident" and not user.active and user.pd_consent_withdrawn_at is not None


def release_contacts(session: Session, user: PortalUser) -> None:
    """Free a closed cabinet's login, phone and e-mail for a new registration with them.

    The one who registers proved only that the contact is theirs now: a phone number passes
    to another person in time. So the new cabinet starts empty (accounts are bound again by
    account number and meter serial), and the closed one keeps its history and name, with no
    contact left to reach anyone by."""
    user.username = f"closed-{user.id}"
    user.phone = None
    user.email = f"closed-{user.id}@closed.invalid"
    user.email_is_placeholder = True
    session.flush()


def placeholder_email(phone: str) -> str:
    """FAB's user table needs a unique e-mail; a phone-only resident gets an address in the
    reserved .invalid domain (RFC 2606), flagged as a placeholder and never written to."""
    return f"{phone.lstrip('+')}@phone.invalid"


def request_recovery_code(session: Session, contact: Contact, ip: str | None) -> None:
    """Send a recovery code to a registered resident's contact; for an unknown contact record
    the same challenge without sending, so both cost and look the same."""
    user = find_by_contact(session, contact)
    known = user is not None and user.kind == "resident" and user.is_active
    otp.issue_code(session, key=_key(), purpose="recover", channel=contact.channel,
                   destination=contact.value, send=_send(contact, "recover") if known else None,
                   ip=ip, user_id=user.id if known else None)
    audit.record(session, "otp.requested", actor_id=user.id if known else None, ip=ip,
                 details={"purpose": "recover", "channel": contact.channel})


def complete_recovery(session: Session, contact: Contact, code: str,
                      ip: str | None) -> PortalUser:
    """Accept a recovery code: the user is signed in by it and must set a new password."""
    challenge = otp.verify_code(session, key=_key(), purpose="recover",
                                destination=contact.value, code=code)
    user = session.get(PortalUser, challenge.user_id) if challenge.user_id else None
    if user is None or not user.is_active:
        raise otp.CodeRejected("Код неверный или устарел. Запросите новый код.")
    user.must_change_password = True
    session.commit()
    audit.record(session, "login.by_code", actor_id=user.id, object_type="user",
                 object_id=user.id, ip=ip)
    guard = signin_throttle()  # the owner proved the contact: as good as the password
    guard.succeeded(guard.subject(user.id, ""), ip)
    return user


def set_password(session: Session, user: PortalUser, password: str, password_again: str,
                 ip: str | None) -> None:
    """Set a new password (after recovery, or a forced change for an organization)."""
    if password != password_again:
        raise AuthError("Пароли не совпадают.")
    personal = [p for p in (user.phone and user.phone.lstrip("+"), user.username,
                            user.email.split("@")[0]) if p]
    problems = password_problems(password, personal=personal)
    if problems:
        raise AuthError(problems[0])
    user.password = hash_password(password)
    user.must_change_password = False
    session.commit()
    audit.record(session, "password.changed", actor_id=user.id, object_type="user",
                 object_id=user.id, ip=ip)
    notify.announce_security_change(user, "password")


def serves_branch(user: PortalUser, branch_id: int) -> bool:
    """Whether an organization's user belongs to the branch chosen at sign-in."""
    org = user.organization
    return branch_id is not None and branch_id in {user.branch_id, org.branch_id if org else None}
