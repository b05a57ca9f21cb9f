"""Built-in plugin: e-mail through Flask-Mail and a real SMTP server (MAIL_* settings): the
``email`` one-time-code channel and the ``email`` notification transport. Offered only when
MAIL_SERVER is set; otherwise the development outbox stands in."""
from __future__ import annotations

import logging
import smtplib

from flask_mail import Message

from app.extensions import mail
from app.plugins.hookspecs import hookimpl

log = logging.getLogger(__name__)

SUBJECTS = {
    "register": "Код для регистрации в личном кабинете",
    "recover": "Код для восстановления доступа к личному кабинету",
    "login": "Код для входа в личный кабинет",
    "change_contact": "Код для подтверждения адреса электронной почты",
}

_settings: dict = {}


def _send(message: Message) -> None:
    from app.plugins import DeliveryError

    try:
        mail.send(message)
    except (smtplib.SMTPException, OSError) as exc:
        log.error("SMTP delivery failed: %s", type(exc).__name__)
        raise DeliveryError("Не удалось отправить письмо. Попробуйте ещё раз позже.") from None


class EmailChannel:
    name = "email"

    def send(self, destination: str, code: str, purpose: str) -> None:
        body = (
            f"Ваш код: {code}\n\n"
            "Код действует 10 минут. Никому его не сообщайте: сотрудники НЭСК его не спрашивают.\n"
            "Если вы не запрашивали код, просто проигнорируйте это письмо.\n"
        )
        _send(Message(subject=SUBJECTS.get(purpose, "Код подтверждения"),
                      recipients=[destination], body=body))


class EmailTransport:
    name = "email"
    channel = "email"

    def send(self, notice) -> None:
        _send(Message(subject=notice.subject, recipients=[notice.to], body=notice.text))


@hookimpl
def configure(app):
    _settings["enabled"] = bool(app.config.get("MAIL_SERVER"))


@hookimpl
def register_otp_channels():
    return [EmailChannel()] if _settings.get("enabled") else []


@hookimpl
def register_notification_transports():
    return [EmailTransport()] if _settings.get("enabled") else []
