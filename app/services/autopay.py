"""Autopay (автоплатёж) from a saved card, per account and user.

- Turning it on starts the first payment of the amount due as usual, with the payer's consent
  to save the card; when the gateway reports it paid with the card saved, the setting becomes
  active (app.services.saved_methods). A card saved earlier switches it back on at once.
- The daily run (Celery beat, `flask autopay run`) charges each bill once, the amount due or
  the resident's cap, AUTOPAY_DAYS_BEFORE_DUE days before its due date, through the same
  payment state machine as every card payment (credited once, announced, in «Платежи»).
  Each attempt is an ``AutopayCharge`` row, unique per (invoice, attempt), its order key
  derived from (setting, invoice, attempt): a run repeated, or two runs at once, never charge
  a bill twice, and an attempt whose outcome was lost is sent again under the same key.
- A refusal (declined, expired card, gateway down) tells the resident and is tried again on
  later days, AUTOPAY_MAX_ATTEMPTS attempts a bill in all; a card that can no longer be
  charged (expired, permission withdrawn) switches the autopay off.
- The resident may set or clear the cap, switch it off, or remove the card, at any time.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import case, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from app.models import (
    ZERO,
    AccountBinding,
    AutopayCharge,
    AutopaySetting,
    Invoice,
    Payment,
    PersonalAccount,
    PortalUser,
    Premises,
    SavedPaymentMethod,
)
from app.services import accounts, audit, histories, ledger, payment_states, saved_methods
from app.services.notices import Outgoing, app_config, deliver, portal_url, topic_recipient
from app.services.payments import (
    CARD_EXPIRED,
    INSUFFICIENT_FUNDS,
    METHOD_UNUSABLE,
    PERMISSION_REVOKED,
    GatewayError,
    current_gateway,
    gateway_of,
    saves_methods,
)
from app.services.russian import money, month_name

log = logging.getLogger(__name__)

NOTICE = "autopay_failed"
GATEWAY_DOWN = "gateway_down"
#: Why a charge failed, as the resident reads it.
REASONS = {
    CARD_EXPIRED: "истёк срок действия карты",
    INSUFFICIENT_FUNDS: "на карте недостаточно средств",
    PERMISSION_REVOKED: "банк или владелец карты отозвал разрешение на списания",
    GATEWAY_DOWN: "платёжная система не ответила, деньги не списаны",
}
DEFAULT_REASON = "банк отклонил платёж"
KEY_NAMESPACE = uuid.UUID("6f0d7a52-2b1e-4a8e-9a51-0c3f1f6d2a47")


class AutopayError(Exception):
    """What the portal refuses to do; the text is shown to the resident."""


class NotFound(AutopayError):
    """No such account, setting or card among the user's own (the view answers 404)."""


@dataclass(frozen=True)
class Rules:
    days_before: int
    max_attempts: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Rules:
        return cls(max(0, int(config.get("AUTOPAY_DAYS_BEFORE_DUE", 1))),
                   max(1, int(config.get("AUTOPAY_MAX_ATTEMPTS", 3))))


def available() -> bool:
    """Whether the gateway of new payments saves cards: without it the cabinet hides autopay."""
    return saves_methods(current_gateway())


def parse_cap(raw: str | None) -> Decimal | None:
    """The cap as typed: empty means none."""
    if not (raw or "").strip():
        return None
    try:
        return payment_states.parse_amount(raw)
    except payment_states.PaymentError as exc:
        raise AutopayError(f"Предел суммы: {str(exc)[0].lower()}{str(exc)[1:]}") from None


# ---------------------------------------------------------------------------------------------
# What the cabinet shows


@dataclass(frozen=True)
class Card:
    id: int
    last4: str
    expiry_month: int | None
    expiry_year: int | None
    card_type: str | None

    @property
    def expiry(self) -> str:
        if not self.expiry_month or not self.expiry_year:
            return ""
        return f"{self.expiry_month:02d}/{self.expiry_year % 100:02d}"

    def expired(self, today: dt.date) -> bool:
        return bool(self.expiry_year and self.expiry_month) and \
            (self.expiry_year, self.expiry_month) < (today.year, today.month)

    @property
    def label(self) -> str:
        """«Visa •••• 4242»."""
        kind = self.card_type if self.card_type and self.card_type != "Unknown" else "Карта"
        return f"{kind} •••• {self.last4}"


@dataclass(frozen=True)
class NextCharge:
    on: dt.date
    amount: Decimal
    period: dt.date


