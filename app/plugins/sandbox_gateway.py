"""Built-in plugin: the sandbox payment gateway, the embedded default outside production.

It behaves like a real gateway (YooKassa's API v3 flow) without leaving the portal: creating
a payment returns a confirmation URL of a hosted card page under /sandbox-pay/; the page
checks the card (Luhn, expiry, CVC), asks for a 3-D Secure code when the card wants it, sends
a notification server to server to the portal's notification URL, signed with HMAC-SHA256 of
the body under SANDBOX_PAY_SECRET, and sends the user back to the return URL. Its payments
live as JSON files in SANDBOX_PAY_DIR (the gateway's own records, not the portal's).

Test cards: 4111 1111 1111 1111 succeeds, 4000 0000 0000 0002 is declined, 4000 0000 0000
3220 asks for the 3-D Secure code 12345 first, 4000 0000 0000 9995 pays (and is saved) but its
later charges by the saved method are declined for insufficient funds. A payment by СБП shows
the QR code a bank app would scan, and two buttons that stand for the payer's answer in their
bank app. Off when SANDBOX_PAY_ENABLED is off (by default in production, which also refuses to
start with it on).

Saved cards (autopay): a request with ``save_payment_method`` shows the consent box «Сохранить
карту для автоплатежа» on the card page; paid with the box ticked, the payment carries a saved
method (its id ``sbm_...``, the last four digits, the expiry and the card type), kept in
``methods/``. A payment by ``payment_method_id`` is final at once: succeeded, or canceled as
``card_expired`` (the expiry typed on the page has passed by ``today()``),
``insufficient_funds`` (the card above) or ``permission_revoked`` (the method was forgotten).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import urllib.request
from decimal import Decimal
from pathlib import Path

import segno
from flask import abort, current_app, redirect, request, url_for
from flask_appbuilder import BaseView, expose

from app.plugins.hookspecs import hookimpl
from app.services.payments import (
    CARD_EXPIRED,
    CURRENCY,
    INSUFFICIENT_FUNDS,
    PERMISSION_REVOKED,
    ForgedNotification,
    GatewayError,
    GatewayPayment,
    GatewayRefund,
    Notification,
    PaymentRequest,
    Receipt,
    SavedMethod,
    sandbox_enabled,
)

log = logging.getLogger("lk_portal.sandbox_gateway")

NAME = "sandbox"
SIGNATURE_HEADER = "X-Sandbox-Signature"
#: The sandbox notifies from the portal's own host: nothing else may.
NOTIFY_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128"))
CARD_SUCCEEDS, CARD_DECLINED, CARD_3DS = "4111111111111111", "4000000000000002", "4000000000003220"
#: Pays and is saved, but every later charge by the saved method is declined.
CARD_NO_FUNDS_LATER = "4000000000009995"
THREE_DS_CODE = "12345"
THREE_DS_ATTEMPTS = 3
ID_SHAPE = re.compile(r"^sb_[A-Za-z0-9_-]{16,40}$")
METHOD_SHAPE = re.compile(r"^sbm_[A-Za-z0-9_-]{16,40}$")
#: What the card page lists (the hint under the form).
TEST_CARDS = (("4111 1111 1111 1111", "успешная оплата"),
              ("4000 0000 0000 0002", "отказ банка"),
              ("4000 0000 0000 3220", "с кодом 3-D Secure"),
              ("4000 0000 0000 9995", "оплата проходит, автоплатежи — отказ: недостаточно "
                                      "средств"))


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in number]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return total % 10 == 0


def check_card(number: str, expiry: str, cvc: str, today: dt.date) -> tuple[str, dict]:
    """The card's digits and the errors of the form, by field (in Russian)."""
    errors: dict[str, str] = {}
    digits = re.sub(r"[\s-]", "", number or "")
    if not re.fullmatch(r"\d{13,19}", digits) or not luhn_ok(digits):
        errors["number"] = "Неверный номер карты."
    found = re.fullmatch(r"\s*(\d{2})\s*/\s*(\d{2})\s*", expiry or "")
    if not found or not 1 <= int(found.group(1)) <= 12:
        errors["expiry"] = "Срок действия — месяц и год, например 12/28."
    elif (2000 + int(found.group(2)), int(found.group(1))) < (today.year, today.month):
        errors["expiry"] = "Срок действия карты истёк."
    if not re.fullmatch(r"\d{3}", (cvc or "").strip()):
        errors["cvc"] = "CVC — три цифры на обороте карты."
    return digits, errors


