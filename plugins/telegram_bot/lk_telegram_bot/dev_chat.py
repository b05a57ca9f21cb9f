"""The bot without Telegram, for development (TELEGRAM_DEV_CHAT): the loopback Bot API of the
tests (lk_telegram_bot.testing.FakeBotApi) started in the portal's process, on 127.0.0.1 and a
free port, with a token and a webhook secret made for this process; and one chat with it, which
the page /dev/telegram (lk_telegram_bot.dev_views) shows and types into.

What the developer types becomes the update Telegram would post, and goes to the portal's real
webhook; what the bot answers is what the fake recorded. So the whole bot runs as in production
but for the last hop. Like the sandbox payment gateway, it is on outside production unless a
real bot is configured, and production refuses it.

The chat lives in the process's memory: a restart empties it, and a notice sent by a separate
Celery worker goes to that worker's own fake (``make run`` runs jobs in-process).
"""
from __future__ import annotations

import logging
import re
import secrets
import threading
from dataclasses import dataclass, field

from flask import current_app, has_request_context, url_for

from lk_telegram_bot.client import TelegramClient, TelegramTransport
from lk_telegram_bot.testing import FakeBotApi, callback_update, message_update

#: The developer's chat: a made-up private chat id, the same in every run.
CHAT_ID = 100200300
USERNAME = "nesk_dev_bot"
#: The entries the page shows, the latest.
SHOWN = 60
#: What Telegram allows in a message.
MAX_TEXT = 4096
ON = {"1", "true", "yes", "on"}


def enabled(value, *, token, production, testing) -> bool:
    """TELEGRAM_DEV_CHAT (``value``) if given, else on outside production and the tests when
    no real bot is configured. Refuses it with PRODUCTION, and with a real token (one bot at a
    time)."""
    if value is None or value == "":
        return not (production or testing or token)
    on = value if isinstance(value, bool) else str(value).strip().lower() in ON
    if on and production:
        raise RuntimeError("PRODUCTION is on but TELEGRAM_DEV_CHAT turns the Telegram bot's "
                           "development chat on: switch it off")
    if on and token:
        raise RuntimeError("TELEGRAM_DEV_CHAT and TELEGRAM_BOT_TOKEN are both set: the "
                           "development chat replaces the real bot, unset one of them")
    return on


class HideStartToken(logging.Filter):
    """The development server logs each request's line, and the one-time link from the profile
    (/dev/telegram?start=<token>) carries the token: logged as «…»."""

    TOKEN = re.compile(r"([?&]start=)[A-Za-z0-9_-]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.TOKEN.sub(r"\1…", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self.TOKEN.sub(r"\1…", a) if isinstance(a, str) else a
                                for a in record.args)
        return True


def hide_start_tokens() -> None:
    """Install HideStartToken on the development server's logger, once per process."""
    server_log = logging.getLogger("werkzeug")
    if not any(isinstance(f, HideStartToken) for f in server_log.filters):
        server_log.addFilter(HideStartToken())


@dataclass(frozen=True)
class Entry:
    """One line of the chat as the page shows it."""

    mine: bool
    text: str = ""
    #: Rows of {"text", "url"} or {"text", "index"} (a button to press: its place in the call).
    buttons: list[list[dict]] = field(default_factory=list)
    #: A document's filename; ``call`` is its place in the fake's records, for the download.
    filename: str | None = None
    call: int | None = None
    system: bool = False


