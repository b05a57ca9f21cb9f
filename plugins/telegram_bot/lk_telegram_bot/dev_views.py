"""/dev/telegram: the development chat with the bot (lk_telegram_bot.dev_chat). Registered only
when the development chat is on, which production refuses.

What the developer types or presses is posted to the portal's own webhook, with the secret
header, through the app's WSGI stack (a test client of the running app: no network, no port to
know), exactly as Telegram would post it; the page then shows what the bot sent to the loopback
Bot API. Plain forms and a reload: no JavaScript.
"""
from __future__ import annotations

import io
import mimetypes
import re
from pathlib import Path

from flask import abort, current_app, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose

from lk_telegram_bot import SECRET_HEADER, development_chat, settings
from lk_telegram_bot.dev_chat import CHAT_ID, MAX_TEXT, USERNAME

#: A start parameter as Telegram passes it (A-Z a-z 0-9 _ -, at most 64).
START = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _chat():
    chat = development_chat()
    if chat is None:
        abort(404)
    return chat


def deliver(update: dict) -> int:
    """Post ``update`` to the webhook as Telegram does; the webhook's HTTP status."""
    bot = settings()
    client = current_app.test_client()
    answer = client.post(f"/telegram/webhook/{bot.path}", json=update,
                         headers={SECRET_HEADER: bot.secret}, base_url=request.host_url,
                         environ_base={"REMOTE_ADDR": "127.0.0.1"})
    return answer.status_code


def _post(update: dict | None) -> None:
    if update is None:
        abort(404)
    status = deliver(update)
    if status != 200:
        _chat().system(f"Портал ответил на обновление кодом HTTP {status}: см. журнал.")


class DevTelegramView(BaseView):
    """The chat page, its forms (a message, a button, emptying the chat) and the bot's
    documents."""

    route_base = "/dev"
    default_view = "chat"
    #: Absolute: FAB's blueprint resolves a relative folder against flask_appbuilder itself.
    template_folder = str(Path(__file__).resolve().parent / "templates")

    @expose("/telegram")
    def chat(self):
        start = request.args.get("start", "")
        return self.render_template(
            "telegram_dev/chat.html", entries=_chat().entries(), max_text=MAX_TEXT,
            start=start if START.match(start) else "", username=USERNAME, chat_id=CHAT_ID,
            title="Чат с Telegram-ботом (режим разработки)")

    @expose("/telegram/send", methods=["POST"])
    def send(self):
        text = (request.form.get("text") or "").strip()
        if text:
            _post(_chat().message(text))
        return redirect(url_for(".chat", _anchor="last"))

    @expose("/telegram/press", methods=["POST"])
    def press(self):
        call, index = request.form.get("call", ""), request.form.get("button", "")
        if not (call.isdigit() and index.isdigit()):
            abort(404)
        _post(_chat().press(int(call), int(index)))
        return redirect(url_for(".chat", _anchor="last"))

    @expose("/telegram/clear", methods=["POST"])
    def clear(self):
        _chat().clear()
        return redirect(url_for(".chat"))

    @expose("/telegram/file/<int:call>")
    def document(self, call: int):
        found = _chat().document(call)
        if found is None:
            abort(404)
        filename, content = found
        kind = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return send_file(io.BytesIO(content), mimetype=kind, as_attachment=True,
                         download_name=filename)
