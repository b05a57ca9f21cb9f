"""Card payments through a gateway plugin: starting a payment for one or several accounts,
believing the gateway (never the browser), crediting exactly once and refunds.

One gateway payment is a ``PaymentOrder`` (its ``order_key`` is also the Idempotence-Key of
the creating request) split into one ``Payment`` row per account. The state machine lives in
the Payment rows: created -> pending -> succeeded | canceled; succeeded -> refunded. Every
move is a conditional UPDATE ... WHERE status IN (...): whatever arrives how many times and in
what order — duplicate or late notifications, the user's return before the notification,
two notifications at once — only one caller moves the rows, so the account is credited once.
A notification is only a hint: its sender is checked by the gateway (signature, source
address) and the payment's status and amount are then fetched from the gateway itself.

Autopay (app.services.autopay) takes the same path: its first payment asks the gateway to save
the card (``save_method``; its success records the card, app.services.saved_methods), and a
later one is ``charge_saved_method``, with an order key the caller derives, final in the
gateway's answer.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import Payment, PaymentOrder, PersonalAccount, PortalUser, Premises
from app.services import accounts, audit, dispatch, saved_methods
from app.services.payments import (
    CURRENCY,
    ForgedNotification,
    GatewayError,
    GatewayPayment,
    PaymentRequest,
    Receipt,
    ReceiptItem,
    current_gateway,
    gateway_of,
    saves_methods,
)

if TYPE_CHECKING:
    from app.plugins.interfaces import PaymentGateway

log = logging.getLogger(__name__)

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


class PaymentError(Exception):
    """A payment the portal refuses to start or change; the text is shown to the user."""


class NotFound(PaymentError):
    """No such account or payment among the user's own (the view answers 404)."""


class GatewayDown(PaymentError):
    """The gateway did not answer: the order is canceled, nothing was taken."""


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
                  customer: dict[str, str] | None = None, save_method: bool = False,
                  order_key: str | None = None) -> OrderState:
    """Create the payment at the gateway for ``parts`` ((account id, amount) pairs, every
    account bound to the user) and return it with its ``confirmation_url`` to send the user
    to. ``return_url(order_key)`` builds the page the gateway sends the user back to;
    ``method`` is one of ``offered_methods()``. Without a user (paying without signing in)
    ``customer`` ({"email": ...} or {"phone": ...}) is the receipt's contact, kept on the
    order for a refund's receipt. ``save_method``: the payer agreed to keep the card for
    autopay (a card payment, to a gateway that saves cards); ``order_key``: the key the
    caller recorded first (else a new one)."""
    if user is None and not customer:
        raise PaymentError("Для чека нужен адрес электронной почты или телефон.")
    gateway = current_gateway()
    if gateway is None:
        raise PaymentError("Оплата онлайн сейчас недоступна. Оплатить можно по квитанции в "
                           "банке или в кассе.")
    if method not in offered_methods():
        raise PaymentError("Этот способ оплаты сейчас недоступен: выберите другой.")
    if save_method and (method != "card" or not saves_methods(gateway)):
        raise PaymentError("Сохранить карту для автоплатежа сейчас нельзя.")
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

    key = order_key or str(uuid.uuid4())
    order, rows = _open_order(session, gateway, key, user_id, found, amounts, method)
    if user is None:
        order.receipt_email, order.receipt_phone = customer.get("email"), customer.get("phone")
    session.commit()

    numbers = [a.number for a in found]
    request = PaymentRequest(
        amount=total, currency=CURRENCY, description=describe(numbers),
        account=",".join(numbers), return_url=return_url(key), idempotence_key=key,
        receipt=receipt_for(current_app.config, customer, zip(numbers, amounts)),
        metadata={"order_key": key, "accounts": ",".join(numbers)}, payment_method=method,
        save_payment_method=save_method)
    _send(session, gateway, request, order, rows, user_id, ip, "create")
    return order_state(session, order)


def _open_order(session: Session, gateway: PaymentGateway, key: str, user_id: int | None,
                found: Sequence[PersonalAccount], amounts: Sequence[Decimal], method: str
                ) -> tuple[PaymentOrder, list[Payment]]:
    """The order and its rows, status created (not committed)."""
    order = PaymentOrder(order_key=key, gateway=gateway.name,
                         amount=sum(amounts, Decimal("0.00")), currency=CURRENCY,
                         user_id=user_id)
    session.add(order)
    rows = [Payment(account_id=a.id, amount=amount, method=method, gateway=gateway.name,
                    order_key=key, status="created", user_id=user_id)
            for a, amount in zip(found, amounts)]
    session.add_all(rows)
    return order, rows


