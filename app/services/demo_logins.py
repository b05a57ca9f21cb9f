"""The demo's sign-ins, one per role: (re)created with fresh random passwords that are shown
once and never stored in clear; a user with a demo username but another e-mail is left alone."""
from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from faker import Faker
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import models as m
from app.services import audit
from app.services.accounts import open_to_residents
from app.services.auth import CONSENT_VERSION
from app.services.demo import DemoError, demo_loaded
from app.services.phones import normalize_phone


@dataclass(frozen=True)
class DemoLogin:
    role: str  # Russian label
    username: str
    password: str | None  # None: the username belongs to someone else, left alone
    login: str  # what to type at the entrance: the username, or the resident's phone
    entrance: str  # where to sign in


#: The demo users: username, FAB role, Russian label of the role, entrance.
DEMO_USERS = (
    ("admin", "Admin", "Администратор", "/login/"),
    ("operator", "Staff", "Оператор (Краснодарэнергосбыт)", "/login/"),
    ("finance", "Finance", "Финансист", "/login/"),
    ("resident", "Resident", "Житель (2 лицевых счёта)", "/auth/"),
    ("business", "Business", "Организация", "/business/login"),
)
DEMO_EMAIL_DOMAIN = "nesk.example"


def demo_email(username: str) -> str:
    """The e-mail of a demo user: what tells a demo user from a real one of the same name."""
    return f"{username}@{DEMO_EMAIL_DOMAIN}"

_PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_password() -> str:
    """A random password of four groups of four characters (about 92 bits)."""
    return "-".join("".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(4))
                    for _ in range(4))


def issue_demo_logins(appbuilder, session: Session) -> list[DemoLogin]:
    """Give every demo user a fresh random password, creating missing users through the
    security manager (the resident bound to two accounts, the business user to an
    organization). Returns the passwords; nothing keeps them in clear. A user with a demo
    username but another e-mail is not a demo user: it is left alone."""
    if not demo_loaded(session):
        raise DemoError("Демо-данные не загружены: сначала выполните «flask demo seed».")
    sm = appbuilder.sm
    logins = []
    for username, role_name, label, entrance in DEMO_USERS:
        password = new_password()
        user = session.scalar(select(m.PortalUser).where(m.PortalUser.username == username))
        if user is not None and user.email != demo_email(username):
            logins.append(DemoLogin(label, username, None, username, entrance))
            continue
        if user is None:
            role = sm.find_role(role_name)
            if role is None:
                raise DemoError(f"Нет роли {role_name}: выполните «flask roles sync».")
            _create_demo_user(sm, session, username, role, password)
            action = "user.created"
        else:
            sm.reset_password(user.id, password)
            action = "password.reset"
        user = session.scalar(select(m.PortalUser).where(m.PortalUser.username == username))
        audit.record(session, action, object_type="user", object_id=user.id,
                     details={"reason": "demo logins"})
        login = user.phone if user.kind == "resident" and user.phone else username
        if user.kind == "business" and user.branch_id:
            entrance += f" ({session.get(m.Branch, user.branch_id).name})"
        logins.append(DemoLogin(label, username, password, login, entrance))
    return logins


def _create_demo_user(sm, session: Session, username: str, role, password: str) -> None:
    fake = Faker("ru_RU")
    extra: dict = {"kind": "staff"}
    bind: list[int] = []
    last_name, first_name = fake.last_name(), fake.first_name()
    if username == "operator":
        extra["branch_id"] = session.scalar(select(m.Branch.id).where(m.Branch.code == "krd"))
    elif username == "resident":
        bind = _resident_accounts(session)
        holder = session.get(m.PersonalAccount, bind[0]).holder_name
        last_name, first_name = holder.split()[:2]
        for account_id in bind[1:]:
            session.get(m.PersonalAccount, account_id).holder_name = holder
        phone = None
        while phone is None:
            phone = normalize_phone(f"8 918 {secrets.randbelow(10**7):07d}")
            if session.scalar(select(m.PortalUser.id).where(m.PortalUser.phone == phone)):
                phone = None
        extra.update(kind="resident", phone=phone, pd_consent_at=m.utcnow(),
                     pd_consent_version=CONSENT_VERSION)
    elif username == "business":
        org = session.scalars(
            select(m.Organization).join(m.Contract).join(m.PersonalAccount)
            .group_by(m.Organization.id).order_by(func.count(m.PersonalAccount.id).desc(),
                                                  m.Organization.id).limit(1)).first()
        if org is None:
            raise DemoError("В демо-данных нет организаций.")
        extra.update(kind="business", organization_id=org.id, branch_id=org.branch_id)
        if org.director:
            last_name, first_name = org.director.split()[:2]
    user = sm.add_user(username=username, first_name=first_name, last_name=last_name,
                       email=demo_email(username), role=role, password=password,
                       commit=False)
    if not user:
        raise DemoError(f"Не удалось создать пользователя {username}.")
    for key, value in extra.items():
        setattr(user, key, value)
    session.flush()
    for account_id in bind:
        session.add(m.AccountBinding(user_id=user.id, account_id=account_id,
                                     method="meter_serial"))
    session.commit()


def _resident_accounts(session: Session) -> list[int]:
    """A town flat in Krasnodar and a village house: the first of each among households (never
    an organization's point of supply, which the residents' cabinet does not show)."""
    base = (select(m.PersonalAccount.id).join(m.Premises)
            .where(open_to_residents())
            .order_by(m.PersonalAccount.id).limit(1))
    krd = select(m.Branch.id).where(m.Branch.code == "krd").scalar_subquery()
    town = session.scalar(base.where(m.Premises.locality_type == "urban",
                                     m.Premises.branch_id == krd,
                                     m.Premises.flat.is_not(None)))
    village = session.scalar(base.where(m.Premises.locality_type == "rural"))
    ids = [i for i in (town, village) if i is not None]
    if len(ids) < 2:
        ids = list(session.scalars(base.limit(2)))
    if len(ids) < 2:
        raise DemoError("Для жителя нужны два лицевых счёта: загрузите хотя бы два.")
    return ids


def format_logins(logins: Sequence[DemoLogin]) -> str:
    """A table of role / login / password / entrance for the terminal."""
    header = ("Роль", "Логин", "Пароль", "Где входить")
    rows = [header] + [(x.role, x.login, x.password or "не изменён: это не демо-пользователь",
                        x.entrance) for x in logins]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(row):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |"

    return "\n".join([
        "Демо-входы (пароли показаны один раз и нигде не сохраняются; при следующем "
        "запуске будут выданы новые):",
        line, fmt(header), line, *(fmt(r) for r in rows[1:]), line,
    ])
