"""The Bot API through python-telegram-bot: what the dialog decided (``Reply``, ``Document``,
``CallbackAnswer``) sent out, and the calls of the CLI (``getMe``, ``setWebhook``).

The portal's views and Celery tasks are synchronous, and python-telegram-bot is asyncio: each
batch of calls runs in ``asyncio.run`` with a Bot and an HTTP client of its own, closed at the
end, so nothing outlives its event loop and a forked web worker inherits no connection (in a
thread of its own when the calling thread already runs a loop).
"""
from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import TelegramError
from telegram.request import HTTPXRequest

from app.plugins import DeliveryError

log = logging.getLogger("lk_portal.telegram")

DEFAULT_API_URL = "https://api.telegram.org"
T = TypeVar("T")


@dataclass(frozen=True)
class Button:
    """An inline button: ``data`` comes back as a callback query, ``url`` opens a page."""

    text: str
    data: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Reply:
    """sendMessage: text with rows of inline buttons."""

    chat_id: str
    text: str
    buttons: Sequence[Sequence[Button]] = ()

    async def send(self, bot: Bot) -> None:
        markup = InlineKeyboardMarkup([
            [InlineKeyboardButton(b.text, callback_data=b.data, url=b.url) for b in row]
            for row in self.buttons]) if self.buttons else None
        await bot.send_message(chat_id=self.chat_id, text=self.text, reply_markup=markup)


@dataclass(frozen=True)
class Document:
    """sendDocument: a file made by the portal (a bill's PDF)."""

    chat_id: str
    filename: str
    content: bytes = field(repr=False)
    caption: str = ""

    async def send(self, bot: Bot) -> None:
        await bot.send_document(chat_id=self.chat_id,
                                document=InputFile(io.BytesIO(self.content),
                                                   filename=self.filename),
                                caption=self.caption or None)


@dataclass(frozen=True)
class CallbackAnswer:
    """answerCallbackQuery: stops the button's spinner (with a short notice, if any)."""

    callback_query_id: str
    text: str | None = None

    async def send(self, bot: Bot) -> None:
        await bot.answer_callback_query(self.callback_query_id, text=self.text)


Action = Reply | Document | CallbackAnswer


UNAVAILABLE = "Telegram сейчас не отвечает. Попробуйте позже."


class DeliveryFailed(DeliveryError):
    """The Bot API refused or did not answer: the text is for the user, the reason is in the
    log."""


class TelegramClient:
    """One bot's connection settings. Never shows its token, even in a trace."""

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL, *, timeout: float = 10.0,
                 username: str | None = None):
        self._token = token
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._username = (username or "").lstrip("@") or None

    def __repr__(self) -> str:
        return f"<TelegramClient api_url={self.api_url} username={self._username}>"

    def run(self, call: Callable[[Bot], Awaitable[T]]) -> T:
        """Run ``call(bot)`` on a loop and an HTTP client of its own."""
        async def go() -> T:
            request = HTTPXRequest(connection_pool_size=2, connect_timeout=self.timeout,
                                   read_timeout=self.timeout, write_timeout=self.timeout,
                                   pool_timeout=self.timeout)
            bot = Bot(self._token, base_url=f"{self.api_url}/bot",
                      base_file_url=f"{self.api_url}/file/bot", request=request,
                      get_updates_request=request)
            try:
                return await call(bot)
            finally:
                await request.shutdown()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(go())
        # A loop already runs in this thread (an async server, a test harness's): the calls
        # get a thread and a loop of their own, and this one waits for them.
        with ThreadPoolExecutor(max_workers=1) as apart:
            return apart.submit(asyncio.run, go()).result()

    def perform(self, actions: Sequence[Action], *, strict: bool = False) -> int:
        """Send the actions in order; returns how many went out. A refusal is logged and the
        rest still go, unless ``strict`` (a notice: the caller must know it failed)."""
        async def go(bot: Bot) -> int:
            sent = 0
            for action in actions:
                try:
                    await action.send(bot)
                except TelegramError as exc:
                    log.warning("Bot API refused %s: %s", type(action).__name__, exc)
                    if strict:
                        raise DeliveryFailed(UNAVAILABLE) from None
                else:
                    sent += 1
            return sent

        return self.run(go) if actions else 0

    def username(self) -> str:
        """The bot's @username for t.me links: TELEGRAM_BOT_USERNAME, else asked once with
        getMe."""
        if self._username is None:
            async def me(bot: Bot) -> Any:
                return await bot.get_me()

            try:
                self._username = self.run(me).username
            except TelegramError as exc:
                log.warning("Bot API getMe failed: %s", exc)
                raise DeliveryFailed(UNAVAILABLE) from None
        return self._username

    def set_webhook(self, url: str, secret_token: str) -> bool:
        async def call(bot: Bot) -> bool:
            return await bot.set_webhook(url, secret_token=secret_token,
                                         allowed_updates=["message", "callback_query"],
                                         drop_pending_updates=False)

        return self.run(call)

    def delete_webhook(self) -> bool:
        async def call(bot: Bot) -> bool:
            return await bot.delete_webhook()

        return self.run(call)


class TelegramTransport:
    """The bot as a notification transport (``channel = "messenger"``): a notice to a linked
    chat (``to`` is the chat id); also makes the profile's one-time t.me link."""

    name = "telegram"
    channel = "messenger"
    title = "Telegram"

    def __init__(self, client: TelegramClient):
        self.client = client

    def __repr__(self) -> str:
        return f"<TelegramTransport {self.client!r}>"

    def send(self, notice) -> None:
        text = f"{notice.subject}\n\n{notice.text}" if notice.subject else notice.text
        self.client.perform([Reply(notice.to, text)], strict=True)

    def link_url(self, token: str) -> str:
        return f"https://t.me/{self.client.username()}?start={token}"
