"""Built-in plugin: e-mail through Flask-Mail and a real SMTP server (MAIL_* settings): the
``email`` one-time-code channel and the ``email`` notification transport. Offered only when
MAIL_SERVER is set; otherwise the development outbox stands in."""
from __future__ import annotations

import logging
import quopri
import smtplib
from contextlib import contextmanager
from email import policy as email_policy

from flask import current_app
from flask_mail import Message

from app.extensions import mail
from app.plugins import DeliveryError
from app.plugins.hookspecs import hookimpl
from app.services.mailings import ConnectionLost, PermanentFailure, TemporaryFailure

log = logging.getLogger(__name__)

SUBJECTS = {
    "register": "Код для регистрации в личном кабинете",
    "recover": "Код для восстановления доступа к личному кабинету",
    "login": "Код для входа в личный кабинет",
    "change_contact": "Код для подтверждения адреса электронной почты",
}

def _send(message: Message) -> None:

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
        _send(NoticeMessage(subject=SUBJECTS.get(purpose, "Код подтверждения"),
                            recipients=[destination], body=body))


class SmtpBulkMailer:
    """Mailings over one SMTP connection per chunk (smtplib, the MAIL_* settings)."""

    name = "smtp"
    development = False

    def __init__(self, config):
        self.host, self.port = config["MAIL_SERVER"], int(config.get("MAIL_PORT") or 25)
        self.ssl, self.tls = bool(config.get("MAIL_USE_SSL")), bool(config.get("MAIL_USE_TLS"))
        self.username, self.password = config.get("MAIL_USERNAME"), config.get("MAIL_PASSWORD")
        self.timeout = float(config.get("MAILING_SMTP_TIMEOUT") or 30)

    @contextmanager
    def connect(self):

        try:
            smtp = (smtplib.SMTP_SSL if self.ssl else smtplib.SMTP)(
                self.host, self.port, timeout=self.timeout)
            if self.tls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
        except (smtplib.SMTPException, OSError) as exc:
            raise ConnectionLost(f"SMTP {self.host}:{self.port}: {type(exc).__name__}") from None
        try:
            yield SmtpConnection(smtp)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


class SmtpConnection:
    def __init__(self, smtp: smtplib.SMTP):
        self.smtp = smtp

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        """One message; the server's code decides: 4xx later, 5xx bounced, a drop lost."""

        try:
            self.smtp.sendmail(sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise (TemporaryFailure if 400 <= code < 500 else PermanentFailure)(
                f"{code} {_text(text)}") from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code in (421,):  # the server closes the connection
                raise ConnectionLost(f"{exc.smtp_code} {_text(exc.smtp_error)}") from None
            raise (TemporaryFailure if 400 <= exc.smtp_code < 500 else PermanentFailure)(
                f"{exc.smtp_code} {_text(exc.smtp_error)}") from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise ConnectionLost(type(exc).__name__) from None


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class NoticeMessage(Message):
    """Flask-Mail's message (codes and notices alike), written out so that a long Russian
    subject keeps its spaces (the standard library's refolding at 78 columns drops the space
    between two encoded words; Flask-Mail has already folded it correctly) and text parts are
    quoted-printable, so that no line of a long paragraph exceeds SMTP's 998 bytes."""

    def _message(self):
        msg = super()._message()
        msg.policy = email_policy.SMTP.clone(max_line_length=998)
        for part in msg.walk():
            if part.get_content_maintype() == "text" and \
                    part.get("Content-Transfer-Encoding") == "8bit":
                data = part.get_payload(decode=True)
                del part["Content-Transfer-Encoding"]
                part.set_payload(quopri.encodestring(data).decode("ascii"))
                part["Content-Transfer-Encoding"] = "quoted-printable"
        return msg


class EmailTransport:
    name = "email"
    channel = "email"

    def send(self, notice) -> None:
        """A plain letter, or multipart: the text, its HTML alternative and attachments."""
        message = NoticeMessage(subject=notice.subject, recipients=[notice.to],
                                body=notice.text, html=getattr(notice, "html", None))
        for filename, mimetype, data in getattr(notice, "attachments", ()):
            message.attach(filename, mimetype, data)
        _send(message)


def _enabled() -> bool:
    """Offered to the app being built (its context is current) when it has an SMTP server."""
    return bool(current_app.config.get("MAIL_SERVER"))


@hookimpl
def register_otp_channels():
    return [EmailChannel()] if _enabled() else []


@hookimpl
def register_notification_transports():
    return [EmailTransport()] if _enabled() else []


@hookimpl
def register_bulk_mailers():
    return [SmtpBulkMailer(current_app.config)] if _enabled() else []
