"""Card payments through a gateway plugin: starting a payment for one or several accounts,
believing the gateway (never the browser), crediting exactly once, refunds and the daily
reconciliation.

One gateway payment is a ``PaymentOrder`` (its ``order_key`` is also the Idempotence-Key of
the creating request) split into one ``Payment`` row per account. The state machine lives in
the Payment rows: created -> pending -> succeeded | canceled; succeeded -> refunded. Every
move is a conditional UPDATE ... WHERE status IN (...): whatever arrives how many times and in
what order — duplicate or late notifications, the user's return before the notification,
two notifications at once — only one caller moves the rows, so the account is credited once.
A notification is only a hint: its sender is checked by the gateway (signature, source
address) and the payment's status and amount are then fetched from the gateway itself.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import (
    Payment,
    PaymentMethod,
    PaymentOrder,
    PersonalAccount,
    PortalUser,
    Premises,
)
from app.services import accounts, audit, export
from app.services.russian import money

log = logging.getLogger(__name__)

CURRENCY = "RUB"
#: Largest single card payment the portal starts (rubles).
MAX_AMOUNT = Decimal("500000.00")
CENT = Decimal("0.01")
#: Statuses from which each status may be reached.
MOVES: dict[str, tuple[str, ...]] = {
    "pending": ("created",),
    "succeeded": ("created", "pending"),
    "canceled": ("created", "pending"),
    "refunded": ("succeeded",),
}
FINAL = frozenset({"succeeded", "canceled", "refunded"})
SANDBOX = "sandbox"


# The gateway interface --------------------------------------------------------------------


class GatewayError(Exception):
    """The gateway refused a request or did not answer; the outcome may be unknown."""


class ForgedNotification(Exception):
    """A notification that did not come from the gateway (signature, source address, body)."""


class PaymentError(Exception):
    """A payment the portal refuses to start or change; the text is shown to the user."""


class NotFound(PaymentError):
    """No such account or payment among the user's own (the view answers 404)."""


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


class PaymentGateway(Protocol):
    """What ``register_payment_gateways`` returns, one object per gateway."""

    name: str
    #: A development stand-in (the sandbox): refused when PRODUCTION is on.
    development: bool
    #: The ways to pay it offers (PaymentMethod values), the payer's choice on the pay form.
    methods: tuple[str, ...]

    def create_payment(self, request: PaymentRequest) -> GatewayPayment: ...

    def parse_notification(self, request) -> Notification:
        """Check the sender (signature, source address) and read the body of a Flask
        request; raise ForgedNotification when it is not the gateway's."""

    def fetch_status(self, external_id: str) -> GatewayPayment: ...

    def refund(self, external_id: str, amount: Decimal, idempotence_key: str,
               receipt: Receipt) -> GatewayRefund: ...


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
    offered: dict[str, PaymentGateway] = {}
    for gateways in app.extensions["plugins"].hook.register_payment_gateways():
        for gateway in gateways:
            if gateway.name in offered:
                raise GatewayConfigError(f"payment gateway {gateway.name!r} is registered twice")
            offered[gateway.name] = gateway
    name = gateway_name(app.config)
    if name and name not in offered:
        raise GatewayConfigError(
            f"payment gateway {name!r} is configured (PAYMENT_GATEWAY) but no plugin offers it "
            f"(offered: {', '.join(sorted(offered)) or 'none'})")
    chosen = offered.get(name) if name else None
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


# Amounts -------------------------------------------------------------------------------------

AMOUNT_SHAPE = re.compile(r"^\d+([.,]\d{1,2})?$")


def parse_amount(raw: str | None) -> Decimal:
    """A ruble amount typed by a person: '1 234,5' -> Decimal('1234.50')."""
    text = (raw or "").replace("\u00a0", "").replace(" ", "").strip()
    if not text:
        raise PaymentError("Укажите сумму.")
    if not AMOUNT_SHAPE.match(text):
        raise PaymentError("Сумма — число рублей, копейки через запятую: например, 1250,50.")
    try:
        value = Decimal(text.replace(",", ".")).quantize(CENT)
    except InvalidOperation as exc:  # pragma: no cover - the pattern already checked it
        raise PaymentError("Неверная сумма.") from exc
    if value <= 0:
        raise PaymentError("Сумма должна быть больше нуля.")
    if value > MAX_AMOUNT:
        raise PaymentError(f"Одним платежом можно оплатить не более {MAX_AMOUNT:,.0f} руб."
                           .replace(",", " "))
    return value


