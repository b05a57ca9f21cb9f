"""The SMS.ru channel against a local HTTP server that speaks the same API."""
from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.plugins import DeliveryError
from lk_sms_ru import SmsRuChannel


class FakeSmsRu:
    """A loopback SMS.ru: records requests and answers with a scripted reply."""

    def __init__(self):
        self.requests: list[dict] = []
        self.reply: dict | None = None
        self.raw: bytes | None = None
        self.delay = 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                fake.requests.append({"path": self.path, **{k: v[0] for k, v in form.items()}})
                time.sleep(fake.delay)
                body = fake.raw if fake.raw is not None else json.dumps(fake.reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # shutdown() waits up to one poll: 0.05 s, not the default half second per test.
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def ok(self, number: str, sms_id: str = "000000-10000000"):
        self.reply = {"status": "OK", "status_code": 100, "balance": 4122.56,
                      "sms": {number: {"status": "OK", "status_code": 100, "sms_id": sms_id}}}

    def number_error(self, number: str, code: int):
        self.reply = {"status": "OK", "status_code": 100,
                      "sms": {number: {"status": "ERROR", "status_code": code,
                                       "status_text": "refused"}}}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway():
    fake = FakeSmsRu()
    yield fake
    fake.close()


def channel(gateway, timeout=2.0, sender=None):
    return SmsRuChannel("test-key", gateway.url, sender, timeout)


def test_sends_code_in_short_russian_message(gateway):
    gateway.ok("79181234567", "201-42")
    sms_id = channel(gateway, sender="NESK").send("+79181234567", "123456", "register")
    assert sms_id == "201-42"
    sent = gateway.requests[0]
    assert sent["path"] == "/sms/send"
    assert sent["api_id"] == "test-key"
    assert sent["to"] == "79181234567"
    assert sent["msg"] == "Код НЭСК: 123456"
    assert sent["json"] == "1"
    assert sent["from"] == "NESK"
    assert len(sent["msg"]) <= 70


@pytest.mark.parametrize("code, message", [
    (207, "Проверьте номер телефона"),
    (202, "Проверьте номер телефона"),
    (230, "Превышен лимит"),
    (231, "Превышен лимит"),
])
def test_per_number_errors_become_clear_messages(gateway, code, message):
    gateway.number_error("79181234567", code)
    with pytest.raises(DeliveryError, match=message):
        channel(gateway).send("+79181234567", "123456", "register")


@pytest.mark.parametrize("code", [200, 201, 204])
def test_account_errors_say_try_later(gateway, code):
    gateway.reply = {"status": "ERROR", "status_code": code, "status_text": "bad"}
    with pytest.raises(DeliveryError, match="Попробуйте ещё раз позже"):
        channel(gateway).send("+79181234567", "123456", "register")


def test_timeout_is_a_clear_retryable_error(gateway):
    gateway.ok("79181234567")
    gateway.delay = 1.5
    with pytest.raises(DeliveryError, match="не ответил вовремя"):
        channel(gateway, timeout=0.3).send("+79181234567", "123456", "register")


def test_garbage_answer_is_an_error(gateway):
    gateway.raw = b"<html>502</html>"
    with pytest.raises(DeliveryError):
        channel(gateway).send("+79181234567", "123456", "register")


def test_unreachable_gateway_is_an_error():
    closed = SmsRuChannel("k", "http://127.0.0.1:9", None, 1.0)
    with pytest.raises(DeliveryError, match="Не удалось отправить SMS"):
        closed.send("+79181234567", "123456", "register")


def test_api_key_never_logged(gateway, caplog):
    gateway.reply = {"status": "ERROR", "status_code": 200, "status_text": "bad api_id"}
    with pytest.raises(DeliveryError):
        channel(gateway).send("+79181234567", "654321", "register")
    assert "test-key" not in caplog.text
    assert "654321" not in caplog.text


def test_notice_transport_sends_the_text(gateway):
    from types import SimpleNamespace

    from lk_sms_ru import SmsRuTransport

    gateway.ok("79181234567")
    transport = SmsRuTransport(channel(gateway))
    notice = SimpleNamespace(to="+79181234567", subject="Тема", text="Пароль изменён.")
    assert transport.send(notice) == "000000-10000000"
    assert gateway.requests[0]["msg"] == "Пароль изменён."
