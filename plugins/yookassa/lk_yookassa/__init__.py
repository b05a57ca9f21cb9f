"""Card (and SBP) payments through YooKassa API v3: the ``yookassa`` payment gateway.

Speaks plain HTTPS with the standard library: ``POST /v3/payments`` (Basic auth shop id /
secret key, an ``Idempotence-Key`` on every POST, a 54-FZ receipt), ``GET /v3/payments/{id}``,
``POST /v3/refunds``. Notifications carry no signature: they are accepted only from
YooKassa's published address ranges, and the portal then believes only ``fetch_status``.

It does nothing unless ``YOOKASSA_SHOP_ID`` is set and ``PAYMENT_GATEWAY=yookassa``.

Autopay: the first payment asks ``save_payment_method: true`` (the shop needs YooKassa's
permission for recurring payments); its ``payment_method`` (``id``, ``saved``, the card's
last four digits, expiry and type) comes back as ``SavedMethod``; a later payment names the
``payment_method_id`` and carries no confirmation. YooKassa has no call to delete a saved
method: ``forget_method`` does nothing, the portal forgets the token.
"""
from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal, InvalidOperation

from flask import current_app

from app.plugins.hookspecs import hookimpl
from app.services.payments import (
    CURRENCY,
    ForgedNotification,
    GatewayError,
    GatewayPayment,
    GatewayRefund,
    Notification,
    PaymentRequest,
    Receipt,
    SavedMethod,
)

log = logging.getLogger("lk_portal.yookassa")

NAME = "yookassa"
DEFAULT_API_URL = "https://api.yookassa.ru"
#: YooKassa's published notification sources (domain.md section 3).
DEFAULT_NOTIFY_IPS = ("77.75.153.0/25", "77.75.156.11", "77.75.156.35", "77.75.154.128/25",
                      "185.71.76.0/27", "185.71.77.0/27", "2a02:5180::/32")
#: "YOOKASSA_TRUSTED_PROXY=1": the reverse proxy runs on this host.
LOCAL_PROXY = ("127.0.0.0/8", "::1/128")
#: Answers worth another try with the same Idempotence-Key (the outcome is unknown or the
#: shop is being throttled).
RETRYABLE = frozenset({429, 500, 502, 503, 504})
MAX_DESCRIPTION = 128
#: The portal's ways to pay (PaymentMethod) as YooKassa's payment_method_data types.
METHOD_TYPES = {"card": "bank_card", "sbp": "sbp"}
#: Longest pause between tries, whatever Retry-After says (the user is waiting).
MAX_PAUSE = 5.0

UNAVAILABLE = "Платёжная система ЮKassa временно недоступна. Деньги не списаны; попробуйте позже."
TIMED_OUT = "Платёжная система ЮKassa не ответила вовремя. Попробуйте позже."

#: Where configure() keeps an app's settings: the module is shared by every app of a process.
EXTENSION = "lk_yookassa"


class YooKassaConfigError(GatewayError):
    """The shop's credentials or rights are wrong (401/403): a configuration problem, not a
    passing failure. A GatewayError, so the portal shows its usual message to the user."""


class YooKassaUnavailable(GatewayError):
    """429, 5xx, a time-out or no connection, still so after the retries."""


def _networks(value) -> tuple:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    return tuple(ipaddress.ip_network(part, strict=False) for part in value if part)


def _money(value: Decimal) -> str:
    return f"{Decimal(value):.2f}"


