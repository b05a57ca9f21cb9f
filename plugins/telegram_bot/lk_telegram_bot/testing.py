"""A loopback Telegram Bot API for tests of the bot (TELEGRAM_API_URL pointed at it).

A real HTTP server on 127.0.0.1 that answers ``/bot<token>/<method>`` as the Bot API does
(form-encoded and multipart requests, ``{"ok": true, "result": ...}``), checks the token, and
records every call; ``fail`` scripts refusals (a user who blocked the bot: 403). Also builds
the updates Telegram would post to the portal's webhook.
"""
from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "123456:TEST-token_for-the-loopback-bot"
SECRET = "webhook-secret-for-the-tests-0123456789"
USERNAME = "nesk_test_bot"
METHODS = ("getMe", "sendMessage", "sendDocument", "answerCallbackQuery", "setWebhook",
           "deleteWebhook")


def _form(headers, raw: bytes) -> tuple[dict, dict]:
    """The parameters (JSON-decoded where they are JSON) and the files of a request."""
    kind = headers.get("Content-Type", "")
    params: dict = {}
    files: dict = {}
    if kind.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {kind}\r\n\r\n".encode() + raw)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            body = part.get_payload(decode=True)
            if filename:
                files[name] = {"filename": filename, "content": body}
            else:
                params[name] = body.decode()
    elif raw:
        if kind.startswith("application/json"):
            params = json.loads(raw)
        else:
            params = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
    for key, value in list(params.items()):
        if isinstance(value, str) and value[:1] in "[{":
            try:
                params[key] = json.loads(value)
            except ValueError:
                pass
    return params, files


class FakeBotApi:
    """Records ``calls`` ({"method", "params", "files", and "result" once answered}) and
    answers like the Bot API."""

    def __init__(self, token: str = TOKEN, username: str = USERNAME):
        self.token = token
        self.username = username
        self.calls: list[dict] = []
        #: (method, error_code, description) to answer instead, one per matching call.
        self.fail: list[tuple[str, int, str]] = []
        self._ids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                prefix = f"/bot{fake.token}/"
                if not self.path.startswith(prefix):
                    return self._answer(401, {"ok": False, "error_code": 401,
                                              "description": "Unauthorized"})
                method = self.path[len(prefix):].split("?")[0]
                params, files = _form(self.headers, raw)
                call = {"method": method, "params": params, "files": files}
                fake.calls.append(call)
                for position, (failing, code, description) in enumerate(fake.fail):
                    if failing == method:
                        del fake.fail[position]
                        return self._answer(code, {"ok": False, "error_code": code,
                                                   "description": description})
                if method not in METHODS:
                    return self._answer(404, {"ok": False, "error_code": 404,
                                              "description": "Not Found"})
                call["result"] = fake.result(method, params)
                return self._answer(200, {"ok": True, "result": call["result"]})

            def do_GET(self):
                self._handle()

            def do_POST(self):
                self._handle()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # shutdown() waits up to one poll: 0.05 s, not the default half second per test.
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def result(self, method: str, params: dict):
        if method == "getMe":
            return {"id": 7000001, "is_bot": True, "first_name": "НЭСК", "username": self.username}
        if method in ("sendMessage", "sendDocument"):
            message = {"message_id": next(self._ids), "date": int(time.time()),
                       "chat": {"id": int(params["chat_id"]), "type": "private"}}
            if method == "sendMessage":
                message["text"] = params.get("text", "")
            else:
                message["document"] = {"file_id": f"doc{message['message_id']}",
                                       "file_unique_id": f"u{message['message_id']}"}
            return message
        return True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def of(self, method: str) -> list[dict]:
        return [call for call in self.calls if call["method"] == method]

    def texts(self, chat_id=None) -> list[str]:
        """The texts of sendMessage, to one chat or to all."""
        return [c["params"]["text"] for c in self.of("sendMessage")
                if chat_id is None or str(c["params"]["chat_id"]) == str(chat_id)]

    def buttons(self, call: dict) -> list[dict]:
        """The inline buttons of a sendMessage, flattened."""
        markup = call["params"].get("reply_markup") or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]

    def reset(self) -> None:
        self.calls.clear()
        self.fail.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_updates = itertools.count(1000)


def message_update(chat_id: int, text: str, *, chat_type: str = "private") -> dict:
    """An update with a text message, as Telegram posts it to the webhook."""
    return {"update_id": next(_updates), "message": {
        "message_id": next(_updates), "date": int(time.time()), "text": text,
        "chat": {"id": chat_id, "type": chat_type, "first_name": "Иван"},
        "from": {"id": chat_id, "is_bot": False, "first_name": "Иван"}}}


def callback_update(chat_id: int, data: str, *, message_id: int | None = None,
                    text: str = "…") -> dict:
    """An update with a button pressed under one of the bot's messages (``message_id`` and
    ``text``: that message's, when known)."""
    return {"update_id": next(_updates), "callback_query": {
        "id": str(next(_updates)), "data": data, "chat_instance": "ci",
        "from": {"id": chat_id, "is_bot": False, "first_name": "Иван"},
        "message": {"message_id": message_id or next(_updates), "date": int(time.time()),
                    "text": text, "chat": {"id": chat_id, "type": "private"}}}}
