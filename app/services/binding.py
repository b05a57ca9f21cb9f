"""Binding personal accounts to a user's cabinet. Proof of ownership is the pair printed on
the paper bill: the account number and the serial number of one of its meters. A wrong pair
gets one generic answer, and failures are throttled per user and per IP, so nobody binds a
stranger's account by guessing numbers. An account on an organization's contract is never
bound to a resident (app.services.accounts.open_to_residents): the right pair is told where
that account lives, the organizations' cabinet. The same pair lets a visitor give a
household meter's readings without signing in (``guest_meter``)."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.orm import Session

from app.models import AccountBinding, Meter, PersonalAccount
from app.services import accounts, audit
from app.services.ids import clean_number, clean_serial
from app.services.throttle import guard

NOT_FOUND = ("Не нашли лицевой счёт с таким прибором учёта. Проверьте номер счёта и заводской "
             "номер счётчика по квитанции.")
MAX_PAIRS = 10
#: Where an organization signs in.
BUSINESS_LOGIN = "/business/login"


class BindingError(Exception):
    """Bad input; the text is safe to show to the user."""


@dataclass
class BindResult:
    bound: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    #: Account number -> the number of the organization's contract it is on: not bound.
    organization: dict[str, str] = field(default_factory=dict)


def organization_account(number: str, contract: str) -> str:
    """The words every refusal of an organization's account opens with: whose it is."""
    return f"Лицевой счёт {number} оформлен на организацию по договору № {contract}"


def organization_refusal(number: str, contract: str) -> str:
    """Why an organization's account is not bound to a resident, and where to go instead."""
    return (f"{organization_account(number, contract)}, поэтому "
            "привязать его к кабинету жителя нельзя. Начисления, счета и показания по нему — "
            f"в кабинете организации: войдите на странице {BUSINESS_LOGIN}.")


def bind_accounts(session: Session, user_id: int, pairs: list[tuple[str, str]],
                  ip: str | None) -> BindResult:
    """Bind every (account number, meter serial) pair that matches an open account of a
    household; all in one lookup query. A matching account on an organization's contract is
    refused with that contract's number (a right pair, so not counted as a failure). Raises
    Throttled after too many wrong pairs."""
    cleaned = [(clean_number(n), clean_serial(s)) for n, s in pairs if (n or "").strip()]
    if not cleaned:
        raise BindingError("Укажите номер лицевого счёта и заводской номер счётчика.")
    if len(cleaned) > MAX_PAIRS:
        raise BindingError(f"За один раз можно привязать не более {MAX_PAIRS} счетов.")
    for number, serial in cleaned:
        if not 7 <= len(number) <= 13:
            raise BindingError(f"Номер лицевого счёта «{number or '—'}» должен содержать "
                               "от 7 до 13 цифр.")
        if not serial:
            raise BindingError(f"Укажите заводской номер счётчика для счёта {number}.")
    attempts = guard("bind")
    attempts.check(str(user_id), ip)
    found = session.execute(
        select(PersonalAccount.number, PersonalAccount.id,
               accounts.organization_contract_number())
        .join(Meter, Meter.account_id == PersonalAccount.id)
        .where(tuple_(PersonalAccount.number, func.upper(Meter.serial)).in_(cleaned),
               PersonalAccount.status == "active")
    ).all()
    matches = {number: account_id for number, account_id, _contract in found}
    contracts = {number: contract for number, _id, contract in found if contract is not None}
    existing = set(session.execute(
        select(AccountBinding.account_id).where(AccountBinding.user_id == user_id,
                                                AccountBinding.account_id.in_(matches.values()))
    ).scalars()) if matches else set()
    result = BindResult()
    for number, _serial in dict.fromkeys(cleaned):
        account_id = matches.get(number)
        if account_id is None:
            result.refused.append(number)
            attempts.failed(str(user_id), ip)
        elif number in contracts:
            result.organization[number] = contracts[number]
        elif account_id in existing:
            result.already.append(number)
        else:
            existing.add(account_id)
            session.add(AccountBinding(user_id=user_id, account_id=account_id,
                                       method="meter_serial"))
            result.bound.append(number)
    session.commit()
    for number in result.bound:
        audit.record(session, "account.bound", actor_id=user_id, object_type="account",
                     object_id=matches[number], ip=ip, commit=False)
    if result.refused:
        audit.record(session, "account.bind_refused", actor_id=user_id, ip=ip, commit=False,
                     details={"count": len(result.refused)})
    for number in result.organization:
        audit.record(session, "account.bind_refused", actor_id=user_id, object_type="account",
                     object_id=matches[number], ip=ip, commit=False,
                     details={"reason": "organization"})
    session.commit()
    return result


def unbind_account(session: Session, user_id: int, account_id: int, ip: str | None) -> bool:
    """Remove the user's own binding; the account and its history stay. False if the user had
    no such binding (another user's account looks the same as a missing one)."""
    deleted = session.execute(
        delete(AccountBinding).where(AccountBinding.user_id == user_id,
                                     AccountBinding.account_id == account_id)
    ).rowcount
    if deleted:
        audit.record(session, "account.unbound", actor_id=user_id, object_type="account",
                     object_id=account_id, ip=ip, commit=False)
    session.commit()
    return bool(deleted)


GUEST_NOT_FOUND = ("Не нашли счётчик с таким номером на этом лицевом счёте. Проверьте номер "
                   "счёта и заводской номер счётчика по квитанции.")
#: After organization_account: a right pair's readings are the organization's to give.
GUEST_ORGANIZATION = (". Показания по нему передаются в кабинете организации: войдите на "
                      f"странице {BUSINESS_LOGIN}.")


def guest_meter(session: Session, number: str, serial: str, ip: str | None) -> Meter:
    """Readings without signing in: the bill's account number and meter serial prove the
    visitor holds the bill. Wrong pairs are throttled per account number and per IP, and get
    one generic answer. A household's meters only: an organization gives its readings in its
    own cabinet, behind its login (app.services.accounts.open_to_residents)."""
    number, serial = clean_number(number), clean_serial(serial)
    if not number or not serial:
        raise BindingError("Укажите номер лицевого счёта и заводской номер счётчика.")
    attempts = guard("guest_reading")
    attempts.check(number, ip)
    found = session.execute(
        select(Meter, accounts.organization_contract_number())
        .join(PersonalAccount, Meter.account_id == PersonalAccount.id)
        .where(PersonalAccount.number == number, func.upper(Meter.serial) == serial,
               PersonalAccount.status == "active", Meter.active.is_(True))
    ).first()
    if found is None:
        attempts.failed(number, ip)
        audit.record(session, "reading.guest_refused", ip=ip)
        raise BindingError(GUEST_NOT_FOUND)
    meter, contract = found
    if contract is not None:
        raise BindingError(organization_account(number, contract) + GUEST_ORGANIZATION)
    return meter