# Starting a payment --------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    payment_id: int
    account_id: int
    account_number: str
    address: str
    amount: Decimal
    status: str
    method: str = "card"


@dataclass(frozen=True)
class OrderState:
    """A payment as its payer sees it: the order and each account's part."""

    order: PaymentOrder
    parts: list[Part]

    @property
    def status(self) -> str:
        statuses = {p.status for p in self.parts}
        if statuses <= {"succeeded", "refunded"} and "succeeded" in statuses:
            return "succeeded"
        return statuses.pop() if len(statuses) == 1 else "pending"

    @property
    def amount(self) -> Decimal:
        return sum((p.amount for p in self.parts), Decimal("0.00"))

    @property
    def method(self) -> str:
        return self.parts[0].method if self.parts else "card"


def _customer(user: PortalUser) -> dict[str, str]:
    if user.email and not user.email_is_placeholder:
        return {"email": user.email}
    if user.phone:
        return {"phone": user.phone.lstrip("+")}
    raise PaymentError("Для чека нужен адрес электронной почты или телефон: укажите их в профиле.")


def receipt_for(config, customer: dict[str, str],
                parts: Iterable[tuple[str, Decimal]]) -> Receipt:
    """One receipt line per account: each account's part is visible on the 54-FZ receipt."""
    vat = int(config.get("PAYMENT_VAT_CODE", 11))
    tax_system = config.get("PAYMENT_TAX_SYSTEM_CODE")
    items = tuple(ReceiptItem(f"Электроэнергия, лицевой счёт {number}", amount, vat)
                  for number, amount in parts)
    return Receipt(items=items, tax_system_code=int(tax_system) if tax_system else None,
                   **customer)


def describe(numbers: Sequence[str]) -> str:
    """The payment's description at the gateway (at most 128 characters)."""
    text = "Оплата электроэнергии, л/с " + ", ".join(numbers)
    return text if len(text) <= 128 else text[:125] + "..."


def offered_methods() -> tuple[str, ...]:
    """The ways to pay online now: the current gateway's, card first; none without one."""
    gateway = current_gateway()
    return tuple(getattr(gateway, "methods", ("card",))) if gateway is not None else ()


def _payable(session: Session, user: PortalUser | None, account_id: int
             ) -> PersonalAccount | None:
    """A signed-in payer pays their bound accounts; a guest (no user) any open account, whose
    number they have typed on the throttled public page."""
    if user is not None:
        return accounts.bound_account(session, user.id, account_id)
    account = session.get(PersonalAccount, account_id)
    return account if account is not None and account.status == "active" else None


