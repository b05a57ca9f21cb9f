"""A mailing's letters: each recipient's text and HTML from the mailing's Jinja wording (in a
sandbox), and its MIME bytes. Building a message with the ``email`` package costs
milliseconds (most of it encoding the Cyrillic headers), so the headers common to a mailing
are encoded once and each message only adds its recipient, its ids and its two base64 parts.
"""
from __future__ import annotations

import base64
import html
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from email.header import Header
from email.utils import formataddr, parseaddr

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from app.models import Mailing
from app.services.russian import money

#: Placeholders a mailing's text may use, with what they mean (shown to staff).
PLACEHOLDERS = {
    "name": "имя и отчество (или имя) получателя",
    "account": "номер лицевого счёта",
    "debt": "задолженность, руб.",
}
SAMPLE = {"name": "Иван Петрович", "account": "230000000001", "debt": "1 234,56"}
#: Staff's wordings are rendered in a sandbox: a template cannot reach the portal's objects.
SANDBOX = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@dataclass(frozen=True)
class Letter:
    """One recipient's message as text and HTML, before it becomes bytes."""

    subject: str
    text: str

    @property
    def html(self) -> str:
        return _html_page(self.text, "#")


class Composer:
    """Builds each recipient's message of one mailing; what all share is done once."""

    def __init__(self, mailing: Mailing, sender: str, unsubscribe_url: Callable[[int], str],
                 domain: str):
        self.mailing_id = mailing.id
        self.subject = SANDBOX.from_string(mailing.subject)
        self.body = SANDBOX.from_string(mailing.body)
        self.sender = parseaddr(sender)[1]
        self.unsubscribe_url = unsubscribe_url
        self.domain = domain
        self._from = _encoded_address(sender)
        self._boundary = "=_lk_" + uuid.uuid4().hex

    def letter(self, name: str, account: str | None, debt: Decimal) -> Letter:
        values = {"name": name or "абонент", "account": account or "",
                  "debt": money(debt if debt > 0 else Decimal("0"))}
        return Letter(self.subject.render(**values).strip(), self.body.render(**values))

    def message(self, recipient_id: int, email: str, user_id: int, name: str,
                account: str | None, debt: Decimal, date: str) -> bytes:
        """The message as bytes for SMTP; ``date`` is the Date header (once per chunk)."""
        letter = self.letter(name, account, debt)
        link = self.unsubscribe_url(user_id)
        text = (f"{letter.text.rstrip()}\n\n--\nАО «НЭСК». Вы получили это письмо как абонент "
                f"с электронной почтой в личном кабинете.\nОтписаться от рассылок: {link}\n")
        page = _html_page(letter.text, link)
        headers = (
            f"From: {self._from}\r\n"
            f"To: {email}\r\n"
            f"Subject: {encode_header(letter.subject)}\r\n"
            f"Date: {date}\r\n"
            f"Message-ID: <mailing-{self.mailing_id}.{recipient_id}@{self.domain}>\r\n"
            f"List-Unsubscribe: <{link}>\r\n"
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            f"List-Id: <mailing-{self.mailing_id}.{self.domain}>\r\n"
            "Precedence: bulk\r\n"
            "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/alternative; boundary="{self._boundary}"\r\n\r\n')
        return (headers.encode("ascii") + _part(self._boundary, "text/plain", text)
                + _part(self._boundary, "text/html", page)
                + f"--{self._boundary}--\r\n".encode("ascii"))


def encode_header(value: str) -> str:
    """RFC 2047 for a header value: as is when ASCII, else base64 UTF-8 encoded words of at
    most 45 bytes each (a whole character never split), folded. email.header.Header does the
    same in about a millisecond; this runs once per message."""
    if value.isascii():
        return value
    words, chunk = [], b""
    for char in value:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > 45:
            words.append(chunk)
            chunk = b""
        chunk += data
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words)


def _encoded_address(value: str) -> str:
    name, address = parseaddr(value)
    return formataddr((str(Header(name, "utf-8").encode()) if name else "", address))


def _part(boundary: str, mimetype: str, content: str) -> bytes:
    body = base64.encodebytes(content.encode("utf-8")).replace(b"\n", b"\r\n")
    return (f"--{boundary}\r\nContent-Type: {mimetype}; charset=utf-8\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode("ascii") + body


def _html_page(text: str, unsubscribe: str) -> str:
    paragraphs = "\n".join(f"<p>{html.escape(p).replace(chr(10), '<br>' + chr(10))}</p>"
                           for p in text.strip().split("\n\n") if p.strip())
    return (
        "<!doctype html>\n<html lang=\"ru\"><head><meta charset=\"utf-8\"></head>\n"
        "<body style=\"font-family:Arial,sans-serif;font-size:15px;color:#1b2430\">\n"
        "<div style=\"max-width:600px;margin:0 auto\">\n"
        "<div style=\"background:#1d4f91;color:#fff;padding:12px 18px;font-weight:bold\">"
        "АО «НЭСК» — личный кабинет</div>\n"
        f"<div style=\"padding:12px 18px\">\n{paragraphs}\n</div>\n"
        "<div style=\"padding:12px 18px;font-size:12px;color:#6b778a;border-top:1px solid "
        "#e6eaf0\">Контактный центр 8-800-600-02-20 (круглосуточно).\n"
        f"<a href=\"{html.escape(unsubscribe)}\">Отписаться от рассылок</a></div>\n"
        "</div></body></html>\n")
