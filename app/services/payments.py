"""The card payment gateway a plugin offers (hook ``register_payment_gateways``): the requests
and answers it speaks, shaped after YooKassa's API v3, and the choice of one at start-up.

Gateway plugins import these names; the payment's state machine that drives a gateway is
``app.services.payment_states``. A gateway that can keep a card for later payments (autopay,
``app.services.autopay``) says so with ``saves_methods``: the first payment then asks to save
it (``save_payment_method``), the answer carries the saved method (``SavedMethod``: the
gateway's token, never the card), and a later payment names that token
(``payment_method_id``), needs no confirmation and is final in the answer.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from app.services import offers as offers_by_name

if TYPE_CHECKING:
    from app.plugins.interfaces import PaymentGateway

CURRENCY = "RUB"
SANDBOX = "sandbox"


# The gateway interface --------------------------------------------------------------------


class GatewayError(Exception):
    """The gateway refused a request or did not answer; the outcome may be unknown."""


class ForgedNotification(Exception):
    """A notification that did not come from the gateway (signature, source address, body)."""


#: Why a payment by a saved method was refused (YooKassa's ``cancellation_details.reason``):
#: the card's term is over, the bank said no money, or the payer (or the bank) withdrew the
#: permission to charge it. The first and the last mean the saved card is of no further use.
CARD_EXPIRED = "card_expired"
INSUFFICIENT_FUNDS = "insufficient_funds"
PERMISSION_REVOKED = "permission_revoked"
METHOD_UNUSABLE = frozenset({CARD_EXPIRED, PERMISSION_REVOKED})


@dataclass(frozen=True)
class ReceiptItem:
    """One line of the 54-FZ receipt (YooKassa's ``receipt.items[]``)."""

    description: str
    amount: Decimal
    vat_code: int
    quantity: Decimal = Decimal("1")
    payment_mode: str = "full_payment"
    payment_subject: str = "commodity"


@dataclass(frozen=True)
class Receipt:
    """54-FZ receipt data: the customer's e-mail or phone, and the items."""

    items: tuple[ReceiptItem, ...]
    email: str | None = None
    phone: str | None = None
    #: The supplier's tax system (1 = общая, ОСН), for a shop registered with several.
    tax_system_code: int | None = None


@dataclass(frozen=True)
class PaymentRequest:
    """What the portal asks a gateway to create (YooKassa: ``POST /payments``)."""

    amount: Decimal
    currency: str
    description: str
    account: str  # the personal account number(s), for the gateway's records
    return_url: str
    idempotence_key: str
    receipt: Receipt
    metadata: dict[str, str] = field(default_factory=dict)
    #: How the payer chose to pay: "card" or "sbp" (one of the gateway's ``methods``).
    payment_method: str = "card"
    #: The payer consents to keep the card for later payments (YooKassa's
    #: ``save_payment_method: true``); only to a gateway with ``saves_methods``.
    save_payment_method: bool = False
    #: Pay by a saved method (its ``SavedMethod.id``): no confirmation, no payer present; the
    #: answer is final (succeeded, or canceled with the reason).
    payment_method_id: str | None = None


@dataclass(frozen=True)
class SavedMethod:
    """A card the gateway keeps for later payments (YooKassa's ``payment_method``): its token
    ``id`` and what may be shown of the card. ``saved`` False: the payer did not consent (or
    the card cannot be saved), the token is of no use later."""

    id: str
    saved: bool
    card_last4: str | None = None
    expiry_month: int | None = None
    expiry_year: int | None = None
    card_type: str | None = None  # Visa, MasterCard, Mir, ...


@dataclass(frozen=True)
class GatewayPayment:
    """A payment as the gateway reports it."""

    external_id: str
    status: str  # pending | waiting_for_capture | succeeded | canceled
    amount: Decimal
    currency: str = CURRENCY
    confirmation_url: str | None = None
    paid_at: dt.datetime | None = None
    cancellation_reason: str | None = None
    #: The method the payment was made by, when the request asked to save it.
    saved_method: SavedMethod | None = None


@dataclass(frozen=True)
class Notification:
    """What a notification claims: the event and the payment's id (the rest is a hint)."""

    event: str  # payment.succeeded, payment.canceled, payment.waiting_for_capture, refund.*
    external_id: str
    status: str | None = None
    amount: Decimal | None = None


@dataclass(frozen=True)
class GatewayRefund:
    external_id: str
    status: str
    amount: Decimal


def saves_methods(gateway: PaymentGateway | None) -> bool:
    """Whether ``gateway`` keeps cards for autopay (a gateway without the attribute does not)."""
    return gateway is not None and bool(getattr(gateway, "saves_methods", False))


# Start-up: choosing the gateway ------------------------------------------------------------


class GatewayConfigError(RuntimeError):
    pass


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def sandbox_enabled(config) -> bool:
    """SANDBOX_PAY_ENABLED if given, else on outside production."""
    value = config.get("SANDBOX_PAY_ENABLED")
    if value is None or value == "":
        return not config.get("PRODUCTION")
    return value if isinstance(value, bool) else _flag(value)


def gateway_name(config) -> str | None:
    """PAYMENT_GATEWAY if given, else the sandbox when it is enabled, else none (no cards)."""
    return config.get("PAYMENT_GATEWAY") or (SANDBOX if sandbox_enabled(config) else None)


def init_app(app: Flask) -> None:
    """Collect the offered gateways and pick the configured one; a name offered twice, a
    configured name nobody offers, or a development gateway in production stop the start."""
    offered = offers_by_name.collect(app.extensions["plugins"].hook.register_payment_gateways(),
                                     "payment gateway", GatewayConfigError)
    name = gateway_name(app.config)
    chosen = (offers_by_name.pick(offered, name, "payment gateway", "PAYMENT_GATEWAY",
                                  GatewayConfigError) if name else None)
    if app.config.get("PRODUCTION") and chosen is not None and getattr(chosen, "development",
                                                                       False):
        raise GatewayConfigError(
            f"PRODUCTION is on but the payment gateway would be the development {name!r}: "
            "configure a real gateway plugin in PAYMENT_GATEWAY")
    app.extensions["payment_gateways"] = offered
    app.extensions["payment_gateway"] = chosen


def current_gateway() -> PaymentGateway | None:
    """The gateway new payments go to, or None when card payments are off."""
    return current_app.extensions.get("payment_gateway")


def gateway_of(name: str) -> PaymentGateway | None:
    """Any offered gateway by name: notifications and refunds of older payments use theirs."""
    return current_app.extensions.get("payment_gateways", {}).get(name)