class DevChat:
    """The fake Bot API of this process and the developer's side of the chat."""

    def __init__(self):
        self.token = f"{secrets.randbelow(9 * 10**9) + 10**9}:{secrets.token_urlsafe(27)}"
        self.secret = secrets.token_urlsafe(32)
        self.api = FakeBotApi(self.token, username=USERNAME)
        #: (how many calls the fake had recorded then, the entry): the developer's side.
        self._mine: list[tuple[int, Entry]] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<DevChat {self.api.url}>"

    def client(self, timeout: float) -> TelegramClient:
        return TelegramClient(self.token, self.api.url, timeout=timeout, username=USERNAME)

    def close(self) -> None:
        self.api.close()

    def _note(self, entry: Entry) -> None:
        with self._lock:
            self._mine.append((len(self.api.calls), entry))

    # What the developer does: each returns the update to post to the webhook ------------

    def message(self, text: str) -> dict:
        text = text.strip()[:MAX_TEXT]
        self._note(Entry(mine=True, text=text))
        return message_update(CHAT_ID, text)

    def press(self, call: int, index: int) -> dict | None:
        """The update of pressing the ``index``-th button of the bot's message recorded as
        ``call``; None when there is no such button."""
        found = self._message(call)
        if found is None:
            return None
        buttons = [b for row in _keyboard(found) for b in row]
        if not 0 <= index < len(buttons) or "callback_data" not in buttons[index]:
            return None
        button = buttons[index]
        self._note(Entry(mine=True, text=f"Нажата кнопка «{button.get('text', '')}»"))
        sent = found.get("result") or {}
        return callback_update(CHAT_ID, button["callback_data"],
                               message_id=sent.get("message_id"),
                               text=found["params"].get("text", ""))

    def clear(self) -> None:
        """An empty chat (the link to the cabinet, kept in the database, stays)."""
        with self._lock:
            self.api.reset()
            self._mine.clear()

    def system(self, text: str) -> None:
        """A line from the stand-in itself (the webhook refused, say)."""
        self._note(Entry(mine=False, text=text, system=True))

    # What the page shows ------------------------------------------------------------------

    def _message(self, call: int) -> dict | None:
        calls = self.api.calls
        if not 0 <= call < len(calls):
            return None
        found = calls[call]
        ours = str(found["params"].get("chat_id")) == str(CHAT_ID)
        return found if ours and found["method"] == "sendMessage" else None

    def document(self, call: int) -> tuple[str, bytes] | None:
        calls = self.api.calls
        if not 0 <= call < len(calls):
            return None
        found = calls[call]
        sent = found["files"].get("document")
        if found["method"] != "sendDocument" or not sent or \
                str(found["params"].get("chat_id")) != str(CHAT_ID):
            return None
        return sent["filename"], sent["content"]

    def entries(self, limit: int = SHOWN) -> list[Entry]:
        """The chat in order: the developer's lines between the bot's, the latest ``limit``."""
        with self._lock:
            mine = list(self._mine)
        calls = list(self.api.calls)
        out: list[Entry] = []
        position = 0
        for index, call in enumerate(calls):
            while position < len(mine) and mine[position][0] <= index:
                out.append(mine[position][1])
                position += 1
            entry = _bot_entry(index, call)
            if entry is not None:
                out.append(entry)
        out.extend(entry for _, entry in mine[position:])
        return out[-limit:]


def _keyboard(call: dict) -> list[list[dict]]:
    markup = call["params"].get("reply_markup") or {}
    return markup.get("inline_keyboard", []) if isinstance(markup, dict) else []


def _bot_entry(index: int, call: dict) -> Entry | None:
    """A recorded Bot API call as the chat shows it (None: not a line of this chat)."""
    params = call["params"]
    if call["method"] == "answerCallbackQuery":
        text = params.get("text")
        return Entry(mine=False, text=f"Всплывающее уведомление: {text}", system=True) \
            if text else None
    if str(params.get("chat_id")) != str(CHAT_ID):
        return None
    if call["method"] == "sendMessage":
        rows, flat = [], 0
        for row in _keyboard(call):
            shown = []
            for button in row:
                if "url" in button:
                    shown.append({"text": button.get("text", ""), "url": button["url"]})
                else:
                    shown.append({"text": button.get("text", ""), "index": flat})
                flat += 1
            rows.append(shown)
        return Entry(mine=False, text=params.get("text", ""), buttons=rows, call=index)
    if call["method"] == "sendDocument" and call["files"].get("document"):
        return Entry(mine=False, text=params.get("caption") or "",
                     filename=call["files"]["document"]["filename"], call=index)
    return None


class DevChatTransport(TelegramTransport):
    """The bot's transport whose one-time link opens the development chat, not t.me."""

    def link_url(self, token: str) -> str:
        if has_request_context():
            return url_for("DevTelegramView.chat", start=token, _external=True)
        portal = str(current_app.config.get("PORTAL_URL") or "").rstrip("/")
        return f"{portal}/dev/telegram?start={token}"