@dataclass(frozen=True)
class AccountAutopay:
    """One account's autopay block: status none | pending | active | off."""

    account_id: int
    number: str
    address: str
    balance: Decimal
    status: str = "none"
    cap: Decimal | None = None
    card: Card | None = None
    next: NextCharge | None = None
    failures: int = 0
    #: The saved card can switch autopay back on without a payment (not expired).
    card_usable: bool = False

    @property
    def first_payment(self) -> Decimal | None:
        """What switching on pays first: the debt, unless the saved card does it alone."""
        return None if self.card_usable or self.balance <= 0 else self.balance


def _card(method: SavedPaymentMethod | None) -> Card | None:
    if method is None:
        return None
    return Card(method.id, method.card_last4 or "••••", method.expiry_month, method.expiry_year,
                method.card_type)


def overview(session: Session, user_id: int, today: dt.date,
             config: Mapping[str, Any] | None = None) -> list[AccountAutopay]:
    """Every account of the user with its autopay: three queries whatever the accounts."""
    rules = Rules.from_config(app_config(config))
    summaries = accounts.bound_account_summaries(session, user_id)
    ids = [s.id for s in summaries]
    if not ids:
        return []
    settings = {s.account_id: (s, m) for s, m in session.execute(
        select(AutopaySetting, SavedPaymentMethod)
        .outerjoin(SavedPaymentMethod, SavedPaymentMethod.id == AutopaySetting.method_id)
        .where(AutopaySetting.user_id == user_id, AutopaySetting.account_id.in_(ids)))}
    latest = aliased(Invoice)
    last_period = (select(func.max(latest.period)).where(latest.account_id == Invoice.account_id)
                   .correlate(Invoice).scalar_subquery())
    bills = {invoice.account_id: (invoice, ledger.money(paid_since)) for invoice, paid_since in
             session.execute(select(Invoice, histories.paid_since_issue())
                             .where(Invoice.account_id.in_(ids),
                                    Invoice.period == last_period))}
    found = []
    for s in summaries:
        setting, method = settings.get(s.id, (None, None))
        if setting is None:
            found.append(AccountAutopay(s.id, s.number, s.address, s.balance))
            continue
        upcoming = None
        if setting.status == "active" and s.id in bills:
            invoice, paid_since = bills[s.id]
            on = invoice.due_date - dt.timedelta(days=rules.days_before)
            amount = _amount(invoice.amount_due - paid_since, s.balance, setting.cap)
            if on >= today and amount > 0:
                upcoming = NextCharge(on, amount, invoice.period)
        card = _card(method)
        found.append(AccountAutopay(s.id, s.number, s.address, s.balance, setting.status,
                                    setting.cap, card, upcoming, setting.failures,
                                    card is not None and not card.expired(today)))
    return found


def account_autopay(session: Session, user_id: int, account_id: int, today: dt.date,
                    config: Mapping[str, Any] | None = None) -> AccountAutopay:
    for item in overview(session, user_id, today, config):
        if item.account_id == account_id:
            return item
    raise NotFound("Лицевой счёт не найден.")


def _amount(outstanding: Decimal, balance: Decimal, cap: Decimal | None) -> Decimal:
    """What one charge takes: what is left of the bill, no more than the debt now, nor the cap."""
    amount = min(outstanding, balance)
    if cap is not None:
        amount = min(amount, cap)
    return max(amount, ZERO).quantize(Decimal("0.01"))


# ---------------------------------------------------------------------------------------------
# The resident's choices


def _setting(session: Session, user_id: int, account_id: int) -> AutopaySetting:
    setting = session.execute(select(AutopaySetting).where(
        AutopaySetting.user_id == user_id, AutopaySetting.account_id == account_id,
        AutopaySetting.account_id.in_(accounts.resident_account_ids(user_id)))
    ).scalar_one_or_none()
    if setting is None:
        raise NotFound("Автоплатёж не найден.")
    return setting