def card_type(digits: str) -> str:
    """The payment system by the card number's first digits (as a gateway reports it)."""
    if digits.startswith("220"):
        return "Mir"
    if digits[:1] == "4":
        return "Visa"
    if digits[:1] in {"2", "5"}:
        return "MasterCard"
    return "Unknown"


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class SandboxStore:
    """The sandbox's own records: one JSON file per payment, written atomically."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.lock = threading.Lock()

    def _path(self, kind: str, name: str) -> Path:
        return self.folder / kind / f"{name}.json"

    def get(self, payment_id: str) -> dict | None:
        if not ID_SHAPE.match(payment_id or ""):
            return None
        path = self._path("payments", payment_id)
        return json.loads(path.read_text("utf-8")) if path.exists() else None

    def put(self, record: dict) -> None:
        self._write(self._path("payments", record["id"]), record)

    def key(self, idempotence_key: str) -> dict | None:
        path = self._path("keys", hashlib.sha256(idempotence_key.encode()).hexdigest())
        return json.loads(path.read_text("utf-8")) if path.exists() else None

    def put_key(self, idempotence_key: str, value: dict) -> None:
        self._write(self._path("keys", hashlib.sha256(idempotence_key.encode()).hexdigest()),
                    value)

    def method(self, method_id: str) -> dict | None:
        if not METHOD_SHAPE.match(method_id or ""):
            return None
        path = self._path("methods", method_id)
        return json.loads(path.read_text("utf-8")) if path.exists() else None

    def put_method(self, method: dict) -> None:
        self._write(self._path("methods", method["id"]), method)

    def drop_method(self, method_id: str) -> None:
        if METHOD_SHAPE.match(method_id or ""):
            self._path("methods", method_id).unlink(missing_ok=True)

    @staticmethod
    def _write(path: Path, value: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(value, f, ensure_ascii=False)
        os.replace(tmp, path)


def post_notification(url: str, body: bytes, headers: dict[str, str]) -> int:
    """Deliver a notification like a real gateway: an HTTP POST, server to server."""
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310 - our own URL
        return response.status


class SandboxGateway:
    """The gateway object the portal talks to, with the same calls a real one answers."""

    name = NAME
    development = True
    methods = ("card", "sbp")
    saves_methods = True

    def __init__(self, folder: str | Path, secret: str):
        self.store = SandboxStore(folder)
        self.secret = secret
        #: How notifications leave: replaced in tests to deliver them when and as they like.
        self.deliver = post_notification
        #: The day a saved card's expiry is checked against: replaced in tests.
        self.today = dt.date.today

    # The API the portal calls

    def create_payment(self, req: PaymentRequest) -> GatewayPayment:
        body = {"amount": str(req.amount), "currency": req.currency,
                "payment_method": req.payment_method,
                "description": req.description, "return_url": req.return_url,
                "receipt": _receipt_json(req.receipt), "metadata": req.metadata}
        if req.save_payment_method:
            body["save_payment_method"] = True
        if req.payment_method_id:
            body["payment_method_id"] = req.payment_method_id
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self.store.lock:
            known = self.store.key(req.idempotence_key)
            if known is not None:
                if known["fingerprint"] != fingerprint:
                    raise GatewayError("invalid_request: Idempotence-Key reused with another "
                                       "body")
                return self._payment(self.store.get(known["id"]))
            if len(req.description) > 128:
                raise GatewayError("invalid_request: description longer than 128")
            record = {"id": "sb_" + secrets.token_urlsafe(18), "status": "pending",
                      "paid": False, "created_at": _now().isoformat(), "test": True,
                      "account": req.account, "three_ds_attempts": 0, "refunds": [], **body}
            if req.payment_method_id:
                self._charge_saved(record)
            self.store.put(record)
            self.store.put_key(req.idempotence_key, {"id": record["id"],
                                                     "fingerprint": fingerprint})
        return self._payment(record)

    def _charge_saved(self, record: dict) -> None:
        """A payment by a saved method, final at once: no page, no payer (the portal reads the
        outcome from the answer; no notification follows)."""
        method = self.store.method(record["payment_method_id"])
        reason = None
        if method is None:
            reason = PERMISSION_REVOKED
        elif (method["expiry_year"], method["expiry_month"]) < (self.today().year,
                                                                 self.today().month):
            reason = CARD_EXPIRED
        elif method["behaviour"] == "no_funds":
            reason = INSUFFICIENT_FUNDS
        if reason is None:
            record.update(status="succeeded", paid=True, captured_at=_now().isoformat())
        else:
            record.update(status="canceled",
                          cancellation_details={"party": "card_issuer", "reason": reason})
        if method is not None:
            record["saved_method"] = {**method, "saved": True}

    def forget_method(self, method_id: str) -> None:
        with self.store.lock:
            self.store.drop_method(method_id)

    def fetch_status(self, external_id: str) -> GatewayPayment:
        record = self.store.get(external_id)
        if record is None:
            raise GatewayError("not_found")
        return self._payment(record)

    def parse_notification(self, req) -> Notification:
        try:
            source = ipaddress.ip_address(req.remote_addr or "")
        except ValueError as exc:
            raise ForgedNotification("wrong source address") from exc
        if not any(source in net for net in NOTIFY_NETWORKS):
            raise ForgedNotification(f"wrong source address {source}")
        body = req.get_data()
        given = req.headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(given, sign(self.secret, body)):
            raise ForgedNotification("bad signature")
        try:
            data = json.loads(body)
            obj = data["object"]
            amount = obj.get("amount", {}).get("value")
            return Notification(event=data["event"], external_id=obj["id"],
                                status=obj.get("status"),
                                amount=Decimal(amount) if amount is not None else None)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ForgedNotification("malformed body") from exc

    def refund(self, external_id: str, amount: Decimal, idempotence_key: str,
               receipt: Receipt) -> GatewayRefund:
        with self.store.lock:
            record = self.store.get(external_id)
            if record is None or record["status"] != "succeeded":
                raise GatewayError("invalid_request: the payment is not succeeded")
            for known in record["refunds"]:
                if known["key"] == idempotence_key:
                    return GatewayRefund(known["id"], "succeeded", Decimal(known["amount"]))
            refunded = sum((Decimal(r["amount"]) for r in record["refunds"]), Decimal("0"))
            if refunded + amount > Decimal(record["amount"]):
                raise GatewayError("invalid_request: refund exceeds the payment")
            refund = {"id": "sbr_" + secrets.token_urlsafe(12), "amount": str(amount),
                      "key": idempotence_key, "receipt": _receipt_json(receipt),
                      "created_at": _now().isoformat()}
            record["refunds"].append(refund)
            self.store.put(record)
        return GatewayRefund(refund["id"], "succeeded", amount)

    # The hosted pages' side

    def finish(self, record: dict, status: str, reason: str | None = None) -> None:
        """Make the payment final, then notify the portal (a failed delivery is logged: the
        portal also asks on the user's return). A succeeded card payment the payer agreed to
        save leaves its card saved (``card``: what the page read of it, never the number)."""
        with self.store.lock:
            record["status"] = status
            record["paid"] = status == "succeeded"
            card = record.pop("card", None)
            if status == "succeeded":
                record["captured_at"] = _now().isoformat()
                if card and record.get("save_payment_method"):
                    record["saved_method"] = self._save(card)
            if reason:
                record["cancellation_details"] = {"party": "payment_network", "reason": reason}
            self.store.put(record)
        body = json.dumps({"type": "notification", "event": f"payment.{status}",
                           "object": _object(record)}, ensure_ascii=False).encode()
        url = url_for("PayView.notify", gateway=self.name, _external=True)
        try:
            self.deliver(url, body, {SIGNATURE_HEADER: sign(self.secret, body)})
        except Exception as exc:  # the gateway would retry; the return page asks anyway
            log.warning("sandbox notification for %s not delivered: %s", record["id"], exc)

    def _save(self, card: dict) -> dict:
        """Keep the card for later payments, if the payer ticked the box; the answer's
        ``payment_method`` either way (``saved`` False without consent)."""
        consent = card.pop("consent", False)
        method = {"id": "sbm_" + secrets.token_urlsafe(18), **card}
        if consent:
            self.store.put_method(method)
        return {**method, "saved": bool(consent)}

    @staticmethod
    def _payment(record: dict) -> GatewayPayment:
        captured = record.get("captured_at")
        saved = record.get("saved_method")
        return GatewayPayment(
            external_id=record["id"], status=record["status"],
            amount=Decimal(record["amount"]), currency=record.get("currency", CURRENCY),
            confirmation_url=(None if record.get("payment_method_id")
                              else _confirmation_url(record["id"])),
            paid_at=dt.datetime.fromisoformat(captured) if captured else None,
            cancellation_reason=(record.get("cancellation_details") or {}).get("reason"),
            saved_method=SavedMethod(
                id=saved["id"], saved=saved["saved"], card_last4=saved["last4"],
                expiry_month=saved["expiry_month"], expiry_year=saved["expiry_year"],
                card_type=saved["card_type"]) if saved else None)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _expiry(expiry: str) -> tuple[int, int]:
    """'12/28' (already checked) -> (12, 2028)."""
    month, year = re.fullmatch(r"\s*(\d{2})\s*/\s*(\d{2})\s*", expiry).groups()
    return int(month), 2000 + int(year)


def _confirmation_url(payment_id: str) -> str:
    return url_for("SandboxPayView.page", payment_id=payment_id, _external=True)


def _object(record: dict) -> dict:
    """The payment object as a YooKassa-style notification carries it."""
    return {"id": record["id"], "status": record["status"], "paid": record["paid"],
            "amount": {"value": record["amount"], "currency": record["currency"]},
            "description": record["description"], "metadata": record["metadata"],
            "created_at": record["created_at"], "test": True,
            **({"cancellation_details": record["cancellation_details"]}
               if record.get("cancellation_details") else {})}


def _receipt_json(receipt: Receipt) -> dict:
    customer = {k: v for k, v in (("email", receipt.email), ("phone", receipt.phone)) if v}
    return {"customer": customer, "items": [
        {"description": i.description, "quantity": str(i.quantity),
         "amount": {"value": str(i.amount), "currency": CURRENCY}, "vat_code": i.vat_code,
         "payment_mode": i.payment_mode, "payment_subject": i.payment_subject}
        for i in receipt.items]}


def sbp_qr_svg(record: dict) -> str:
    """The QR code a bank app would scan: a link in the shape of the СБП's (qr.nspk.ru)."""
    link = f"https://qr.nspk.ru/SANDBOX{record['id'][3:19].upper()}?type=02&sum=" \
           f"{int(Decimal(record['amount']) * 100)}&cur=RUB"
    return segno.make(link, error="m").svg_inline(scale=4, dark="#1b2430")


def gateway() -> SandboxGateway:
    found = current_app.extensions.get("payment_gateways", {}).get(NAME)
    if found is None:
        abort(404)
    return found


class SandboxPayView(BaseView):
    """The hosted payment page of the sandbox: public, each payment behind its random id."""

    route_base = "/sandbox-pay"
    default_view = "page"

    def _record(self, payment_id: str) -> dict:
        record = gateway().store.get(payment_id)
        if record is None:
            abort(404)
        return record

    def _page(self, template: str, record: dict, **context):
        return self.render_template(template, record=record, supplier=current_app.config.get(
            "SUPPLIER_NAME", ""), cards=TEST_CARDS, **context)

    @expose("/<payment_id>", methods=["GET", "POST"])
    def page(self, payment_id: str):
        record = self._record(payment_id)
        posted = record["status"] == "pending" and request.method == "POST"
        if posted and request.form.get("cancel"):
            gateway().finish(record, "canceled", "canceled_by_merchant")
            return redirect(record["return_url"])
        if record.get("payment_method") == "sbp" or record.get("payment_method_id"):
            return self._sbp_page(record, posted)
        return self._card_page(record, posted)

    def _sbp_page(self, record: dict, posted: bool):
        if posted and request.form.get("paid_in_bank_app"):
            gateway().finish(record, "succeeded")
            return redirect(record["return_url"])
        return self._page("payments/sandbox_sbp.html", record, qr=sbp_qr_svg(record),
                          title="Оплата через СБП")

    def _card_page(self, record: dict, posted: bool):
        errors: dict[str, str] = {}
        values = {"number": "", "expiry": "", "holder": "", "save_card": ""}
        if posted:
            values = {k: request.form.get(k, "") for k in values}
            digits, errors = check_card(values["number"], values["expiry"],
                                        request.form.get("cvc", ""), dt.date.today())
            if not errors:
                record["card_last4"] = digits[-4:]
                month, year = _expiry(values["expiry"])
                record["card"] = {  # what a saved card keeps: never the number
                    "last4": digits[-4:], "expiry_month": month, "expiry_year": year,
                    "card_type": card_type(digits),
                    "behaviour": "no_funds" if digits == CARD_NO_FUNDS_LATER else "ok",
                    "consent": bool(record.get("save_payment_method") and values["save_card"])}
                if digits in (CARD_SUCCEEDS, CARD_NO_FUNDS_LATER):
                    gateway().finish(record, "succeeded")
                    return redirect(record["return_url"])
                if digits == CARD_DECLINED:
                    gateway().finish(record, "canceled", "card_declined")
                    return redirect(record["return_url"])
                if digits == CARD_3DS:
                    record["three_ds"] = True
                    gateway().store.put(record)  # the card waits there for the code
                    return redirect(url_for(".three_ds", payment_id=record["id"]))
                errors["number"] = ("В тестовом режиме принимаются только тестовые карты "
                                    "(список ниже).")
        return self._page("payments/sandbox_page.html", record, errors=errors, values=values,
                          title="Оплата картой")

    @expose("/<payment_id>/3ds", methods=["GET", "POST"])
    def three_ds(self, payment_id: str):
        record = self._record(payment_id)
        if record["status"] != "pending" or not record.get("three_ds"):
            return redirect(url_for(".page", payment_id=payment_id))
        error = None
        if request.method == "POST":
            if request.form.get("cancel"):
                gateway().finish(record, "canceled", "3d_secure_failed")
                return redirect(record["return_url"])
            if request.form.get("code", "").strip() == THREE_DS_CODE:
                gateway().finish(record, "succeeded")
                return redirect(record["return_url"])
            record["three_ds_attempts"] += 1
            if record["three_ds_attempts"] >= THREE_DS_ATTEMPTS:
                gateway().finish(record, "canceled", "3d_secure_failed")
                return redirect(record["return_url"])
            gateway().store.put(record)
            error = "Неверный код. Осталось попыток: " \
                    f"{THREE_DS_ATTEMPTS - record['three_ds_attempts']}."
        return self._page("payments/sandbox_3ds.html", record, error=error,
                          title="Подтверждение платежа")


@hookimpl
def configure(app):
    if sandbox_enabled(app.config) and app.config.get("PRODUCTION"):
        raise RuntimeError("PRODUCTION is on but SANDBOX_PAY_ENABLED turns the sandbox "
                           "payment gateway on: switch it off")


@hookimpl
def register_payment_gateways():
    """Offered to the app being built (its context is current) when the sandbox is on."""
    config = current_app.config
    if not sandbox_enabled(config):
        return []
    folder = config.get("SANDBOX_PAY_DIR") or os.path.join(current_app.instance_path,
                                                           "sandbox_pay")
    return [SandboxGateway(folder, config.get("SANDBOX_PAY_SECRET") or config["SECRET_KEY"])]


@hookimpl
def register_views(appbuilder):
    if sandbox_enabled(current_app.config):
        appbuilder.add_view_no_menu(SandboxPayView)
