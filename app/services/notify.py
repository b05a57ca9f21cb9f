"""Notices to a user outside the portal (e-mail, SMS). Security notices go to every real
contact of the user, including the old one when a contact changes, so that a hijacked account
is noticed; they never go to a phone-only user's placeholder address. A failed notice is
logged and never undoes the change it reports."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from app.models import PortalUser
from app.services.channels import transport_for

log = logging.getLogger(__name__)

SECURITY_TEXTS = {
    "password": "Пароль от вашего личного кабинета НЭСК изменён.",
    "phone": "Номер телефона в вашем личном кабинете НЭСК изменён.",
    "email": "Адрес электронной почты в вашем личном кабинете НЭСК изменён.",
}
NOT_YOU = ("Если это сделали не вы, позвоните в контактный центр 8-800-600-02-20 "
           "(круглосуточно).")


@dataclass(frozen=True)
class Notice:
    """One message to one address. E-mail transports send ``html`` as the alternative part
    and the ``attachments`` ((filename, mimetype, bytes) each); SMS sends ``text`` only."""

    to: str
    subject: str
    text: str
    html: str | None = None
    attachments: tuple[tuple[str, str, bytes], ...] = ()


def contacts_of(user: PortalUser) -> list[tuple[str, str]]:
    """The user's real contacts as (kind, address): a placeholder e-mail is not one."""
    contacts = []
    if user.deliverable_email:
        contacts.append(("email", user.deliverable_email))
    if user.phone:
        contacts.append(("sms", user.phone))
    return contacts


def send_notice(kind: str, to: str, subject: str, text: str, html: str | None = None,
                attachments: tuple[tuple[str, str, bytes], ...] = ()) -> bool:
    try:
        transport_for(kind).send(Notice(to, subject, text, html, tuple(attachments)))
    except Exception:
        log.exception("notice to a %s contact failed", kind)
        return False
    return True


def announce_security_change(user: PortalUser, what: str,
                             old_contact: tuple[str, str] | None = None) -> int:
    """Tell the user, on every real contact (and the old one), that ``what`` changed.
    Returns how many notices went out."""
    text = f"{SECURITY_TEXTS[what]} {NOT_YOU}"
    targets = contacts_of(user)
    if old_contact and old_contact not in targets:
        targets.append(old_contact)
    sent = 0
    for kind, address in targets:
        sent += send_notice(kind, address, "Изменение данных для входа", text)
    return sent