def turn_on(session: Session, user: PortalUser, account_id: int, cap: Decimal | None,
            return_url: Callable[[str], str], today: dt.date, ip: str | None = None
            ) -> payment_states.OrderState | None:
    """Switch autopay on: at once with a card saved earlier (not expired), else by a first
    payment of the amount due with the consent to save the card; returns that payment, to
    send the payer to its confirmation page (None when autopay is already on)."""
    if not available():
        raise AutopayError("Автоплатёж сейчас недоступен: платёжная система не сохраняет карты.")
    account = accounts.bound_account(session, user.id, account_id)
    if account is None:
        raise NotFound("Лицевой счёт не найден.")
    taken = session.execute(select(AutopaySetting.id).where(
        AutopaySetting.account_id == account_id, AutopaySetting.user_id != user.id,
        AutopaySetting.status == "active")).first()
    if taken is not None:
        raise AutopayError("По этому лицевому счёту автоплатёж уже включил другой пользователь "
                           "кабинета: второй не нужен.")
    setting = session.execute(select(AutopaySetting).where(
        AutopaySetting.user_id == user.id, AutopaySetting.account_id == account_id)
    ).scalar_one_or_none()
    if setting is None:
        setting = AutopaySetting(user_id=user.id, account_id=account_id, status="off")
        session.add(setting)
    if setting.status == "active":
        raise AutopayError("Автоплатёж по этому счёту уже включён.")
    setting.cap = cap
    card = _card(setting.method)
    if card is not None and not card.expired(today) \
            and setting.method.gateway == current_gateway().name:
        setting.status, setting.failures = "active", 0
        session.commit()
        audit.record(session, "autopay.enabled", actor_id=user.id, object_type="autopay",
                     object_id=setting.id, ip=ip,
                     details={"account_id": account_id, "card": card.last4})
        return None
    (summary,) = accounts.summarize(session, [account_id])
    if summary.balance <= 0:
        session.rollback()
        raise AutopayError("Сейчас по счёту нет задолженности. Автоплатёж включается первым "
                           "платежом: включите его, когда придёт счёт.")
    key = str(uuid.uuid4())
    setting.status, setting.setup_order_key, setting.failures = "pending", key, 0
    session.commit()
    audit.record(session, "autopay.requested", actor_id=user.id, object_type="autopay",
                 object_id=setting.id, ip=ip,
                 details={"account_id": account_id, "cap": str(cap) if cap else None})
    return payment_states.start_payment(session, user, [(account_id, summary.balance)],
                                        return_url, ip=ip, method="card", save_method=True,
                                        order_key=key)


def setup_outcome(session: Session, user_id: int, order_key: str) -> str:
    """How the first payment ended for the autopay it set up: active | pending | no_card |
    failed | none (not an autopay's first payment)."""
    setting = session.execute(select(AutopaySetting).where(
        AutopaySetting.user_id == user_id, AutopaySetting.setup_order_key == order_key)
    ).scalar_one_or_none()
    if setting is None:
        return "none"
    if setting.status == "active":
        return "active"
    state = payment_states.order_state(
        session, payment_states.user_order(session, user_id, order_key))
    if state.status == "succeeded":
        return "no_card"
    return "failed" if state.status == "canceled" else "pending"


def set_cap(session: Session, user_id: int, account_id: int, cap: Decimal | None,
            ip: str | None = None) -> None:
    setting = _setting(session, user_id, account_id)
    setting.cap = cap
    session.commit()
    audit.record(session, "autopay.cap", actor_id=user_id, object_type="autopay",
                 object_id=setting.id, ip=ip, details={"cap": str(cap) if cap else None})


def switch_off(session: Session, user_id: int, account_id: int, ip: str | None = None) -> None:
    """Off at once: the next run charges nothing (the card stays saved until removed)."""
    setting = _setting(session, user_id, account_id)
    setting.status = "off"
    session.commit()
    audit.record(session, "autopay.disabled", actor_id=user_id, object_type="autopay",
                 object_id=setting.id, ip=ip, details={"account_id": account_id})


def remove_card(session: Session, user_id: int, method_id: int, ip: str | None = None) -> None:
    """Forget the saved card: the token is deleted (and dropped at the gateway where it can),
    every autopay it paid goes off."""
    method = session.execute(select(SavedPaymentMethod).where(
        SavedPaymentMethod.id == method_id, SavedPaymentMethod.user_id == user_id)
    ).scalar_one_or_none()
    if method is None:
        raise NotFound("Карта не найдена.")
    gateway = gateway_of(method.gateway)
    if gateway is not None and hasattr(gateway, "forget_method"):
        try:
            gateway.forget_method(method.token)
        except GatewayError as exc:  # the portal forgets it anyway: it can no longer charge
            log.warning("gateway %s did not forget a saved card: %s", method.gateway, exc)
    last4 = method.card_last4
    settings = saved_methods.forget(session, method)
    audit.record(session, "autopay.card_removed", actor_id=user_id, object_type="autopay",
                 object_id=method_id, ip=ip, details={"card": last4, "settings": settings})


def made_by_autopay():
    """A column over Payment: whether autopay made the payment (its order is an attempt's)."""
    return exists().where(AutopayCharge.order_key == Payment.order_key).label("autopay")


@dataclass(frozen=True)
class PaymentStatus(histories.Status):
    """A payment's status chip, and whether autopay made it («Автоплатёж» beside it)."""

    autopay: bool = False