def start_payment(session: Session, user: PortalUser | None,
                  parts: Sequence[tuple[int, Decimal]], return_url: Callable[[str], str],
                  ip: str | None = None, method: str = "card",
                  customer: dict[str, str] | None = None) -> OrderState:
    """Create the payment at the gateway for ``parts`` ((account id, amount) pairs, every
    account bound to the user) and return it with its ``confirmation_url`` to send the user
    to. ``return_url(order_key)`` builds the page the gateway sends the user back to;
    ``method`` is one of ``offered_methods()``. Without a user (paying without signing in)
    ``customer`` ({"email": ...} or {"phone": ...}) is the receipt's contact, kept on the
    order for a refund's receipt."""
    if user is None and not customer:
        raise PaymentError("Для чека нужен адрес электронной почты или телефон.")
    gateway = current_gateway()
    if gateway is None:
        raise PaymentError("Оплата онлайн сейчас недоступна. Оплатить можно по квитанции в "
                           "банке или в кассе.")
    if method not in offered_methods():
        raise PaymentError("Этот способ оплаты сейчас недоступен: выберите другой.")
    if not parts:
        raise PaymentError("Выберите хотя бы один лицевой счёт.")
    ids = [account_id for account_id, _ in parts]
    if len(set(ids)) != len(ids):
        raise PaymentError("Каждый лицевой счёт указывается один раз.")
    found: list[PersonalAccount] = []
    for account_id in ids:
        account = _payable(session, user, account_id)
        if account is None:
            raise NotFound("Лицевой счёт не найден.")
        found.append(account)
    amounts = [Decimal(amount).quantize(CENT) for _, amount in parts]
    if any(a <= 0 for a in amounts):
        raise PaymentError("Сумма должна быть больше нуля.")
    total = sum(amounts, Decimal("0.00"))
    if total > MAX_AMOUNT:
        raise PaymentError(f"Одним платежом можно оплатить не более {MAX_AMOUNT:,.0f} руб."
                           .replace(",", " "))
    user_id = user.id if user is not None else None
    if user is not None:
        customer = _customer(user)

    key = str(uuid.uuid4())
    order = PaymentOrder(order_key=key, gateway=gateway.name, amount=total, currency=CURRENCY,
                         user_id=user_id)
    if user is None:
        order.receipt_email, order.receipt_phone = customer.get("email"), customer.get("phone")
    session.add(order)
    rows = [Payment(account_id=a.id, amount=amount, method=method, gateway=gateway.name,
                    order_key=key, status="created", user_id=user_id)
            for a, amount in zip(found, amounts)]
    session.add_all(rows)
    session.commit()

    numbers = [a.number for a in found]
    request = PaymentRequest(
        amount=total, currency=CURRENCY, description=describe(numbers),
        account=",".join(numbers), return_url=return_url(key), idempotence_key=key,
        receipt=receipt_for(current_app.config, customer, zip(numbers, amounts)),
        metadata={"order_key": key, "accounts": ",".join(numbers)}, payment_method=method)
    try:
        created = _create_with_retry(gateway, request)
    except GatewayError as exc:
        _move(session, key, "canceled")
        session.commit()
        audit.record(session, "payment.gateway_error", actor_id=user_id, object_type="payment",
                     object_id=key, ip=ip, details={"gateway": gateway.name, "error": str(exc)})
        raise PaymentError("Платёжная система не ответила. Деньги не списаны; попробуйте "
                           "позже.") from exc
    order.external_id = created.external_id
    order.confirmation_url = created.confirmation_url
    order.gateway_status = created.status
    rows[0].external_id = created.external_id
    session.commit()
    audit.record(session, "payment.created", actor_id=user_id, object_type="payment",
                 object_id=key, ip=ip, details={"gateway": gateway.name, "amount": str(total),
                                                "accounts": numbers,
                                                "external_id": created.external_id})
    apply_gateway_status(session, order, created, source="create", ip=ip)
    return order_state(session, order)


def _create_with_retry(gateway: PaymentGateway, request: PaymentRequest) -> GatewayPayment:
    """An unknown outcome is retried once with the same Idempotence-Key: the gateway answers
    with the payment it already made rather than a second one."""
    try:
        return gateway.create_payment(request)
    except GatewayError:
        log.warning("payment gateway %s failed, retrying %s once", gateway.name,
                    request.idempotence_key)
        return gateway.create_payment(request)


# Moving the state machine ------------------------------------------------------------------


def _move(session: Session, order_key: str, status: str, paid_at: dt.datetime | None = None,
          payment_id: int | None = None) -> int:
    """The conditional UPDATE every change goes through: the rows of the order (or one row)
    that may move to ``status`` do, the others stay; returns how many moved."""
    values: dict[str, Any] = {"status": status, "updated_at": dt.datetime.now(dt.timezone.utc)}
    if paid_at is not None:
        values["paid_at"] = paid_at
    statement = update(Payment).where(Payment.order_key == order_key,
                                      Payment.status.in_(MOVES[status]))
    if payment_id is not None:
        statement = statement.where(Payment.id == payment_id)
    result = session.execute(statement.values(**values)
                             .execution_options(synchronize_session=False))
    return result.rowcount or 0


class AmountMismatch(PaymentError):
    pass


def apply_gateway_status(session: Session, order: PaymentOrder, payment: GatewayPayment, *,
                         source: str, ip: str | None = None) -> bool:
    """Bring the order's rows to what the gateway reports (fetched from the gateway, never
    taken from a browser or a notification body); True when this call moved them."""
    if order.external_id and payment.external_id != order.external_id:
        raise PaymentError("Ответ платёжной системы относится к другому платежу.")
    now = dt.datetime.now(dt.timezone.utc)
    order.gateway_status = payment.status
    if payment.status == "succeeded":
        order.gateway_amount = payment.amount
        order.paid_at = order.paid_at or payment.paid_at or now
    session.flush()
    if payment.status == "succeeded":
        if payment.amount != order.amount or payment.currency != order.currency:
            session.commit()
            audit.record(session, "payment.amount_mismatch", object_type="payment",
                         object_id=order.order_key, ip=ip,
                         details={"gateway": order.gateway, "source": source,
                                  "expected": str(order.amount),
                                  "reported": f"{payment.amount} {payment.currency}"})
            raise AmountMismatch("Сумма платежа в платёжной системе не совпадает с заказом.")
        moved = _move(session, order.order_key, "succeeded", paid_at=order.paid_at)
    elif payment.status == "canceled":
        moved = _move(session, order.order_key, "canceled")
    else:  # pending, waiting_for_capture: the money is not ours yet
        moved = _move(session, order.order_key, "pending")
    session.commit()
    if moved and payment.status in ("succeeded", "canceled"):
        audit.record(session, f"payment.{payment.status}", actor_id=order.user_id,
                     object_type="payment", object_id=order.order_key, ip=ip,
                     details={"gateway": order.gateway, "source": source,
                              "amount": str(order.amount), "external_id": order.external_id,
                              **({"reason": payment.cancellation_reason}
                                 if payment.cancellation_reason else {})})
    if moved:
        _announce(session, order)
    return bool(moved)


