"""Paying without signing in (/pay/): the account number from the bill, an amount and an
e-mail or phone for the 54-FZ receipt; then a check page with the account's address masked
and its debt; then the gateway; then a public result page.

The payment itself is ``payment_states.start_payment`` without a user, so it takes the cabinet's
own path — order, notification, status fetched from the gateway, the conditional UPDATE —
and is credited exactly once. A found account shows its street and debt to whoever typed
its number, so every look-up counts against the visitor's IP address, found or not, under
the per-IP limit of readings without signing in; an unknown, closed or mistyped number gets
one answer after the same work. An organization's account is not paid here: its debt is shown
behind the organization's login, and it is paid by the bank details on its bill.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import phonenumbers
from limits import parse
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import PersonalAccount, Premises
from app.services import accounts, audit, payment_states
from app.services.auth import AuthError, parse_contact
from app.services.binding import BUSINESS_LOGIN, clean_number, organization_account
from app.services.throttle import RULES, guard

#: The per-IP limit of readings without signing in, on counters of this page's own.
IP_LIMIT = parse(RULES["guest_reading"][1])
NOT_FOUND = ("Не нашли действующий лицевой счёт с таким номером. Проверьте номер по "
             "квитанции.")
#: After binding.organization_account: paid by the bill's bank details, its debt shown
#: behind its login.
ORGANIZATION = (". Его оплачивают по реквизитам из счёта; начисления и платежи — в кабинете "
                f"организации: войдите на странице {BUSINESS_LOGIN}.")
THROTTLED = ("Слишком много попыток за короткое время. Попробуйте снова через {minutes} мин. "
             "или войдите в личный кабинет.")
CONTACT_HINT = ("Укажите электронную почту (например, ivanov@mail.ru) или номер мобильного "
                "телефона (например, +7 918 123-45-67): туда придёт кассовый чек.")


class InvalidForm(payment_states.PaymentError):
    """Step 1 refused, nothing changed: a Russian message per field ("form": the whole)."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(" ".join(errors.values()))


def masked_address(place) -> str:
    """As much of an address as lets a person recognise their own home, and no more: the
    locality and the street of anything with ``locality`` and ``street`` (a Premises, a
    row) — never the house, the flat or the holder's name."""
    return ", ".join(p for p in (place.locality, place.street) if p)


@dataclass(frozen=True)
class Draft:
    """What step 1 established, kept in the visitor's signed session until «Оплатить»."""

    account_id: int
    number: str
    amount: Decimal
    customer: dict[str, str]  # {"email": ...} or {"phone": "79181234567"}, as receipts take

    def to_session(self) -> dict:
        return {"account_id": self.account_id, "number": self.number,
                "amount": str(self.amount), **self.customer}

    @classmethod
    def from_session(cls, data) -> Draft | None:
        """None when there is no draft (or not one this module wrote)."""
        try:
            customer = {k: str(data[k]) for k in ("email", "phone") if data.get(k)}
            draft = cls(int(data["account_id"]), str(data["number"]), Decimal(data["amount"]),
                        customer)
        except (KeyError, TypeError, ValueError, AttributeError, InvalidOperation):
            return None
        return draft if len(customer) == 1 else None

    @property
    def contact_text(self) -> str:
        if "email" in self.customer:
            return self.customer["email"]
        number = phonenumbers.parse("+" + self.customer["phone"], None)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


@dataclass(frozen=True)
class Check:
    """Step 2 («проверьте»): what the visitor confirms before the gateway."""

    address: str  # masked
    balance: Decimal  # positive: the debt; negative: an overpayment


def receipt_contact(raw: str | None) -> dict[str, str]:
    """An e-mail (it has an «@») or a Russian phone, in the shape receipts take."""
    raw = (raw or "").strip()
    try:
        contact = parse_contact("email" if "@" in raw else "phone", raw)
    except AuthError as exc:
        raise payment_states.PaymentError(CONTACT_HINT) from exc
    return {"email": contact.value} if contact.kind == "email" else \
        {"phone": contact.value.lstrip("+")}


def _count(ip: str | None) -> None:
    """Count a look-up or a start against the visitor's address; refuse past the limit."""
    limiter = guard("guest_reading").limiter  # the guards' storage: Redis when shared
    key = f"guest_pay-ip:{ip or 'unknown'}"
    if not limiter.hit(IP_LIMIT, key):
        reset = limiter.get_window_stats(IP_LIMIT, key).reset_time
        minutes = max(1, math.ceil((reset - time.time()) / 60))
        raise InvalidForm({"form": THROTTLED.format(minutes=minutes)})


def look_up(session: Session, number: str | None, amount: str | None, contact: str | None,
            ip: str | None) -> Draft:
    """Step 1: check the fields, then (counted) find the open account by its number."""
    errors: dict[str, str] = {}
    if not (number or "").strip():
        errors["account"] = "Укажите номер лицевого счёта: он напечатан в квитанции."
    try:
        value = payment_states.parse_amount(amount)
    except payment_states.PaymentError as exc:
        errors["amount"] = str(exc)
    try:
        customer = receipt_contact(contact)
    except payment_states.PaymentError as exc:
        errors["contact"] = str(exc)
    if errors:
        raise InvalidForm(errors)
    _count(ip)
    number = clean_number(number)
    found = session.execute(select(PersonalAccount.id, accounts.organization_contract_number())
                            .where(PersonalAccount.number == number,
                                   PersonalAccount.status == "active")).first()
    if found is None:
        audit.record(session, "payment.guest_not_found", object_type="payment", ip=ip)
        raise InvalidForm({"account": NOT_FOUND})
    account_id, contract = found
    if contract is not None:
        raise InvalidForm({"account": organization_account(number, contract) + ORGANIZATION})
    return Draft(account_id, number, value, customer)


def check(session: Session, draft: Draft) -> Check | None:
    """Step 2's facts in one statement; None when the account is no longer open, or no
    longer a household's."""
    balance = next(c for c in accounts.summary_columns() if c.name == "balance")
    row = session.execute(
        select(Premises.locality, Premises.street, balance).select_from(PersonalAccount)
        .join(Premises, PersonalAccount.premises_id == Premises.id)
        .where(PersonalAccount.id == draft.account_id, PersonalAccount.status == "active",
               accounts.open_to_residents())
    ).first()
    return None if row is None else Check(masked_address(row), row.balance)


def start(session: Session, draft: Draft, return_url, ip: str | None,
          method: str) -> payment_states.OrderState:
    """«Оплатить»: counted like a look-up (a replayed session cookie still holds the draft),
    then the cabinet's own start with no user and the visitor's receipt contact."""
    _count(ip)
    return payment_states.start_payment(session, None, [(draft.account_id, draft.amount)],
                                        return_url, ip=ip, method=method, customer=draft.customer)


def result(session: Session, order_key: str, ip: str | None
           ) -> tuple[payment_states.OrderState, dict[int, str]]:
    """The public result page: a guest order only (never a cabinet's), confirmed with the
    gateway like the cabinet's, and each account's masked address by account id."""
    state = payment_states.confirm_return(session, None, order_key, ip)
    ids = [p.account_id for p in state.parts]
    rows = session.execute(
        select(PersonalAccount.id, Premises.locality, Premises.street)
        .join(Premises, PersonalAccount.premises_id == Premises.id)
        .where(PersonalAccount.id.in_(ids)))
    return state, {row.id: masked_address(row) for row in rows}