def _when(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def receipt_json(receipt: Receipt) -> dict:
    """The 54-FZ receipt as YooKassa wants it: the customer, one item per account."""
    customer = {k: v for k, v in (("email", receipt.email), ("phone", receipt.phone)) if v}
    tax_system = {"tax_system_code": receipt.tax_system_code} if receipt.tax_system_code else {}
    return {"customer": customer, **tax_system, "items": [
        {"description": item.description[:MAX_DESCRIPTION],
         "quantity": f"{Decimal(item.quantity):.2f}",
         "amount": {"value": _money(item.amount), "currency": CURRENCY},
         "vat_code": int(item.vat_code),
         "payment_mode": item.payment_mode, "payment_subject": item.payment_subject}
        for item in receipt.items]}


class YooKassaGateway:
    """The gateway object the portal talks to (``app.plugins.interfaces.PaymentGateway``)."""

    name = NAME
    development = False
    saves_methods = True

    def __init__(self, shop_id: str, secret_key: str, api_url: str = DEFAULT_API_URL, *,
                 timeout: float = 10.0, retries: int = 3, backoff: float = 0.5,
                 notify_networks=DEFAULT_NOTIFY_IPS, trusted_proxies=(),
                 methods=("card",), sleep=time.sleep):
        self.shop_id = str(shop_id)
        self._auth = "Basic " + base64.b64encode(
            f"{shop_id}:{secret_key}".encode()).decode("ascii")
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.notify_networks = _networks(notify_networks)
        self.trusted_proxies = _networks(trusted_proxies)
        self.methods = _methods(methods)
        self.sleep = sleep

    def __repr__(self) -> str:  # never the key, even in a trace
        return f"<YooKassaGateway shop_id={self.shop_id} api_url={self.api_url}>"

    # The API the portal calls

    def create_payment(self, req: PaymentRequest) -> GatewayPayment:
        if req.payment_method not in self.methods:
            raise GatewayError(f"invalid_request: payment method {req.payment_method!r} is "
                               f"not enabled (YOOKASSA_METHODS)")
        metadata = {str(k): str(v) for k, v in (req.metadata or {}).items()}
        body = {
            "amount": {"value": _money(req.amount), "currency": req.currency or CURRENCY},
            "capture": True,
            "confirmation": {"type": "redirect", "return_url": req.return_url},
            "description": (req.description or "")[:MAX_DESCRIPTION],
            "metadata": metadata,
            "receipt": receipt_json(req.receipt),
        }
        if req.payment_method_id:  # autopay: the saved card, nobody to confirm
            del body["confirmation"]
            body["payment_method_id"] = req.payment_method_id
        elif len(self.methods) > 1 or req.save_payment_method:
            # the payer chose in the portal (or agreed to save a card): straight there
            body["payment_method_data"] = {"type": METHOD_TYPES[req.payment_method]}
        if req.save_payment_method and not req.payment_method_id:
            body["save_payment_method"] = True
        return self._payment(self._call("POST", "/v3/payments", body, req.idempotence_key))

    def forget_method(self, method_id: str) -> None:
        """YooKassa cannot delete a saved method: the portal's forgetting the token is all."""

    def fetch_status(self, external_id: str) -> GatewayPayment:
        path = "/v3/payments/" + urllib.parse.quote(str(external_id), safe="")
        return self._payment(self._call("GET", path))

    def refund(self, external_id: str, amount: Decimal, idempotence_key: str,
               receipt: Receipt) -> GatewayRefund:
        body = {"payment_id": external_id,
                "amount": {"value": _money(amount), "currency": CURRENCY},
                "receipt": receipt_json(receipt)}
        data = self._call("POST", "/v3/refunds", body, idempotence_key)
        try:
            status = data["status"]
            refund = GatewayRefund(str(data["id"]), status,
                                   Decimal(str(data["amount"]["value"])))
        except (KeyError, TypeError, InvalidOperation) as exc:
            raise GatewayError("ЮKassa вернула непонятный ответ на возврат.") from exc
        if status == "canceled":
            reason = (data.get("cancellation_details") or {}).get("reason", "")
            raise GatewayError(f"ЮKassa отклонила возврат: {reason}".rstrip(": "))
        return refund

    def parse_notification(self, req) -> Notification:
        source = self.source_address(req)
        if source is None or not any(source.version == net.version and source in net
                                     for net in self.notify_networks):
            raise ForgedNotification(f"wrong source address {source}")
        try:
            data = json.loads(req.get_data())
            if data.get("type") != "notification":
                raise ValueError("not a notification")
            event, obj = str(data["event"]), data["object"]
            if event.startswith("refund."):
                return Notification(event=event, external_id=str(obj.get("payment_id")
                                                                  or obj["id"]),
                                    status=obj.get("status"))
            amount = (obj.get("amount") or {}).get("value")
            return Notification(event=event, external_id=str(obj["id"]),
                                status=obj.get("status"),
                                amount=Decimal(str(amount)) if amount is not None else None)
        except (ValueError, KeyError, TypeError, AttributeError, InvalidOperation) as exc:
            raise ForgedNotification("malformed body") from exc

    def source_address(self, req):
        """The sender: the peer, or — only when the peer is a trusted proxy — the nearest
        X-Forwarded-For hop that is not a trusted proxy itself."""
        try:
            peer = ipaddress.ip_address(req.remote_addr or "")
        except ValueError:
            return None
        if not self.trusted_proxies or not self._trusted(peer):
            return peer
        hops = [h.strip() for h in req.headers.get("X-Forwarded-For", "").split(",")]
        for hop in reversed([h for h in hops if h]):
            try:
                address = ipaddress.ip_address(hop)
            except ValueError:
                return None
            if not self._trusted(address):
                return address
        return peer

    def _trusted(self, address) -> bool:
        return any(address.version == net.version and address in net
                   for net in self.trusted_proxies)

    # HTTP

    def _call(self, method: str, path: str, body: dict | None = None,
              idempotence_key: str | None = None) -> dict:
        """One API call, retried on 429, 5xx, time-outs and lost connections with the same
        Idempotence-Key (the gateway answers a repeated key with the original result)."""
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        headers = {"Authorization": self._auth, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if idempotence_key:
            headers["Idempotence-Key"] = idempotence_key
        url = self.api_url + path
        last: GatewayError | None = None
        pause = self.backoff
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(min(MAX_PAUSE, pause))
            pause = self.backoff * (2 ** attempt)
            request = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request,  # noqa: S310 - the configured API
                                            timeout=self.timeout) as response:
                    raw = response.read()
                try:
                    return json.loads(raw.decode("utf-8"))
                except ValueError:
                    log.error("YooKassa %s %s answered with something that is not JSON",
                              method, path)
                    raise GatewayError("ЮKassa вернула непонятный ответ.") from None
            except urllib.error.HTTPError as exc:
                status = exc.code
                error = self._error_body(exc)
                code, text = error.get("code", ""), error.get("description", "")
                if status in RETRYABLE:
                    log.warning("YooKassa %s %s: HTTP %s %s (try %s of %s)", method, path,
                                status, code, attempt + 1, self.retries + 1)
                    pause = max(pause, self._retry_after(exc, error))
                    last = YooKassaUnavailable(f"{UNAVAILABLE} (HTTP {status} {code})".strip())
                    continue
                if status in (401, 403):
                    log.error("YooKassa refused the shop's credentials: HTTP %s %s (shop id %s)",
                              status, code, self.shop_id)
                    raise YooKassaConfigError(
                        f"ЮKassa отклонила ключи магазина (HTTP {status} "
                        f"{code or 'invalid_credentials'}): "
                        "проверьте YOOKASSA_SHOP_ID и YOOKASSA_SECRET_KEY.") from None
                log.error("YooKassa %s %s: HTTP %s %s %s", method, path, status, code, text)
                raise GatewayError(f"{code or 'error'}: {text or f'HTTP {status}'}") from None
            except (socket.timeout, TimeoutError):
                log.warning("YooKassa %s %s timed out (try %s of %s)", method, path,
                            attempt + 1, self.retries + 1)
                last = YooKassaUnavailable(TIMED_OUT)
            except urllib.error.URLError as exc:
                if isinstance(getattr(exc, "reason", None), (socket.timeout, TimeoutError)):
                    last = YooKassaUnavailable(TIMED_OUT)
                else:
                    last = YooKassaUnavailable(UNAVAILABLE)
                log.warning("YooKassa %s %s unreachable: %s (try %s of %s)", method, path,
                            getattr(exc, "reason", exc), attempt + 1, self.retries + 1)
            except (ConnectionError, OSError) as exc:
                log.warning("YooKassa %s %s: %s (try %s of %s)", method, path,
                            type(exc).__name__, attempt + 1, self.retries + 1)
                last = YooKassaUnavailable(UNAVAILABLE)
        raise last or YooKassaUnavailable(UNAVAILABLE)

    @staticmethod
    def _error_body(exc: urllib.error.HTTPError) -> dict:
        try:
            found = json.loads(exc.read().decode("utf-8"))
            return found if isinstance(found, dict) else {}
        except (ValueError, OSError):
            return {}

    def _retry_after(self, exc: urllib.error.HTTPError, error: dict) -> float:
        value = exc.headers.get("Retry-After") if exc.headers else None
        try:
            return min(MAX_PAUSE, float(value)) if value else 0.0
        except ValueError:
            return 0.0

    @staticmethod
    def _payment(data: dict) -> GatewayPayment:
        try:
            amount = data["amount"]
            return GatewayPayment(
                external_id=str(data["id"]), status=str(data["status"]),
                amount=Decimal(str(amount["value"])),
                currency=amount.get("currency", CURRENCY),
                confirmation_url=(data.get("confirmation") or {}).get("confirmation_url"),
                paid_at=_when(data.get("captured_at")) if data.get("paid") or
                data.get("status") == "succeeded" else None,
                cancellation_reason=(data.get("cancellation_details") or {}).get("reason"),
                saved_method=_saved_method(data.get("payment_method")))
        except (KeyError, TypeError, AttributeError, InvalidOperation, ValueError) as exc:
            raise GatewayError("ЮKassa вернула непонятный ответ о платеже.") from exc


def _saved_method(method: dict | None) -> SavedMethod | None:
    """The answer's ``payment_method`` when it is a card that may be saved (``saved`` says
    whether it was); None for any other way to pay."""
    if not isinstance(method, dict) or "saved" not in method or \
            method.get("type") != "bank_card":
        return None
    card = method.get("card") or {}
    return SavedMethod(
        id=str(method["id"]), saved=bool(method["saved"]), card_last4=card.get("last4"),
        expiry_month=int(card["expiry_month"]) if card.get("expiry_month") else None,
        expiry_year=int(card["expiry_year"]) if card.get("expiry_year") else None,
        card_type=card.get("card_type"))


# Plugin hooks ------------------------------------------------------------------------------


def _setting(app, key: str, default=None):
    value = app.config.get(key)
    if value is None or value == "":
        value = os.environ.get(key)
    return default if value is None or value == "" else value


def _methods(value) -> tuple[str, ...]:
    """YOOKASSA_METHODS ("card,sbp"): the ways to pay the shop has enabled, in the order the
    pay form lists them."""
    names = value.split(",") if isinstance(value, str) else list(value)
    methods = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    unknown = [n for n in methods if n not in METHOD_TYPES]
    if unknown or not methods:
        raise ValueError(f"unknown payment methods {unknown or value!r}: use "
                         f"{', '.join(METHOD_TYPES)}")
    return methods


def _proxies(value) -> tuple:
    if value is None or value == "" or value is False:
        return ()
    if value is True or str(value).strip().lower() in {"1", "true", "yes", "on"}:
        return LOCAL_PROXY
    return tuple(p.strip() for p in str(value).split(",") if p.strip())


@hookimpl
def configure(app):
    app.extensions[EXTENSION] = {}
    shop_id = _setting(app, "YOOKASSA_SHOP_ID")
    if not shop_id or app.config.get("PAYMENT_GATEWAY") != NAME:
        return  # off: offer nothing (PAYMENT_GATEWAY=yookassa without a shop stops the start)
    secret = _setting(app, "YOOKASSA_SECRET_KEY")
    if not secret:
        raise RuntimeError("PAYMENT_GATEWAY=yookassa and YOOKASSA_SHOP_ID are set but "
                           "YOOKASSA_SECRET_KEY is not")
    api_url = str(_setting(app, "YOOKASSA_API_URL", DEFAULT_API_URL))
    if app.config.get("PRODUCTION") and not api_url.startswith("https://"):
        raise RuntimeError(f"YOOKASSA_API_URL must be https:// in production, not {api_url!r}")
    try:
        notify = _networks(_setting(app, "YOOKASSA_NOTIFY_IPS", ",".join(DEFAULT_NOTIFY_IPS)))
        proxies = _networks(_proxies(_setting(app, "YOOKASSA_TRUSTED_PROXY")))
        methods = _methods(_setting(app, "YOOKASSA_METHODS", "card"))
    except ValueError as exc:
        raise RuntimeError(f"YOOKASSA_NOTIFY_IPS / YOOKASSA_TRUSTED_PROXY / YOOKASSA_METHODS: "
                           f"{exc}") from None
    app.extensions[EXTENSION].update(
        shop_id=str(shop_id), secret_key=str(secret), api_url=api_url,
        timeout=float(_setting(app, "YOOKASSA_TIMEOUT", 10)),
        retries=int(_setting(app, "YOOKASSA_RETRIES", 3)),
        backoff=float(_setting(app, "YOOKASSA_BACKOFF", 0.5)),
        notify_networks=notify, trusted_proxies=proxies,
        methods=methods)


@hookimpl
def register_payment_gateways():
    settings = current_app.extensions[EXTENSION]
    if not settings.get("shop_id"):
        return []
    s = dict(settings)
    return [YooKassaGateway(s.pop("shop_id"), s.pop("secret_key"), s.pop("api_url"), **s)]


@hookimpl
def register_views(appbuilder):
    """The notification URL to give YooKassa: /payments/yookassa/notify (the portal's
    generic /cabinet/pay/notify/yookassa answers the same)."""
    if current_app.extensions[EXTENSION].get("shop_id"):
        from lk_yookassa.views import YooKassaNotifyView

        appbuilder.add_view_no_menu(YooKassaNotifyView)