def _announce(session: Session, order: PaymentOrder) -> None:
    from app.plugins import fire_event

    state = order_state(session, order)
    fire_event("payment_status_changed", event={
        "order_key": order.order_key, "gateway": order.gateway,
        "external_id": order.external_id, "status": state.status,
        "amount": str(order.amount), "user_id": order.user_id,
        "parts": [{"payment_id": p.payment_id, "account_id": p.account_id,
                   "amount": str(p.amount), "status": p.status} for p in state.parts]})


def order_state(session: Session, order: PaymentOrder) -> OrderState:
    session.expire_all()
    rows = session.execute(
        select(Payment, PersonalAccount, Premises)
        .join(PersonalAccount, Payment.account_id == PersonalAccount.id)
        .join(Premises, PersonalAccount.premises_id == Premises.id)
        .where(Payment.order_key == order.order_key).order_by(Payment.id)).all()
    return OrderState(session.get(PaymentOrder, order.id), [
        Part(p.id, a.id, a.number, premises.address, p.amount, p.status, p.method)
        for p, a, premises in rows])


# Notifications and the user's return ---------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What the notification endpoint says to the gateway."""

    status: int
    text: str


def handle_notification(session: Session, gateway_name: str, request) -> Answer:
    """A server-to-server notification: check the sender, then ask the gateway itself."""
    gateway = gateway_of(gateway_name)
    if gateway is None:
        return Answer(404, "unknown gateway")
    ip = request.remote_addr
    try:
        notice = gateway.parse_notification(request)
    except ForgedNotification as exc:
        return _rejected(session, gateway_name, ip, str(exc))
    if not notice.event.startswith("payment."):
        return Answer(200, "ok")  # refunds are started by the portal and recorded then
    order = session.execute(select(PaymentOrder).where(
        PaymentOrder.gateway == gateway_name,
        PaymentOrder.external_id == notice.external_id)).scalar_one_or_none()
    if order is None:
        return _rejected(session, gateway_name, ip, "unknown payment",
                         external_id=notice.external_id)
    if notice.amount is not None and notice.amount != order.amount:
        return _rejected(session, gateway_name, ip, "amount mismatch",
                         external_id=notice.external_id, claimed=str(notice.amount),
                         expected=str(order.amount))
    try:
        fetched = gateway.fetch_status(notice.external_id)
    except GatewayError as exc:
        log.warning("could not re-check payment %s with %s: %s", notice.external_id,
                    gateway_name, exc)
        return Answer(503, "retry later")  # the gateway sends the notification again
    try:
        apply_gateway_status(session, order, fetched, source="notification", ip=ip)
    except AmountMismatch:
        return Answer(200, "amount mismatch recorded")
    return Answer(200, "ok")


def _rejected(session: Session, gateway_name: str, ip: str | None, reason: str,
              **details: str) -> Answer:
    audit.record(session, "payment.notification_rejected", object_type="payment",
                 object_id=details.get("external_id"), ip=ip,
                 details={"gateway": gateway_name, "reason": reason, **details})
    return Answer(403 if reason != "unknown payment" else 404, "rejected")


def user_order(session: Session, user_id: int | None, order_key: str) -> PaymentOrder:
    """The user's order; ``user_id`` None: an order paid without signing in."""
    owner = PaymentOrder.user_id.is_(None) if user_id is None else PaymentOrder.user_id == user_id
    order = session.execute(select(PaymentOrder).where(
        PaymentOrder.order_key == order_key, owner)).scalar_one_or_none()
    if order is None:
        raise NotFound("Платёж не найден.")
    return order


