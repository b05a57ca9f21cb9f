"""A loopback YooKassa API v3 for tests of the plugin and of a portal that uses it.

It checks Basic auth and the Idempotence-Key like the real API, keeps payments and refunds in
memory, scripts failures (401, 429, 5xx, slow answers), and serves a hosted checkout page at
each payment's ``confirmation_url``: paying or cancelling there moves the payment, posts the
notification to ``notify_url`` (from 127.0.0.1, so configure ``YOOKASSA_NOTIFY_IPS``) and sends
the browser back to the ``return_url``, as YooKassa's page does.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHOP, SECRET = "506751", "test_SeCrEt-KeY-42"
CHECKOUT = "/checkout/"
METHOD_NAMES = {"bank_card": "Банковская карта", "sbp": "СБП"}


class FakeYooKassa:
    """A loopback YooKassa API v3: Basic auth, Idempotence-Key, payments and refunds, and
    scripted failures (answered before the request is processed, or after with ``unknown``)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.payments: dict[str, dict] = {}
        self.notified: list[int] = []
        self.refunds: dict[str, dict] = {}
        self.keys: dict[str, tuple[str, int, dict]] = {}
        #: Saved cards by payment method id; a method's "decline" (a reason) refuses its
        #: charges, and a card past its expiry (by ``today``) is refused as card_expired.
        self.methods: dict[str, dict] = {}
        self.today = (2026, 12)
        self.fail: list[int] = []          # statuses to answer, one per request, first
        self.fail_after: list[int] = []    # do the work, then answer these (outcome unknown)
        self.delay = 0.0
        self.retry_after: str | None = None
        #: Where the checkout page posts its notification (the portal's notify URL), if set.
        self.notify_url: str | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict, headers: dict | None = None):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def _error(self, status: int, code: str, description: str = ""):
                headers = {"Retry-After": fake.retry_after} if status == 429 and \
                    fake.retry_after else None
                self._answer(status, {"type": "error", "id": str(uuid.uuid4()), "code": code,
                                      "description": description}, headers)

            def _handle(self, method: str):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.path.startswith(CHECKOUT):
                    return self._checkout(method, raw)
                body = json.loads(raw) if raw else None
                fake.requests.append({"method": method, "path": self.path,
                                      "headers": dict(self.headers), "body": body})
                if fake.delay:
                    time.sleep(fake.delay)
                expected = "Basic " + base64.b64encode(f"{SHOP}:{SECRET}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._error(401, "invalid_credentials",
                                       "Login or password is incorrect")
                if fake.fail:
                    status = fake.fail.pop(0)
                    return self._error(status, "too_many_requests" if status == 429
                                       else "internal_server_error")
                if method == "GET" and self.path.startswith("/v3/payments/"):
                    found = fake.payments.get(self.path.rsplit("/", 1)[1])
                    return self._answer(200, found) if found else \
                        self._error(404, "not_found", "Payment not found")
                if method != "POST" or self.path not in ("/v3/payments", "/v3/refunds"):
                    return self._error(404, "not_found")
                key = self.headers.get("Idempotence-Key")
                if not key:
                    return self._error(400, "invalid_request", "Idempotence-Key is required")
                digest = hashlib.sha256(raw).hexdigest()
                if key in fake.keys:
                    known_digest, status, answer = fake.keys[key]
                    if known_digest != digest:
                        return self._error(400, "invalid_request",
                                           "Idempotence key duplicated with another request")
                else:
                    status, answer = (fake._create(body) if self.path == "/v3/payments"
                                      else fake._refund(body))
                    fake.keys[key] = (digest, status, answer)
                if fake.fail_after:
                    return self._error(fake.fail_after.pop(0), "internal_server_error")
                return self._answer(status, answer)

            def _checkout(self, method: str, raw: bytes):
                """The payer's page: no API auth, like YooKassa's own checkout."""
                payment = fake.payments.get(self.path[len(CHECKOUT):].split("?")[0])
                if payment is None:
                    return self._error(404, "not_found")
                if method == "POST" and payment["status"] == "pending":
                    form = urllib.parse.parse_qs(raw.decode())
                    fake.finish(payment["id"], "succeeded" if "pay" in form else "canceled")
                    self.send_response(303)
                    self.send_header("Location", payment["confirmation"]["return_url"])
                    self.end_headers()
                    return
                page = fake.checkout_page(payment).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # shutdown() waits up to one poll: 0.05 s, not the default half second per test.
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def _create(self, body: dict) -> tuple[int, dict]:
        if len(body.get("description", "")) > 128:
            return 400, {"type": "error", "code": "invalid_request"}
        if "payment_method_id" in body:
            return self._charge_saved(body)
        pid = str(uuid.uuid4())
        payment = {"id": pid, "status": "pending", "paid": False, "amount": body["amount"],
                   "confirmation": {"type": "redirect",
                                    "confirmation_url": f"{self.url}{CHECKOUT}{pid}",
                                    "return_url": body["confirmation"]["return_url"]},
                   "created_at": "2026-11-30T10:00:00.000Z", "description":
                   body.get("description"), "metadata": body.get("metadata", {}),
                   "recipient": {"account_id": SHOP, "gateway_id": "1"},
                   "refundable": False, "test": True}
        if "payment_method_data" in body:
            payment["payment_method"] = {"type": body["payment_method_data"]["type"],
                                         "id": pid, "saved": False}
        if body.get("save_payment_method"):
            payment["save_payment_method"] = True
        self.payments[pid] = payment
        return 200, payment

    def _charge_saved(self, body: dict) -> tuple[int, dict]:
        """A payment by a saved method: final at once, succeeded or canceled with a reason."""
        method = self.methods.get(body["payment_method_id"])
        if method is None:
            return 400, {"type": "error", "code": "invalid_request",
                         "description": "Payment method is not saved"}
        card = method["card"]
        reason = method.get("decline")
        if (int(card["expiry_year"]), int(card["expiry_month"])) < self.today:
            reason = "card_expired"
        pid = str(uuid.uuid4())
        payment = {"id": pid, "amount": body["amount"], "paid": reason is None,
                   "status": "canceled" if reason else "succeeded",
                   "created_at": "2026-12-09T06:15:00.000Z",
                   "description": body.get("description"), "metadata": body.get("metadata", {}),
                   "payment_method": {k: v for k, v in method.items() if k != "decline"},
                   "recipient": {"account_id": SHOP, "gateway_id": "1"},
                   "refundable": reason is None, "test": True}
        if reason:
            payment["cancellation_details"] = {"party": "card_issuer", "reason": reason}
        else:
            payment["captured_at"] = "2026-12-09T06:15:01.000Z"
        self.payments[pid] = payment
        return 200, payment

    def _refund(self, body: dict) -> tuple[int, dict]:
        payment = self.payments.get(body["payment_id"])
        if payment is None or payment["status"] != "succeeded":
            return 400, {"type": "error", "code": "invalid_request",
                         "description": "Payment is not succeeded"}
        rid = str(uuid.uuid4())
        refund = {"id": rid, "payment_id": body["payment_id"], "status": "succeeded",
                  "amount": body["amount"], "created_at": "2026-11-30T11:00:00.000Z"}
        self.refunds[rid] = refund
        return 200, refund

    def succeed(self, pid: str, last4: str = "4477", expiry: tuple[str, str] = ("12", "2028")):
        """Paid; a payment that asked to save the card leaves it saved (as a bank card)."""
        payment = self.payments[pid]
        payment.update(status="succeeded", paid=True,
                       captured_at="2026-11-30T10:05:00.000Z", refundable=True)
        if payment.get("save_payment_method"):
            method = {"type": "bank_card", "id": str(uuid.uuid4()), "saved": True,
                      "title": f"Bank card *{last4}",
                      "card": {"first6": "555555", "last4": last4,
                               "expiry_month": expiry[0], "expiry_year": expiry[1],
                               "card_type": "MasterCard"}}
            payment["payment_method"] = method
            self.methods[method["id"]] = dict(method)

    def finish(self, pid: str, status: str) -> None:
        """The payer paid (or gave up) on the checkout page: the payment moves, and the
        notification goes to ``notify_url`` as YooKassa would send it."""
        if status == "succeeded":
            self.succeed(pid)
        else:
            self.payments[pid].update(status="canceled", cancellation_details={
                "party": "yoo_money", "reason": "canceled_by_user"})
        if self.notify_url:
            body = json.dumps({"type": "notification", "event": f"payment.{status}",
                               "object": self.payments[pid]}).encode()
            request = urllib.request.Request(self.notify_url, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                self.notified.append(answer.status)

    @staticmethod
    def checkout_page(payment: dict) -> str:
        method = (payment.get("payment_method") or {}).get("type")
        return (
            "<!doctype html><html lang='ru'><head><meta charset='utf-8'>"
            "<title>ЮKassa (тестовый магазин)</title></head><body>"
            f"<h1>Оплата {html.escape(payment['amount']['value'])} ₽</h1>"
            f"<p class='description'>{html.escape(payment.get('description') or '')}</p>"
            f"<p class='method'>{METHOD_NAMES.get(method, 'Выбор способа оплаты')}</p>"
            f"<p class='status'>{payment['status']}</p>"
            "<form method='post'><button name='pay' value='1'>Заплатить</button>"
            "<button name='cancel' value='1'>Отменить</button></form></body></html>")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def posts(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST" and r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