def _send(session: Session, gateway: PaymentGateway, request: PaymentRequest,
          order: PaymentOrder, rows: Sequence[Payment], user_id: int | None, ip: str | None,
          source: str) -> GatewayPayment:
    """Create the payment at the gateway and bring the order to its answer; a gateway that
    does not answer cancels the order (nothing was taken) and raises GatewayDown."""
    key = order.order_key
    try:
        created = _create_with_retry(gateway, request)
    except GatewayError as exc:
        _move(session, key, "canceled")
        session.commit()
        audit.record(session, "payment.gateway_error", actor_id=user_id, object_type="payment",
                     object_id=key, ip=ip, details={"gateway": gateway.name, "error": str(exc)})
        raise GatewayDown("Платёжная система не ответила. Деньги не списаны; попробуйте "
                          "позже.") from exc
    order.external_id = created.external_id
    order.confirmation_url = created.confirmation_url
    order.gateway_status = created.status
    rows[0].external_id = created.external_id
    session.commit()
    audit.record(session, "payment.created", actor_id=user_id, object_type="payment",
                 object_id=key, ip=ip, details={"gateway": gateway.name,
                                                "amount": str(order.amount),
                                                "accounts": request.account.split(","),
                                                "external_id": created.external_id})
    apply_gateway_status(session, order, created, source=source, ip=ip)
    return created


@dataclass(frozen=True)
class SavedCharge:
    """A payment by a saved card: the order as it ended, and why the gateway refused it."""

    state: OrderState
    reason: str | None = None


def charge_saved_method(session: Session, user: PortalUser, account_id: int, amount: Decimal,
                        method_token: str, order_key: str) -> SavedCharge:
    """Pay ``amount`` to an account bound to ``user`` by the card the gateway saved for them
    (``method_token``): no payer present, the gateway's answer is final. ``order_key`` is the
    caller's, derived from what is paid, so a repeated call sends the same request under the
    same Idempotence-Key and the gateway answers with the same payment; an order already final
    is returned as it is. GatewayDown when the gateway does not answer."""
    gateway = current_gateway()
    if not saves_methods(gateway):
        raise PaymentError("Платёжная система не поддерживает автоплатёж.")
    account = accounts.bound_account(session, user.id, account_id)
    if account is None:
        raise NotFound("Лицевой счёт не найден.")
    amount = Decimal(amount).quantize(CENT)
    if not Decimal("0") < amount <= MAX_AMOUNT:
        raise PaymentError("Неверная сумма автоплатежа.")
    customer = _customer(user)
    order = session.execute(select(PaymentOrder).where(PaymentOrder.order_key == order_key)
                            ).scalar_one_or_none()
    if order is None:
        order, rows = _open_order(session, gateway, order_key, user.id, [account], [amount],
                                  "card")
        session.commit()
    else:
        state = order_state(session, order)
        if state.status in FINAL or order.gateway != gateway.name:
            return SavedCharge(state, None if state.status == "succeeded" else "canceled")
        order = state.order
        rows = [session.get(Payment, state.parts[0].payment_id)]
    request = PaymentRequest(
        amount=order.amount, currency=CURRENCY, description=describe([account.number]),
        account=account.number, return_url="", idempotence_key=order_key,
        receipt=receipt_for(current_app.config, customer, [(account.number, order.amount)]),
        metadata={"order_key": order_key, "accounts": account.number, "autopay": "1"},
        payment_method="card", payment_method_id=method_token)
    created = _send(session, gateway, request, order, rows, user.id, None, "autopay")
    return SavedCharge(order_state(session, order),
                       created.cancellation_reason if created.status == "canceled" else None)


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
    if moved and payment.status == "succeeded" and payment.saved_method is not None:
        saved_methods.remember(session, order, payment.saved_method)
    if moved:
        _announce(session, order)
    return bool(moved)


def _announce(session: Session, order: PaymentOrder) -> None:
    state = order_state(session, order)
    dispatch.fire("payment_status_changed", event={
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