def confirm_return(session: Session, user_id: int | None, order_key: str,
                   ip: str | None = None) -> OrderState:
    """The user is back from the gateway: until the rows are final, ask the gateway (the
    notification may not have arrived yet). Nothing in the return URL is believed."""
    order = user_order(session, user_id, order_key)
    state = order_state(session, order)
    gateway = gateway_of(order.gateway)
    if state.status not in FINAL and order.external_id and gateway is not None:
        try:
            apply_gateway_status(session, order, gateway.fetch_status(order.external_id),
                                 source="return", ip=ip)
        except (GatewayError, AmountMismatch) as exc:
            log.warning("payment %s not confirmed on return: %s", order_key, exc)
        state = order_state(session, order)
    return state


# Refunds -------------------------------------------------------------------------------------


@dataclass
class RefundResult:
    done: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)


def refund(session: Session, payment_ids: Iterable[int], actor_id: int | None,
           ip: str | None = None) -> RefundResult:
    """Return card payments (each account's part on its own): the row is claimed by the
    conditional UPDATE first, so two clicks refund once; a refusal of the gateway puts it
    back. The Idempotence-Key is derived from the row, so a retry never refunds twice."""
    result = RefundResult()
    for payment_id in payment_ids:
        payment = session.get(Payment, payment_id)
        order = session.execute(select(PaymentOrder).where(
            PaymentOrder.order_key == payment.order_key)).scalar_one_or_none() \
            if payment is not None and payment.order_key else None
        gateway = gateway_of(order.gateway) if order is not None else None
        if payment is None or order is None or gateway is None or not order.external_id \
                or _move(session, order.order_key, "refunded", payment_id=payment.id) != 1:
            session.rollback()
            result.refused.append(payment_id)
            continue
        session.commit()
        user = session.get(PortalUser, order.user_id) if order.user_id else None
        key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"refund:{order.order_key}:{payment.id}"))
        try:
            customer = _customer(user) if user else _order_customer(order)
            refunded = gateway.refund(
                order.external_id, payment.amount, key,
                receipt_for(current_app.config, customer,
                            [(payment.account.number, payment.amount)]))
        except (GatewayError, PaymentError) as exc:
            session.execute(update(Payment).where(Payment.id == payment.id,
                                                  Payment.status == "refunded")
                            .values(status="succeeded")
                            .execution_options(synchronize_session=False))
            session.commit()
            audit.record(session, "payment.refund_failed", actor_id=actor_id,
                         object_type="payment", object_id=order.order_key, ip=ip,
                         details={"payment_id": payment.id, "error": str(exc)})
            result.refused.append(payment_id)
            continue
        audit.record(session, "payment.refunded", actor_id=actor_id, object_type="payment",
                     object_id=order.order_key, ip=ip,
                     details={"payment_id": payment.id, "account": payment.account.number,
                              "amount": str(payment.amount), "refund_id": refunded.external_id,
                              "gateway": order.gateway})
        _announce(session, order)
        result.done.append(payment_id)
    return result


def _order_customer(order: PaymentOrder) -> dict[str, str]:
    """The receipt's contact a guest gave (an order without a user)."""
    return {k: v for k, v in (("email", order.receipt_email), ("phone", order.receipt_phone))
            if v}


# Daily reconciliation ----------------------------------------------------------------------


@dataclass
class ReconciliationDay:
    """One day of the reconciliation, or (``day`` None) the period's total."""

    day: dt.date | None
    gateway_count: int = 0
    gateway_total: Decimal = Decimal("0.00")
    credited_count: int = 0
    credited_total: Decimal = Decimal("0.00")
    refunded_total: Decimal = Decimal("0.00")

    @property
    def difference(self) -> Decimal:
        """What the gateway collected but the ledger did not credit (or the reverse)."""
        return self.gateway_total - self.credited_total


