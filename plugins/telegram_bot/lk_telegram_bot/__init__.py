"""The portal's Telegram bot: balance and bills, the bill's PDF, readings with the web's check
and confirm steps, a link to pay, and the notices a resident chose, in a chat linked to the
cabinet by a one-time link from the profile (app.services.messenger_links).

Webhook mode behind the portal: Telegram posts updates to ``/telegram/webhook/<path>`` (the
path derived from TELEGRAM_WEBHOOK_SECRET, so scanners get 404) with the header
``X-Telegram-Bot-Api-Secret-Token`` (the secret itself, compared in constant time: 403
otherwise); ``flask telegram set-webhook`` registers the address with setWebhook. Speaks the
Bot API through python-telegram-bot (lk_telegram_bot.client). Does nothing unless
TELEGRAM_BOT_TOKEN is set, or, outside production, TELEGRAM_DEV_CHAT (lk_telegram_bot.dev_chat:
the bot against a loopback Bot API in the process, and its chat at /dev/telegram).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re

import click
from flask import current_app
from flask.cli import AppGroup

from app.plugins.hookspecs import hookimpl
from lk_telegram_bot import dev_chat
from lk_telegram_bot.client import DEFAULT_API_URL, TelegramClient, TelegramTransport

log = logging.getLogger("lk_portal.telegram")

#: Where configure() keeps an app's settings: the module is shared by every app of a process.
EXTENSION = "lk_telegram_bot"
#: The characters setWebhook allows in a secret_token (1-256 of them).
SECRET_FORM = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _setting(app, key: str, default=None):
    value = app.config.get(key)
    if value is None or value == "":
        value = os.environ.get(key)
    return default if value is None or value == "" else value


def webhook_path(secret: str) -> str:
    """The webhook's secret path segment: derived from the secret, never the secret itself
    (which travels only in the header)."""
    return hmac.new(secret.encode(), b"lk-telegram-webhook-path", hashlib.sha256).hexdigest()[:32]


class BotSettings:
    """One app's bot: its client and its webhook's secrets."""

    def __init__(self, client: TelegramClient, secret: str):
        self.client = client
        self._secret = secret
        self.path = webhook_path(secret)

    def __repr__(self) -> str:
        return f"<BotSettings {self.client!r}>"

    def path_matches(self, path: str) -> bool:
        return hmac.compare_digest(path.encode(), self.path.encode())

    def header_matches(self, header: str | None) -> bool:
        return hmac.compare_digest((header or "").encode(), self._secret.encode())

    @property
    def secret(self) -> str:
        return self._secret


def settings(app=None) -> BotSettings | None:
    """The app's bot, or None when TELEGRAM_BOT_TOKEN is unset (and no development chat)."""
    return (app or current_app).extensions.get(EXTENSION, {}).get("bot")


def development_chat(app=None) -> dev_chat.DevChat | None:
    """The app's development chat (TELEGRAM_DEV_CHAT), or None."""
    return (app or current_app).extensions.get(EXTENSION, {}).get("dev_chat")


def _quiet_loggers() -> None:
    """The Bot API's URLs hold the token: httpx logs every request's URL at INFO, and
    python-telegram-bot its base URL (and each call's parameters, the webhook's secret among
    them) at DEBUG."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("telegram").setLevel(logging.INFO)


@hookimpl
def configure(app):
    app.extensions[EXTENSION] = {}
    token = _setting(app, "TELEGRAM_BOT_TOKEN")
    timeout = float(_setting(app, "TELEGRAM_TIMEOUT", 10))
    if dev_chat.enabled(_setting(app, "TELEGRAM_DEV_CHAT"), token=token,
                        production=app.config.get("PRODUCTION"),
                        testing=app.config.get("TESTING")):
        _quiet_loggers()
        dev_chat.hide_start_tokens()
        chat = dev_chat.DevChat()
        app.extensions[EXTENSION].update(bot=BotSettings(chat.client(timeout), chat.secret),
                                         dev_chat=chat)
        return
    if not token:
        return
    secret = str(_setting(app, "TELEGRAM_WEBHOOK_SECRET") or "")
    if not SECRET_FORM.match(secret):
        raise RuntimeError("TELEGRAM_BOT_TOKEN is set but TELEGRAM_WEBHOOK_SECRET is not 16-256 "
                           "characters of A-Z, a-z, 0-9, _ and -")
    api_url = str(_setting(app, "TELEGRAM_API_URL", DEFAULT_API_URL))
    if app.config.get("PRODUCTION") and not api_url.startswith("https://"):
        raise RuntimeError(f"TELEGRAM_API_URL must be https:// in production, not {api_url!r}")
    _quiet_loggers()
    client = TelegramClient(str(token), api_url, timeout=timeout,
                            username=_setting(app, "TELEGRAM_BOT_USERNAME"))
    app.extensions[EXTENSION]["bot"] = BotSettings(client, secret)


@hookimpl
def register_notification_transports():
    bot = settings()
    if bot is None:
        return []
    kind = dev_chat.DevChatTransport if development_chat() else TelegramTransport
    return [kind(bot.client)]


@hookimpl
def register_views(appbuilder):
    """POST /telegram/webhook/<path>: only when the bot is configured; /dev/telegram: only
    with the development chat."""
    if settings() is not None:
        from lk_telegram_bot.views import TelegramWebhookView

        appbuilder.add_view_no_menu(TelegramWebhookView)
    if development_chat() is not None:
        from lk_telegram_bot.dev_views import DevTelegramView

        appbuilder.add_view_no_menu(DevTelegramView)


@hookimpl
def register_commands(cli):
    cli.add_command(telegram_cli)


telegram_cli = AppGroup("telegram", help="Telegram-бот: адрес для обновлений (webhook).")


@telegram_cli.command("set-webhook")
@click.option("--base-url", default=None,
              help="The portal's public https:// address (default: PORTAL_URL).")
def set_webhook(base_url: str | None) -> None:
    """Tell Telegram where to post updates (setWebhook, with the secret header)."""
    bot = settings()
    if bot is None:
        raise click.ClickException("TELEGRAM_BOT_TOKEN is not set: the bot is off.")
    base = (base_url or current_app.config.get("PORTAL_URL") or "").rstrip("/")
    if not base.startswith("https://"):
        raise click.ClickException(f"Telegram posts only to https:// addresses, not {base!r}: "
                                   "set PORTAL_URL or --base-url.")
    url = f"{base}/telegram/webhook/{bot.path}"
    bot.client.set_webhook(url, bot.secret)
    click.echo(f"Webhook set: {base}/telegram/webhook/{bot.path[:4]}… (updates: message, "
               "callback_query)")


@telegram_cli.command("delete-webhook")
def delete_webhook() -> None:
    """Stop Telegram posting updates to the portal (deleteWebhook)."""
    bot = settings()
    if bot is None:
        raise click.ClickException("TELEGRAM_BOT_TOKEN is not set: the bot is off.")
    bot.client.delete_webhook()
    click.echo("Webhook deleted.")
