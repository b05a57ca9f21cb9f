"""The resident's own profile: name, contacts (a new phone or e-mail is confirmed by a code sent
to it), password, notices, the export of their personal data and the withdrawal of the
personal-data consent (152-FZ).

Like registration, a code for a new contact goes to any valid contact: only its holder learns,
after entering the code, that it belongs to another cabinet. Every change is journaled without
the values themselves, and a changed password, phone or e-mail is announced on every real
contact, the old one included.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.models import (
    AccountBinding,
    AuditEvent,
    ContractApplication,
    Feedback,
    Meter,
    NoticeTopic,
    Payment,
    PersonalAccount,
    PortalUser,
    Premises,
    Reading,
)
from app.services import audit, notify, otp, signin_alerts
from app.services.accounts import open_to_residents, resident_account_ids
from app.services.auth import (
    AuthError,
    Contact,
    parse_contact,
    placeholder_email,
    set_password,
)
from app.services.channels import channel_for
from app.services.passwords import check_password
from app.services.throttle import signin_throttle

PURPOSE = "change_contact"
NAME_MAX = 64
#: Letters of any alphabet, spaces, hyphens, apostrophes and dots («Анна-Мария», «д'Артаньян»).
NAME_RE = re.compile(r"^[^\W\d_]+(?:[ \-'’.][^\W\d_]+)*\.?$")
CHANNELS = ("email", "sms", "push")
TAKEN = ("Этот телефон или адрес нельзя указать в вашем кабинете. Если он ваш, войдите с ним "
         "или обратитесь в контактный центр 8-800-600-02-20.")
WITHDRAWN = ("Вы отозвали согласие на обработку персональных данных, личный кабинет закрыт. "
             "Договор энергоснабжения и лицевые счета продолжают действовать, а история "
             "начислений, платежей и показаний хранится столько, сколько требует закон.")


class ProfileError(AuthError):
    """A refused change; the text is safe to show to the user."""


def _key() -> str:
    return current_app.config["OTP_HASH_KEY"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# ---------------------------------------------------------------------------------------------
# Name


def _clean_name(raw: str | None, label: str) -> str:
    value = " ".join((raw or "").split())
    if not value:
        raise ProfileError(f"Укажите {label}.")
    if len(value) > NAME_MAX:
        raise ProfileError(f"Поле «{label}» длиннее {NAME_MAX} символов.")
    if not NAME_RE.match(value):
        raise ProfileError(f"Поле «{label}» может содержать только буквы, пробел, дефис и "
                           "апостроф.")
    return value


def update_name(session: Session, user: PortalUser, first_name: str, last_name: str,
                ip: str | None) -> None:
    first = _clean_name(first_name, "имя")
    last = _clean_name(last_name, "фамилию")
    if (user.first_name, user.last_name) == (first, last):
        return
    user.first_name, user.last_name = first, last
    session.commit()
    audit.record(session, "profile.name_changed", actor_id=user.id, object_type="user",
                 object_id=user.id, ip=ip)


# ---------------------------------------------------------------------------------------------
# Contacts


def current_contact(user: PortalUser, kind: str) -> str | None:
    return user.phone if kind == "phone" else user.deliverable_email


def _taken_by_another(session: Session, user: PortalUser, contact: Contact) -> bool:
    conditions = [func.lower(PortalUser.username) == contact.value]
    if contact.kind == "phone":
        conditions.append(PortalUser.phone == contact.value)
        conditions.append(func.lower(PortalUser.email) == placeholder_email(contact.value))
    else:
        conditions.append(func.lower(PortalUser.email) == contact.value)
    found = session.execute(
        select(PortalUser.id).where(or_(*conditions), PortalUser.id != user.id).limit(1)
    ).first()
    return found is not None


def start_contact_change(session: Session, user: PortalUser, kind: str, raw: str,
                         ip: str | None) -> Contact:
    """Send a code to the new phone or e-mail (the OTP limits apply); nothing changes yet."""
    contact = parse_contact(kind, raw)
    if current_contact(user, kind) and current_contact(user, kind).lower() == contact.value:
        raise ProfileError("Этот контакт уже указан в вашем кабинете.")
    channel = channel_for(contact.channel)
    otp.issue_code(session, key=_key(), purpose=PURPOSE, channel=contact.channel,
                   destination=contact.value,
                   send=lambda destination, code: channel.send(destination, code, PURPOSE),
                   ip=ip, user_id=user.id)
    audit.record(session, "otp.requested", actor_id=user.id, ip=ip,
                 details={"purpose": PURPOSE, "channel": contact.channel})
    return contact


def confirm_contact_change(session: Session, user: PortalUser, contact: Contact, code: str,
                           ip: str | None) -> None:
    """Accept the code sent to the new contact and make it the user's phone or e-mail (and
    login, when the login was the old one); announce it on the old contact too."""
    challenge = otp.verify_code(session, key=_key(), purpose=PURPOSE,
                                destination=contact.value, code=code)
    if challenge.user_id != user.id:
        raise otp.CodeRejected("Код неверный или устарел. Запросите новый код.")
    if _taken_by_another(session, user, contact):
        audit.record(session, "profile.contact_refused", actor_id=user.id, object_type="user",
                     object_id=user.id, ip=ip, details={"kind": contact.kind})
        raise ProfileError(TAKEN)
    if contact.kind == "phone":
        old = user.phone
        if old and user.username == old:
            user.username = contact.value
        if user.email_is_placeholder:
            user.email = placeholder_email(contact.value)
        user.phone = contact.value
        old_contact = ("sms", old) if old else None
    else:
        old = user.deliverable_email
        if old and user.username.lower() == old.lower():
            user.username = contact.value
        user.email = contact.value
        user.email_is_placeholder = False
        old_contact = ("email", old) if old else None
    session.commit()
    audit.record(session, "profile.contact_changed", actor_id=user.id, object_type="user",
                 object_id=user.id, ip=ip, details={"kind": contact.kind})
    notify.announce_security_change(user, contact.kind, old_contact=old_contact)


# ---------------------------------------------------------------------------------------------
# Password


def change_password(session: Session, user: PortalUser, current: str, password: str,
                    password_again: str, ip: str | None) -> None:
    """Check the current password, then set the new one by the usual rules and announce it.
    Wrong guesses count as failed sign-ins of the account (app.services.signin_guard: its
    hard limits refuse here too, and a burst tells the owner); the signed-in session stands
    in for the «not a robot» check."""
    guard = signin_throttle()
    subject = guard.subject(user.id, user.username)
    guard.check_limits(subject, ip, guard.is_known(subject, ip))
    if not check_password(user.password, current or ""):
        signin_alerts.note_failures(user.id, guard.failed(subject, ip))
        audit.record(session, "password.change_refused", actor_id=user.id, object_type="user",
                     object_id=user.id, ip=ip)
        raise ProfileError("Текущий пароль указан неверно.")
    if password == current:
        raise ProfileError("Новый пароль совпадает с текущим.")
    set_password(session, user, password, password_again, ip)


# ---------------------------------------------------------------------------------------------
# Notices


def notice_field(topic: str, channel: str) -> str:
    return f"notify_{topic}_{channel}"


NOTICE_FIELDS = [notice_field(t, c) for t in NoticeTopic.values() for c in CHANNELS]


def notification_settings(user: PortalUser) -> dict[str, bool]:
    settings = {name: bool(getattr(user, name)) for name in NOTICE_FIELDS}
    settings.update(paperless=bool(user.paperless), mailing=not user.mailing_opt_out)
    return settings


def set_notifications(session: Session, user: PortalUser, choices: dict[str, bool],
                      ip: str | None) -> None:
    """Save the notices (``notify_<topic>_<channel>``), ``paperless`` and ``mailing`` (news
    and offers); a key not given means off."""
    for name in NOTICE_FIELDS:
        setattr(user, name, bool(choices.get(name)))
    user.notify_email = any(getattr(user, notice_field(t, "email")) for t in NoticeTopic.labels)
    user.notify_sms = any(getattr(user, notice_field(t, "sms")) for t in NoticeTopic.labels)
    user.paperless = bool(choices.get("paperless"))
    user.mailing_opt_out = not choices.get("mailing")
    session.commit()
    audit.record(session, "profile.notifications_changed", actor_id=user.id,
                 object_type="user", object_id=user.id, ip=ip,
                 details=notification_settings(user))


# ---------------------------------------------------------------------------------------------
# Personal data (152-FZ)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _rows(session: Session, query) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in session.execute(query).mappings()]


def personal_data_export(session: Session, user: PortalUser, ip: str | None = None) -> dict:
    """Everything the portal keeps about the user, as JSON-ready data; the access is
    journaled. One query per kind of record, whatever the number of accounts."""
    premises = Premises
    accounts = _rows(session, select(
        PersonalAccount.id, PersonalAccount.number, PersonalAccount.holder_name,
        PersonalAccount.status, PersonalAccount.opened_on, PersonalAccount.closed_on,
        premises.postcode, premises.locality, premises.street, premises.house, premises.flat,
        AccountBinding.bound_at, AccountBinding.method,
    ).join(AccountBinding, AccountBinding.account_id == PersonalAccount.id)
     .join(premises, premises.id == PersonalAccount.premises_id)
     .where(AccountBinding.user_id == user.id, open_to_residents())
     .order_by(PersonalAccount.number))
    meters = _rows(session, select(
        Meter.account_id, Meter.serial, Meter.model, Meter.zones, Meter.verification_due,
    ).where(Meter.account_id.in_(resident_account_ids(user.id))).order_by(Meter.serial))
    for account in accounts:
        parts = [account.pop("postcode"), account.pop("locality"), account.pop("street"),
                 f"д. {account.pop('house')}"]
        flat = account.pop("flat")
        if flat:
            parts.append(f"кв. {flat}")
        account["address"] = ", ".join(p for p in parts if p)
        account["meters"] = [{k: v for k, v in m.items() if k != "account_id"}
                             for m in meters if m["account_id"] == account["id"]]
        del account["id"]

    readings = _rows(session, select(
        PersonalAccount.number.label("account"), Meter.serial.label("meter"), Reading.period,
        Reading.t1, Reading.t2, Reading.t3, Reading.source, Reading.status,
        Reading.submitted_at,
    ).join(Meter, Meter.id == Reading.meter_id)
     .join(PersonalAccount, PersonalAccount.id == Meter.account_id)
     .where(Reading.submitted_by_id == user.id).order_by(Reading.submitted_at))
    payments = _rows(session, select(
        PersonalAccount.number.label("account"), Payment.amount, Payment.method,
        Payment.status, Payment.created_at, Payment.paid_at,
    ).join(PersonalAccount, PersonalAccount.id == Payment.account_id)
     .where(Payment.user_id == user.id).order_by(Payment.created_at))
    applications = _rows(session, select(
        ContractApplication.applicant_name, ContractApplication.phone,
        ContractApplication.email, ContractApplication.address, ContractApplication.comment,
        ContractApplication.status, ContractApplication.created_at,
    ).where(ContractApplication.user_id == user.id).order_by(ContractApplication.created_at))
    feedback = _rows(session, select(
        Feedback.topic, Feedback.message, Feedback.status, Feedback.reply,
        Feedback.created_at, Feedback.answered_at,
    ).where(Feedback.user_id == user.id).order_by(Feedback.created_at))
    events = _rows(session, select(AuditEvent.at, AuditEvent.action, AuditEvent.ip)
                   .where(AuditEvent.actor_id == user.id).order_by(AuditEvent.id))

    data = {
        "exported_at": _now().isoformat(),
        "profile": {
            "login": user.username,
            "last_name": user.last_name,
            "first_name": user.first_name,
            "phone": user.phone,
            "email": user.deliverable_email,
            "registered_at": _plain(user.created_on),
            "last_login_at": _plain(user.last_login),
        },
        "consent": {
            "given_at": _plain(user.pd_consent_at),
            "version": user.pd_consent_version,
            "withdrawn_at": _plain(user.pd_consent_withdrawn_at),
        },
        "notifications": notification_settings(user),
        "accounts": accounts,
        "readings": readings,
        "payments": payments,
        "applications": applications,
        "feedback": feedback,
        "security_events": events,
    }
    audit.record(session, "pd.exported", actor_id=user.id, object_type="user",
                 object_id=user.id, ip=ip)
    return data


def withdraw_consent(session: Session, user: PortalUser, ip: str | None) -> None:
    """Record the withdrawal and close the cabinet: the user can no longer sign in. Accounts,
    bindings and history stay (the supply contract and accounting law need them)."""
    user.pd_consent_withdrawn_at = _now()
    user.active = False
    session.commit()
    audit.record(session, "pd_consent.withdrawn", actor_id=user.id, object_type="user",
                 object_id=user.id, ip=ip, details={"consent_version": user.pd_consent_version})
    for kind, address in notify.contacts_of(user):
        notify.send_notice(kind, address, "Личный кабинет закрыт",
                           f"{WITHDRAWN} {notify.NOT_YOU}")