def reconciliation(session: Session, date_from: dt.date, date_to: dt.date,
                   zone: str = "Europe/Moscow") -> list[ReconciliationDay]:
    """Per local day, newest first: what gateways confirmed as paid against what was credited
    to accounts (refunded parts count as credited, and are shown apart)."""
    tz = ZoneInfo(zone)
    start = dt.datetime.combine(date_from, dt.time(), tz)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), tz)
    days = {date_from + dt.timedelta(days=i): ReconciliationDay(date_from + dt.timedelta(days=i))
            for i in range((date_to - date_from).days + 1)}

    def local_day(value: dt.datetime) -> dt.date:
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(tz).date()

    for paid_at, amount in session.execute(
            select(PaymentOrder.paid_at, PaymentOrder.gateway_amount)
            .where(PaymentOrder.gateway_status == "succeeded", PaymentOrder.paid_at >= start,
                   PaymentOrder.paid_at < end)):
        row = days.get(local_day(paid_at))
        if row is not None:
            row.gateway_count += 1
            row.gateway_total += amount or 0
    for paid_at, amount, status in session.execute(
            select(Payment.paid_at, Payment.amount, Payment.status)
            .where(Payment.gateway.is_not(None), Payment.status.in_(("succeeded", "refunded")),
                   Payment.paid_at >= start, Payment.paid_at < end)):
        row = days.get(local_day(paid_at))
        if row is not None:
            row.credited_count += 1
            row.credited_total += amount
            if status == "refunded":
                row.refunded_total += amount
    return sorted(days.values(), key=lambda r: r.day, reverse=True)


def reconciliation_total(days: Iterable[ReconciliationDay]) -> ReconciliationDay:
    """The period's line «Итого»: the days' sums, so the totals shown add up."""
    total = ReconciliationDay(None)
    for d in days:
        total.gateway_count += d.gateway_count
        total.gateway_total += d.gateway_total
        total.credited_count += d.credited_count
        total.credited_total += d.credited_total
        total.refunded_total += d.refunded_total
    return total


RECONCILIATION_COLUMNS = (
    export.Column("День", export.DATE_FORMAT, 12),
    export.Column("Подтверждено шлюзом, шт.", "0", 14),
    export.Column("Подтверждено шлюзом, руб.", export.MONEY_FORMAT, 18),
    export.Column("Зачислено, шт.", "0", 12),
    export.Column("Зачислено, руб.", export.MONEY_FORMAT, 18),
    export.Column("Возвращено, руб.", export.MONEY_FORMAT, 16),
    export.Column("Расхождение, руб.", export.MONEY_FORMAT, 16),
)


def reconciliation_xlsx(days: Sequence[ReconciliationDay], stream) -> int:
    """The reconciliation as a sheet for finance: one row a day, then «Итого»."""
    def row(d: ReconciliationDay) -> list:
        return [d.day if d.day is not None else "Итого", d.gateway_count, d.gateway_total,
                d.credited_count, d.credited_total, d.refunded_total, d.difference]

    return export.write_xlsx(stream, "Сверка платежей", RECONCILIATION_COLUMNS,
                             [*map(row, days), row(reconciliation_total(days))])


# The PDF confirmation ------------------------------------------------------------------------


def confirmation_pdf(state: OrderState, supplier: dict, paid_at_text: str) -> bytes:
    """A printable confirmation of a succeeded payment, each account's part on its own line."""
    from fpdf import FPDF

    from app.services.letters import FONTS

    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    pdf.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_title("Подтверждение оплаты")
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 12)
    pdf.cell(0, 7, supplier["name"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    pdf.cell(0, 5, f"ИНН {supplier['inn']}, КПП {supplier['kpp']} · контактный центр "
             f"{supplier['phone']}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font("DejaVu", "B", 14)
    pdf.cell(0, 8, "Подтверждение онлайн-оплаты", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("DejaVu", "", 10)
    order = state.order
    for caption, value in (("Дата и время оплаты", paid_at_text),
                           ("Способ оплаты", PaymentMethod.label(state.method)),
                           ("Номер операции", order.external_id or ""),
                           ("Номер заказа", order.order_key)):
        pdf.cell(55, 7, caption, border=1)
        pdf.cell(0, 7, value, border=1, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(45, 8, "Лицевой счёт", border=1)
    pdf.cell(95, 8, "Адрес", border=1)
    pdf.cell(0, 8, "Сумма, руб.", border=1, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    for part in state.parts:
        note = " (возвращено)" if part.status == "refunded" else ""
        pdf.cell(45, 8, part.account_number, border=1)
        pdf.cell(95, 8, (part.address[:58] + note), border=1)
        pdf.cell(0, 8, money(part.amount), border=1, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(140, 8, "Итого", border=1)
    pdf.cell(0, 8, money(state.amount), border=1, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("DejaVu", "", 9)
    pdf.multi_cell(0, 5, "Оплата электроэнергии. Кассовый чек по 54-ФЗ с разбивкой по лицевым "
                   "счетам направлен платёжной системой на указанные в личном кабинете "
                   "электронную почту или телефон. Платёж зачислен на лицевые счета в момент "
                   "оплаты.", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