def payment_status(status: str, autopay: bool = False) -> PaymentStatus:
    chip = histories.payment_status(status)
    return PaymentStatus(chip.label, chip.tone, bool(autopay))


# ---------------------------------------------------------------------------------------------
# The daily run


@dataclass(frozen=True)
class Due:
    """A bill autopay is to charge today: the next attempt, or one to resume (its key)."""

    setting_id: int
    user_id: int
    account_id: int
    number: str
    address: str
    invoice_id: int
    period: dt.date
    due_date: dt.date
    amount: Decimal
    token: str
    card: Card
    attempt: int
    resume_key: str | None = None


def _attempts():
    """Per invoice: attempts made, the day of the last, any succeeded, a charge in flight."""
    return (select(AutopayCharge.invoice_id,
                   func.count().label("made"),
                   func.max(AutopayCharge.run_on).label("last_run"),
                   func.sum(case((AutopayCharge.status == "succeeded", 1), else_=0))
                   .label("succeeded"),
                   func.max(case((AutopayCharge.status == "charging", AutopayCharge.order_key),
                                 else_=None)).label("in_flight"),
                   func.max(case((AutopayCharge.status == "charging", AutopayCharge.amount),
                                 else_=None)).label("in_flight_amount"))
            .group_by(AutopayCharge.invoice_id).subquery())


def due_autopays(session: Session, today: dt.date,
                 config: Mapping[str, Any] | None = None) -> list[Due]:
    """The bills to charge on ``today``, in one query: of accounts with an active autopay (one
    setting an account, the first), bound to its user and open to residents, the card saved at
    the current gateway; bills due ``days_before`` days from today, or, while attempts are
    left, due up to ``max_attempts - 1`` days earlier; not paid by autopay, not tried today,
    something left to pay."""
    rules = Rules.from_config(app_config(config))
    gateway = current_gateway()
    if not saves_methods(gateway):
        return []
    last_due = today + dt.timedelta(days=rules.days_before)
    first_due = last_due - dt.timedelta(days=rules.max_attempts - 1)
    attempts = _attempts()
    first_setting = (select(func.min(AutopaySetting.id)).where(AutopaySetting.status == "active")
                     .group_by(AutopaySetting.account_id))
    bound = exists().where(AccountBinding.user_id == AutopaySetting.user_id,
                           AccountBinding.account_id == AutopaySetting.account_id)
    charged, paid = ledger.account_totals()
    rows = session.execute(
        select(AutopaySetting, SavedPaymentMethod, Invoice, PersonalAccount.number,
               Premises.address, histories.paid_since_issue(), charged, paid,
               attempts.c.made, attempts.c.last_run, attempts.c.succeeded,
               attempts.c.in_flight, attempts.c.in_flight_amount)
        .join(SavedPaymentMethod, SavedPaymentMethod.id == AutopaySetting.method_id)
        .join(PersonalAccount, PersonalAccount.id == AutopaySetting.account_id)
        .join(Premises, Premises.id == PersonalAccount.premises_id)
        .join(Invoice, Invoice.account_id == AutopaySetting.account_id)
        .outerjoin(attempts, attempts.c.invoice_id == Invoice.id)
        .where(AutopaySetting.status == "active", AutopaySetting.id.in_(first_setting), bound,
               accounts.open_to_residents(), PersonalAccount.status == "active",
               SavedPaymentMethod.gateway == gateway.name,
               Invoice.due_date >= first_due, Invoice.due_date <= last_due)
        .order_by(Invoice.due_date, Invoice.id)).all()
    found = []
    for (setting, method, invoice, number, address, paid_since, charged_total, paid_total,
         made, last_run, succeeded, in_flight, in_flight_amount) in rows:
        made = made or 0
        if succeeded or last_run == today:
            continue
        if in_flight:  # an attempt of an earlier day whose outcome never came: ask again
            amount = ledger.money(in_flight_amount)
        else:
            if made >= rules.max_attempts:
                continue
            amount = _amount(invoice.amount_due - ledger.money(paid_since),
                             ledger.money(charged_total) - ledger.money(paid_total), setting.cap)
            if amount <= 0:
                continue
        found.append(Due(setting.id, setting.user_id, setting.account_id, number, address,
                         invoice.id, invoice.period, invoice.due_date, amount, method.token,
                         _card(method), made if in_flight else made + 1, in_flight))
    return found


def attempt_key(setting_id: int, invoice_id: int, attempt: int) -> str:
    """The order key (the Idempotence-Key) of an attempt: the same attempt, the same key."""
    return str(uuid.uuid5(KEY_NAMESPACE, f"autopay:{setting_id}:{invoice_id}:{attempt}"))


@dataclass
class RunResult:
    charged: int = 0
    declined: int = 0
    failed: int = 0
    skipped: int = 0
    turned_off: int = 0
    notices: int = 0
    amount: Decimal = ZERO
    outcomes: list[tuple[int, str]] = field(default_factory=list)  # (invoice id, status)


def run(session: Session, today: dt.date, config: Mapping[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Charge every bill due today (``due_autopays``), then tell the residents whose charge
    failed, in one batch."""
    config = app_config(config)
    rules = Rules.from_config(config)
    dues = due_autopays(session, today, config)
    users = {u.id: u for u in session.execute(select(PortalUser).where(
        PortalUser.id.in_({d.user_id for d in dues}))).scalars()} if dues else {}
    result, told = RunResult(), []
    for done, due in enumerate(dues, 1):
        status, reason, charge_id = _charge(session, due, users[due.user_id], today)
        result.outcomes.append((due.invoice_id, status))
        if status == "succeeded":
            result.charged += 1
            result.amount += due.amount
        elif status in ("declined", "failed"):
            setattr(result, status, getattr(result, status) + 1)
            off = reason in METHOD_UNUSABLE
            result.turned_off += off
            retry = not off and due.attempt < rules.max_attempts
            told.append(_notice(users[due.user_id], due, charge_id, reason, off, retry, today,
                                config))
        else:
            result.skipped += 1
        if progress is not None:
            progress(done, len(dues))
    result.notices = deliver(session, NOTICE, told, config)
    return result


def _charge(session: Session, due: Due, user: PortalUser, today: dt.date
            ) -> tuple[str, str | None, int | None]:
    """One attempt: claim it (the unique row), charge through the payment state machine, and
    record how it ended on the attempt and the setting. Returns (status, reason, attempt id);
    status "skipped" when another run claimed it first."""
    key = due.resume_key or attempt_key(due.setting_id, due.invoice_id, due.attempt)
    if due.resume_key is None:
        session.add(AutopayCharge(setting_id=due.setting_id, invoice_id=due.invoice_id,
                                  attempt=due.attempt, order_key=key, amount=due.amount,
                                  run_on=today, status="charging"))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return "skipped", None, None
    else:
        session.execute(update(AutopayCharge).where(AutopayCharge.order_key == key)
                        .values(run_on=today))
        session.commit()
    reason = None
    try:
        charged = payment_states.charge_saved_method(session, user, due.account_id, due.amount,
                                                     due.token, key)
    except payment_states.GatewayDown:
        status, reason = "failed", GATEWAY_DOWN
    except payment_states.PaymentError as exc:
        log.warning("autopay of invoice %s refused by the portal: %s", due.invoice_id, exc)
        status, reason = "failed", "refused"
    else:
        status = {"succeeded": "succeeded", "canceled": "declined"}.get(charged.state.status,
                                                                        "charging")
        if status == "declined":
            reason = charged.reason or "card_declined"
    charge = session.execute(select(AutopayCharge).where(AutopayCharge.order_key == key)
                             ).scalar_one()
    charge.status, charge.reason = status, reason
    setting = session.get(AutopaySetting, due.setting_id)
    setting.last_attempt_at = dt.datetime.now(dt.timezone.utc)
    if status == "succeeded":
        setting.failures = 0
    elif status in ("declined", "failed"):
        setting.failures = (setting.failures or 0) + 1
        if reason in METHOD_UNUSABLE:
            setting.status = "off"
    session.commit()
    audit.record(session, f"autopay.{status}", actor_id=None, object_type="autopay",
                 object_id=due.setting_id,
                 details={"invoice_id": due.invoice_id, "attempt": due.attempt,
                          "amount": str(due.amount), "order_key": key,
                          **({"reason": reason} if reason else {})})
    return status, reason, charge.id


def _notice(user: PortalUser, due: Due, charge_id: int, reason: str | None, off: bool,
            retry: bool, today: dt.date, config: Mapping[str, Any]) -> Outgoing:
    return Outgoing(topic_recipient(user, "payments"), [f"autopay_charge:{charge_id}"], {
        "account": due.number, "address": due.address, "amount": money(due.amount),
        "period": month_name(due.period), "card": due.card.label,
        "reason": REASONS.get(reason or "", DEFAULT_REASON), "will_retry": retry,
        "retry_on": f"{today + dt.timedelta(days=1):%d.%m.%Y}", "turned_off": off,
        "due_date": f"{due.due_date:%d.%m.%Y}",
        "link": f"{portal_url(config)}/cabinet/autopay/{due.account_id}",
    })
