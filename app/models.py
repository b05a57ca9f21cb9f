"""Every table of the portal, in sections.

Money is Numeric(14, 2), energy Numeric(14, 3) kWh, rates Numeric(10, 4) rubles per kWh; all of
them are Decimal in Python. Periods are the first day of a month. Timestamps carry a time zone.
The ledger is charges and payments; invoices and balances are derived from it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from decimal import ROUND_HALF_UP, Decimal
from typing import Optional

from flask import current_app
from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User as FabUser
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    func,
    literal,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

KOPECK = Decimal("0.01")


class ExactMoney(TypeDecorator):
    """Numeric(14, 2) that is exact on SQLite too, which keeps NUMERIC as a binary float:
    every amount written is a Decimal rounded half-up to kopecks (a float is refused, it is
    never an exact sum) and every amount read comes back as one. Values compared with a
    column keep the plain Numeric type: ``amount > 0.005`` must not become ``> 0.01``."""

    impl = Numeric
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(14, 2)

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError(f"money must be a Decimal, not the float {value!r}")
        return Decimal(value).quantize(KOPECK, ROUND_HALF_UP)

    def process_result_value(self, value, dialect):
        return None if value is None else Decimal(value).quantize(KOPECK, ROUND_HALF_UP)

    def coerce_compared_value(self, op, value):
        return self.impl_instance


Money = ExactMoney()
Kwh = Numeric(14, 3)
Rate = Numeric(10, 4)
ZERO = Decimal("0.00")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def Timestamp(**kwargs):  # noqa: N802 - reads like a column type
    return mapped_column(DateTime(timezone=True), **kwargs)


class Choices:
    """Allowed values of a status-like column, with their Russian labels."""

    labels: dict[str, str] = {}

    @classmethod
    def values(cls) -> list[str]:
        return list(cls.labels)

    @classmethod
    def label(cls, value: str | None) -> str:
        return cls.labels.get(value or "", value or "")

    @classmethod
    def check(cls, column: str) -> str:
        quoted = ", ".join(f"'{v}'" for v in cls.labels)
        return f"{column} IN ({quoted})"


class UserKind(Choices):
    labels = {"resident": "Физическое лицо", "business": "Организация", "staff": "Сотрудник"}


class NoticeTopic(Choices):
    """What a resident may get notices about, each by e-mail, by SMS and by push to their
    devices (PushSubscription)."""

    labels = {"bills": "Новые счета", "readings": "Напоминания о передаче показаний",
              "payments": "Поступление платежей"}


class LocalityType(Choices):
    labels = {"urban": "Город", "rural": "Село"}


class AccountStatus(Choices):
    labels = {"active": "Действующий", "closed": "Закрыт"}


class ContractStatus(Choices):
    labels = {"draft": "Проект", "active": "Действует", "terminated": "Расторгнут"}


class ReadingSource(Choices):
    labels = {
        "web": "Личный кабинет",
        "app": "Мобильное приложение",
        "bot": "Чат-бот",
        "staff": "Сотрудник",
        "controller": "Контролёр",
        "import": "Загрузка",
    }


class ReadingStatus(Choices):
    labels = {
        "accepted": "Принято",
        "flagged": "На проверке",
        "rejected": "Отклонено",
    }


class ChargeKind(Choices):
    labels = {
        "metered": "По показаниям",
        "average": "По среднему",
        "norm": "По нормативу",
        "adjustment": "Корректировка",
    }


class PaymentStatus(Choices):
    labels = {
        "created": "Создан",
        "pending": "Ожидает оплаты",
        "succeeded": "Оплачен",
        "canceled": "Отменён",
        "refunded": "Возвращён",
    }


class PaymentMethod(Choices):
    labels = {"card": "Банковская карта", "sbp": "СБП", "bank": "Банк", "cash": "Касса"}


class ApplicationStatus(Choices):
    labels = {
        "new": "Новая",
        "in_review": "На рассмотрении",
        "approved": "Одобрена",
        "rejected": "Отклонена",
    }


class ApplicationKind(Choices):
    labels = {
        "new_connection": "Новый объект (после технологического присоединения)",
        "new_owner": "Смена собственника",
        "reissue": "Переоформление договора",
        "temporary": "Временное электроснабжение",
        "verification": "Поверка или замена прибора учёта",
    }


class FeedbackStatus(Choices):
    labels = {"new": "Новое", "answered": "Отвечено", "closed": "Закрыто"}


class MailingStatus(Choices):
    labels = {
        "draft": "Черновик",
        "queued": "В очереди",
        "sending": "Отправляется",
        "paused": "Приостановлена",
        "done": "Отправлена",
        "canceled": "Отменена",
    }


class ActStatus(Choices):
    labels = {"requested": "Запрошен", "ready": "Сформирован", "rejected": "Отклонён"}


class Season(Choices):
    labels = {"heating": "Отопительный (октябрь–апрель)", "summer": "Летний (май–сентябрь)"}


# ---------------------------------------------------------------------------------------------
# Organisation of the supplier


class Branch(Model):
    """A branch (филиал) of the supplier; staff and customers belong to one."""

    __tablename__ = "branch"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    city: Mapped[str] = mapped_column(String(80))
    address: Mapped[Optional[str]] = mapped_column(String(255))
    phone: Mapped[Optional[str]] = mapped_column(String(32))

    def __repr__(self) -> str:
        return self.name


# ---------------------------------------------------------------------------------------------
# People and organizations


def password_stamp(stored_hash: str | None) -> str:
    """A short keyed digest of the password's hash, carried by every session, "remember me"
    cookie and API token: a new password gives a new stamp, and the old ones stop opening
    anything. Keyed with SECRET_KEY so that a cookie, which its holder can read, tells
    nothing of the hash."""
    key = current_app.secret_key
    key = key.encode() if isinstance(key, str) else key
    return hmac.new(key, (stored_hash or "").encode(), hashlib.sha256).hexdigest()[:16]

class PortalUser(FabUser):
    """FAB's user with the portal's fields. New columns are nullable or defaulted so that
    `flask fab create-admin` keeps working."""

    __tablename__ = "ab_user"

    phone: Mapped[Optional[str]] = mapped_column(String(16), unique=True, nullable=True)
    email_is_placeholder: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    kind: Mapped[str] = mapped_column(
        String(16), default="resident", server_default="resident", index=True
    )
    branch_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("branch.id"), nullable=True, index=True
    )
    organization_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("organization.id"), nullable=True, index=True
    )
    must_change_password: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    pd_consent_at: Mapped[Optional[dt.datetime]] = Timestamp(nullable=True)
    pd_consent_version: Mapped[Optional[str]] = mapped_column(String(16), nullable=True)
    notify_email: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=text("true")
    )
    notify_sms: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    paperless: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    mailing_opt_out: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # Notices by topic and channel (NoticeTopic); notify_email/notify_sms say whether any
    # topic goes to that channel and are kept in step by app.services.profile.
    notify_bills_email: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=text("true")
    )
    notify_bills_sms: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=text("true")
    )
    notify_readings_email: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=text("true")
    )
    notify_readings_sms: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=text("true")
    )
    notify_payments_email: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=text("true")
    )
    notify_payments_sms: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default=text("true")
    )
    # Push to the user's devices: off until the person turns it on (a browser asks first).
    notify_bills_push: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    notify_readings_push: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    notify_payments_push: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    pd_consent_withdrawn_at: Mapped[Optional[dt.datetime]] = Timestamp(nullable=True)

    branch: Mapped[Optional[Branch]] = relationship(foreign_keys=[branch_id])
    organization: Mapped[Optional["Organization"]] = relationship(
        foreign_keys=[organization_id], back_populates="users"
    )

    def get_id(self) -> str:
        """Flask-Login's id of the user's session and "remember me" cookie: the id, the
        password's stamp (a new password signs every other browser out) and the token of the
        sign-in that loaded or signed in this user (``session_token``, app.security.sign_in),
        so that ending the sign-in's row ends the cookies (PortalSecurityManager.load_user).
        Without a sign-in the id opens nothing."""
        stamped = f"{self.id}.{password_stamp(self.password)}"
        token = getattr(self, "session_token", None)
        return f"{stamped}.{token}" if token else stamped

    def get_full_name(self) -> str:
        """The name for menus and greetings; a resident who gave none is shown by login."""
        return super().get_full_name().strip() or self.username

    @property
    def deliverable_email(self) -> str | None:
        """The e-mail to write to, or None for a phone-only user's placeholder."""
        return None if self.email_is_placeholder else self.email

    def wants_notice(self, topic: str, channel: str) -> bool:
        """Whether notices on ``topic`` (NoticeTopic) may go by ``channel`` ("email", "sms",
        "push"): the user chose it and has a real contact there. For push the devices are
        looked up when sending (app.services.push), for all recipients in one query."""
        if topic not in NoticeTopic.labels or channel not in ("email", "sms", "push"):
            raise ValueError(f"unknown notice {topic!r} by {channel!r}")
        chosen = bool(getattr(self, f"notify_{topic}_{channel}"))
        if channel == "push":
            return chosen
        contact = self.deliverable_email if channel == "email" else self.phone
        return bool(contact) and chosen


class Organization(Model):
    """A business customer (юридическое лицо или ИП)."""

    __tablename__ = "organization"
    __table_args__ = (UniqueConstraint("inn", "kpp", name="uq_organization_inn_kpp"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    inn: Mapped[str] = mapped_column(String(12), index=True)
    kpp: Mapped[Optional[str]] = mapped_column(String(9))
    ogrn: Mapped[Optional[str]] = mapped_column(String(15))
    address: Mapped[Optional[str]] = mapped_column(String(255))
    email: Mapped[Optional[str]] = mapped_column(String(320))
    phone: Mapped[Optional[str]] = mapped_column(String(16))
    director: Mapped[Optional[str]] = mapped_column(String(160))
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)

    branch: Mapped[Branch] = relationship()
    users: Mapped[list[PortalUser]] = relationship(
        back_populates="organization", foreign_keys="PortalUser.organization_id"
    )
    contracts: Mapped[list["Contract"]] = relationship(back_populates="organization")

    def __repr__(self) -> str:
        return self.name


class Contract(Model):
    """A supply contract, with an organization or with a person."""

    __tablename__ = "contract"
    __table_args__ = (CheckConstraint(ContractStatus.check("status"), name="ck_contract_status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    organization_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("organization.id"), index=True
    )
    person_name: Mapped[Optional[str]] = mapped_column(String(160))
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    signed_on: Mapped[dt.date] = mapped_column(Date)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[Optional[dt.date]] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)

    organization: Mapped[Optional[Organization]] = relationship(back_populates="contracts")
    branch: Mapped[Branch] = relationship()
    accounts: Mapped[list["PersonalAccount"]] = relationship(back_populates="contract")

    def __repr__(self) -> str:
        return f"Договор № {self.number}"


# ---------------------------------------------------------------------------------------------
# Premises, accounts, meters


class Premises(Model):
    """A supplied address (помещение): a flat, a house, a shop."""

    __tablename__ = "premises"
    __table_args__ = (
        CheckConstraint(LocalityType.check("locality_type"), name="ck_premises_locality"),
        # The back office finds premises by the street as it is typed (app.services.lookup).
        Index("ix_premises_street_house", "street", "house"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    locality: Mapped[str] = mapped_column(String(120))
    locality_type: Mapped[str] = mapped_column(String(8), default="urban")
    street: Mapped[str] = mapped_column(String(160))
    house: Mapped[str] = mapped_column(String(16))
    flat: Mapped[Optional[str]] = mapped_column(String(16))
    postcode: Mapped[Optional[str]] = mapped_column(String(6))
    electric_stove: Mapped[bool] = mapped_column(Boolean, default=False)
    residents: Mapped[int] = mapped_column(SmallInteger, default=1)

    branch: Mapped[Branch] = relationship()

    @hybrid_property
    def address(self) -> str:
        parts = [self.postcode, self.locality, self.street, f"д. {self.house}"]
        if self.flat:
            parts.append(f"кв. {self.flat}")
        return ", ".join(p for p in parts if p)

    @address.inplace.expression
    @classmethod
    def _address_expression(cls):
        """The same address in SQL (SQLite has no concat_ws): a statement can read it."""
        def part(column, before="", after=""):
            value = func.nullif(column, "")
            if before:
                value = literal(before) + value
            if after:
                value = value + after
            return func.coalesce(value, "")
        return (part(cls.postcode, after=", ") + part(cls.locality, after=", ")
                + part(cls.street, after=", ") + "д. " + cls.house
                + part(cls.flat, before=", кв. "))

    def __repr__(self) -> str:
        return self.address


class TariffGroup(Model):
    """A tariff group of consumers (городское население, сельское население...)."""

    __tablename__ = "tariff_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(160), unique=True)

    def __repr__(self) -> str:
        return self.name


class PersonalAccount(Model):
    """A personal account (лицевой счёт): what is billed and paid."""

    __tablename__ = "personal_account"
    __table_args__ = (
        CheckConstraint(AccountStatus.check("status"), name="ck_account_status"),
        Index("ix_personal_account_branch_status", "branch_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(13), unique=True)
    holder_name: Mapped[str] = mapped_column(String(160), index=True)
    premises_id: Mapped[int] = mapped_column(ForeignKey("premises.id"), index=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    tariff_group_id: Mapped[int] = mapped_column(ForeignKey("tariff_group.id"), index=True)
    contract_id: Mapped[Optional[int]] = mapped_column(ForeignKey("contract.id"), index=True)
    status: Mapped[str] = mapped_column(String(8), default="active")
    large_family: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_on: Mapped[dt.date] = mapped_column(Date)
    closed_on: Mapped[Optional[dt.date]] = mapped_column(Date)

    premises: Mapped[Premises] = relationship()
    branch: Mapped[Branch] = relationship()
    tariff_group: Mapped[TariffGroup] = relationship()
    contract: Mapped[Optional[Contract]] = relationship(back_populates="accounts")
    meters: Mapped[list["Meter"]] = relationship(back_populates="account")

    def __repr__(self) -> str:
        return self.number


class AccountBinding(Model):
    """A user's link to a personal account; several users (a family) may share one account."""

    __tablename__ = "account_binding"
    __table_args__ = (UniqueConstraint("user_id", "account_id", name="uq_binding_user_account"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("personal_account.id"), index=True)
    bound_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    method: Mapped[str] = mapped_column(String(32), default="meter_serial")

    user: Mapped[PortalUser] = relationship()
    account: Mapped[PersonalAccount] = relationship()


class Meter(Model):
    """An electricity meter with one, two or three registers (zones)."""

    __tablename__ = "meter"
    __table_args__ = (
        CheckConstraint("zones IN (1, 2, 3)", name="ck_meter_zones"),
        CheckConstraint("digit_capacity BETWEEN 4 AND 9", name="ck_meter_digits"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("personal_account.id"), index=True)
    model: Mapped[Optional[str]] = mapped_column(String(80))
    zones: Mapped[int] = mapped_column(SmallInteger, default=1)
    digit_capacity: Mapped[int] = mapped_column(SmallInteger, default=6)
    installed_on: Mapped[Optional[dt.date]] = mapped_column(Date)
    verification_due: Mapped[Optional[dt.date]] = mapped_column(Date, index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    account: Mapped[PersonalAccount] = relationship(back_populates="meters")

    def __repr__(self) -> str:
        return self.serial


class Reading(Model):
    """A meter reading for a period: one cumulative value per register (T1, T2, T3)."""

    __tablename__ = "reading"
    __table_args__ = (
        UniqueConstraint("meter_id", "period", "source", name="uq_reading_meter_period_source"),
        CheckConstraint(ReadingSource.check("source"), name="ck_reading_source"),
        CheckConstraint(ReadingStatus.check("status"), name="ck_reading_status"),
        Index("ix_reading_period_status", "period", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meter.id"))
    period: Mapped[dt.date] = mapped_column(Date)
    t1: Mapped[Decimal] = mapped_column(Kwh)
    t2: Mapped[Optional[Decimal]] = mapped_column(Kwh)
    t3: Mapped[Optional[Decimal]] = mapped_column(Kwh)
    source: Mapped[str] = mapped_column(String(16), default="web")
    status: Mapped[str] = mapped_column(String(16), default="accepted")
    submitted_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    submitted_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    review_note: Mapped[Optional[str]] = mapped_column(String(255))

    meter: Mapped[Meter] = relationship()
    submitted_by: Mapped[Optional[PortalUser]] = relationship()


# ---------------------------------------------------------------------------------------------
# Tariffs


class Tariff(Model):
    """A rate for a tariff group, zone scheme, register and consumption range, over dates."""

    __tablename__ = "tariff"
    __table_args__ = (
        UniqueConstraint(
            "tariff_group_id", "zones", "zone", "range_no", "effective_from",
            name="uq_tariff_key",
        ),
        CheckConstraint("zones IN (1, 2, 3)", name="ck_tariff_zones"),
        CheckConstraint("zone IN ('T1', 'T2', 'T3')", name="ck_tariff_zone"),
        CheckConstraint("range_no BETWEEN 1 AND 3", name="ck_tariff_range"),
        CheckConstraint("rate > 0", name="ck_tariff_rate_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tariff_group_id: Mapped[int] = mapped_column(ForeignKey("tariff_group.id"))
    zones: Mapped[int] = mapped_column(SmallInteger, default=1)
    zone: Mapped[str] = mapped_column(String(2), default="T1")
    range_no: Mapped[int] = mapped_column(SmallInteger, default=1)
    rate: Mapped[Decimal] = mapped_column(Rate)
    effective_from: Mapped[dt.date] = mapped_column(Date)
    effective_to: Mapped[Optional[dt.date]] = mapped_column(Date)

    tariff_group: Mapped[TariffGroup] = relationship()


class ConsumptionRange(Model):
    """The upper limit of a consumption range (диапазон) per month for a group and season;
    no upper limit means the last range."""

    __tablename__ = "consumption_range"
    __table_args__ = (
        UniqueConstraint(
            "tariff_group_id", "season", "range_no", "effective_from", name="uq_range_key"
        ),
        CheckConstraint(Season.check("season"), name="ck_range_season"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tariff_group_id: Mapped[int] = mapped_column(ForeignKey("tariff_group.id"))
    season: Mapped[str] = mapped_column(String(8))
    range_no: Mapped[int] = mapped_column(SmallInteger)
    upper_kwh: Mapped[Optional[Decimal]] = mapped_column(Kwh)
    effective_from: Mapped[dt.date] = mapped_column(Date)
    effective_to: Mapped[Optional[dt.date]] = mapped_column(Date)

    tariff_group: Mapped[TariffGroup] = relationship()


# ---------------------------------------------------------------------------------------------
# Ledger: charges, invoices, payments


class Charge(Model):
    """One line of the ledger's debit side: energy of a register and range, or an adjustment."""

    __tablename__ = "charge"
    __table_args__ = (
        CheckConstraint(ChargeKind.check("kind"), name="ck_charge_kind"),
        Index("ix_charge_account_period", "account_id", "period"),
        Index("ix_charge_period", "period"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("personal_account.id"))
    period: Mapped[dt.date] = mapped_column(Date)
    meter_id: Mapped[Optional[int]] = mapped_column(ForeignKey("meter.id"))
    zone: Mapped[Optional[str]] = mapped_column(String(2))
    range_no: Mapped[Optional[int]] = mapped_column(SmallInteger)
    kwh: Mapped[Decimal] = mapped_column(Kwh, default=Decimal("0"))
    rate: Mapped[Optional[Decimal]] = mapped_column(Rate)
    amount: Mapped[Decimal] = mapped_column(Money)
    kind: Mapped[str] = mapped_column(String(16), default="metered")
    note: Mapped[Optional[str]] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = Timestamp(default=utcnow)

    account: Mapped[PersonalAccount] = relationship()
    meter: Mapped[Optional[Meter]] = relationship()


class Invoice(Model):
    """The monthly bill of an account: opening + charged - paid = amount due."""

    __tablename__ = "invoice"
    __table_args__ = (
        UniqueConstraint("account_id", "period", name="uq_invoice_account_period"),
        # Unique per period (the number starts with it): a key of a table partitioned by
        # period on PostgreSQL must hold the period (app.services.ledger_partitions).
        UniqueConstraint("number", "period", name="uq_invoice_number_period"),
        Index("ix_invoice_period", "period"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[int] = mapped_column(ForeignKey("personal_account.id"))
    period: Mapped[dt.date] = mapped_column(Date)
    opening_balance: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    charged: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    paid: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    amount_due: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    due_date: Mapped[dt.date] = mapped_column(Date)
    issued_at: Mapped[dt.datetime] = Timestamp(default=utcnow)

    account: Mapped[PersonalAccount] = relationship()


class Payment(Model):
    """A payment to an account; the gateway's id is unique, the status moves by a state machine."""

    __tablename__ = "payment"
    __table_args__ = (
        CheckConstraint(PaymentStatus.check("status"), name="ck_payment_status"),
        CheckConstraint(PaymentMethod.check("method"), name="ck_payment_method"),
        CheckConstraint("amount > 0", name="ck_payment_amount_positive"),
        Index("ix_payment_account_paid", "account_id", "paid_at"),
        Index("ix_payment_paid", "paid_at"),  # the billing run's payments since last month
        Index("ix_payment_updated", "updated_at"),  # and those changed since its last invoice
        Index("ix_payment_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("personal_account.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    method: Mapped[str] = mapped_column(String(8), default="card")
    gateway: Mapped[Optional[str]] = mapped_column(String(32))
    external_id: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    order_key: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="created")
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    created_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    paid_at: Mapped[Optional[dt.datetime]] = Timestamp()
    updated_at: Mapped[dt.datetime] = Timestamp(default=utcnow, onupdate=utcnow)

    account: Mapped[PersonalAccount] = relationship()
    user: Mapped[Optional[PortalUser]] = relationship()


@event.listens_for(Payment, "before_insert")
@event.listens_for(Payment, "before_update")
def _date_a_credited_payment(_mapper, _connection, payment: Payment) -> None:
    """A succeeded payment always has its date: the ledger and the billing run find a month's
    payments by it (when nobody gave one, the day it was recorded)."""
    if payment.status == "succeeded" and payment.paid_at is None:
        payment.paid_at = payment.created_at or utcnow()


class PaymentOrder(Model):
    """One payment at a gateway, split into one Payment row per account sharing ``order_key``
    (also the Idempotence-Key of its creation). Keeps what the gateway itself said — its id,
    status and confirmed amount — for the daily reconciliation against what was credited."""

    __tablename__ = "payment_order"
    __table_args__ = (
        CheckConstraint("amount > 0", name="ck_payment_order_amount_positive"),
        Index("ix_payment_order_paid", "paid_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_key: Mapped[str] = mapped_column(String(64), unique=True)
    gateway: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    #: None: paid without signing in (/pay/); then the receipt's contact is kept below (a
    #: refund's receipt goes there too), as a signed-in payer's is read from their profile.
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    receipt_email: Mapped[Optional[str]] = mapped_column(String(254))
    receipt_phone: Mapped[Optional[str]] = mapped_column(String(16))
    confirmation_url: Mapped[Optional[str]] = mapped_column(Text)
    gateway_status: Mapped[Optional[str]] = mapped_column(String(32))
    gateway_amount: Mapped[Optional[Decimal]] = mapped_column(Money)
    created_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    paid_at: Mapped[Optional[dt.datetime]] = Timestamp()
    updated_at: Mapped[dt.datetime] = Timestamp(default=utcnow, onupdate=utcnow)


class SavedPaymentMethod(Model):
    """A card a gateway keeps for a resident's autopay: only the gateway's token (needed to
    charge it; it is not the card) and what may be shown of the card. Removing the card
    deletes the row."""

    __tablename__ = "saved_payment_method"
    __table_args__ = (UniqueConstraint("gateway", "token", name="uq_saved_method_token"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"),
                                         index=True)
    gateway: Mapped[str] = mapped_column(String(32))
    token: Mapped[str] = mapped_column(String(128))
    card_last4: Mapped[Optional[str]] = mapped_column(String(4))
    expiry_month: Mapped[Optional[int]] = mapped_column(SmallInteger)
    expiry_year: Mapped[Optional[int]] = mapped_column(SmallInteger)
    card_type: Mapped[Optional[str]] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = Timestamp(default=utcnow)


class AutopayStatus(Choices):
    labels = {"pending": "Ждём первый платёж", "active": "Включён", "off": "Выключен"}


class AutopaySetting(Model):
    """Autopay of one account by one user: on ("active") once the first payment saved a card,
    with an optional cap; ``failures`` counts the charges refused in a row."""

    __tablename__ = "autopay_setting"
    __table_args__ = (
        UniqueConstraint("user_id", "account_id", name="uq_autopay_user_account"),
        CheckConstraint(AutopayStatus.check("status"), name="ck_autopay_status"),
        CheckConstraint("cap IS NULL OR cap > 0", name="ck_autopay_cap_positive"),
        Index("ix_autopay_setting_status_account", "status", "account_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("personal_account.id"), index=True)
    status: Mapped[str] = mapped_column(String(8), default="pending")
    cap: Mapped[Optional[Decimal]] = mapped_column(Money)
    method_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("saved_payment_method.id", ondelete="SET NULL"), index=True)
    #: The first payment, whose success saves the card and switches autopay on.
    setup_order_key: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    last_attempt_at: Mapped[Optional[dt.datetime]] = Timestamp()
    failures: Mapped[int] = mapped_column(SmallInteger, default=0)
    created_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    updated_at: Mapped[dt.datetime] = Timestamp(default=utcnow, onupdate=utcnow)

    method: Mapped[Optional[SavedPaymentMethod]] = relationship()
    account: Mapped[PersonalAccount] = relationship()


class AutopayCharge(Model):
    """One attempt of autopay to pay an invoice: unique per (invoice, attempt), so two runs
    (or two family members' settings) never charge a bill twice; its ``order_key`` is the
    PaymentOrder's (the payments that read «Автоплатёж»). The invoice has no foreign key: the
    table is partitioned by period on PostgreSQL."""

    __tablename__ = "autopay_charge"
    __table_args__ = (
        UniqueConstraint("invoice_id", "attempt", name="uq_autopay_charge_invoice_attempt"),
        CheckConstraint("amount > 0", name="ck_autopay_charge_amount_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    setting_id: Mapped[int] = mapped_column(ForeignKey("autopay_setting.id", ondelete="CASCADE"),
                                            index=True)
    invoice_id: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(SmallInteger)
    order_key: Mapped[str] = mapped_column(String(64), unique=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    #: The local day of the run that made it: a retry waits for a later day.
    run_on: Mapped[dt.date] = mapped_column(Date)
    #: charging (sent, outcome unknown) | succeeded | declined | failed (gateway down)
    status: Mapped[str] = mapped_column(String(12), default="charging")
    reason: Mapped[Optional[str]] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = Timestamp(default=utcnow)


# ---------------------------------------------------------------------------------------------
# Customer requests


class ContractApplication(Model):
    """An application (заявка) for a supply contract."""

    __tablename__ = "contract_application"
    __table_args__ = (
        CheckConstraint(ApplicationStatus.check("status"), name="ck_application_status"),
        CheckConstraint(ApplicationKind.check("kind"), name="ck_application_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    applicant_name: Mapped[str] = mapped_column(String(160))
    phone: Mapped[Optional[str]] = mapped_column(String(16))
    email: Mapped[Optional[str]] = mapped_column(String(320))
    address: Mapped[str] = mapped_column(String(255))
    comment: Mapped[Optional[str]] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    staff_comment: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    updated_at: Mapped[dt.datetime] = Timestamp(default=utcnow, onupdate=utcnow)

    kind: Mapped[str] = mapped_column(
        String(16), default="new_connection", server_default="new_connection"
    )
    cadastral_number: Mapped[Optional[str]] = mapped_column(String(40))
    # The personal account opened on acceptance (and bound to the applicant).
    account_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("personal_account.id"), index=True
    )

    user: Mapped[Optional[PortalUser]] = relationship()
    branch: Mapped[Branch] = relationship()
    account: Mapped[Optional[PersonalAccount]] = relationship()
    attachments: Mapped[list["ApplicationAttachment"]] = relationship(
        back_populates="application", order_by="ApplicationAttachment.id"
    )


class ApplicationAttachment(Model):
    """A scan attached to an application. The file lives on disk under a random name (never
    the client's); the row keeps what the portal detected: type, size and SHA-256."""

    __tablename__ = "application_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("contract_application.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    uploaded_at: Mapped[dt.datetime] = Timestamp(default=utcnow)

    application: Mapped[ContractApplication] = relationship(back_populates="attachments")


class Feedback(Model):
    """A message from a customer to the supplier (обращение), and the answer. A signed-in
    author is ``user``; a visitor of the public form leaves a name, an e-mail and maybe a
    phone instead (``author_*``). ``assigned_to`` is the staff member handling it."""

    __tablename__ = "feedback"
    __table_args__ = (CheckConstraint(FeedbackStatus.check("status"), name="ck_feedback_status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    author_name: Mapped[Optional[str]] = mapped_column(String(160))
    author_email: Mapped[Optional[str]] = mapped_column(String(320))
    author_phone: Mapped[Optional[str]] = mapped_column(String(16))
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    account_id: Mapped[Optional[int]] = mapped_column(ForeignKey("personal_account.id"))
    topic: Mapped[str] = mapped_column(String(160))
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    assigned_to_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    assigned_at: Mapped[Optional[dt.datetime]] = Timestamp()
    reply: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    answered_at: Mapped[Optional[dt.datetime]] = Timestamp()
    answered_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    #: When the reply reached the author's e-mail (or SMS); empty if the notice failed.
    reply_sent_at: Mapped[Optional[dt.datetime]] = Timestamp()
    closed_at: Mapped[Optional[dt.datetime]] = Timestamp()

    user: Mapped[Optional[PortalUser]] = relationship(foreign_keys=[user_id])
    branch: Mapped[Branch] = relationship()
    account: Mapped[Optional[PersonalAccount]] = relationship()
    assigned_to: Mapped[Optional[PortalUser]] = relationship(foreign_keys=[assigned_to_id])
    answered_by: Mapped[Optional[PortalUser]] = relationship(foreign_keys=[answered_by_id])

    @property
    def author(self) -> str:
        """Who wrote: the signed-in author's name, or the name the visitor left."""
        if self.user is not None:
            return self.user.get_full_name()
        return self.author_name or ""


class Mailing(Model):
    """A mailing (рассылка) composed by staff for a segment of residents with e-mail: a
    branch, a tariff group, a debt above an amount, no reading this period (each optional).
    ``body`` is a template with {{ name }}, {{ account }} and {{ debt }}; ``segment`` keeps
    the segment in words as it was when the mailing was queued."""

    __tablename__ = "mailing"
    __table_args__ = (CheckConstraint(MailingStatus.check("status"), name="ck_mailing_status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    branch_id: Mapped[Optional[int]] = mapped_column(ForeignKey("branch.id"), index=True)
    segment: Mapped[Optional[str]] = mapped_column(Text)
    tariff_group_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tariff_group.id"))
    min_debt: Mapped[Optional[Decimal]] = mapped_column(Money)
    without_reading: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false"))
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    created_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    queued_at: Mapped[Optional[dt.datetime]] = Timestamp()
    finished_at: Mapped[Optional[dt.datetime]] = Timestamp()

    branch: Mapped[Optional[Branch]] = relationship()
    tariff_group: Mapped[Optional[TariffGroup]] = relationship()
    created_by: Mapped[Optional[PortalUser]] = relationship()

    @property
    def percent(self) -> int:
        """How much of the mailing is behind us (sent or given up), for the progress bar."""
        if not self.total:
            return 100 if self.status == "done" else 0
        return min(100, int((self.sent + self.failed) * 100 / self.total))


class DeliveryStatus(Choices):
    labels = {
        "pending": "В очереди",
        "sending": "Отправляется",
        "sent": "Отправлено",
        "failed": "Ошибка",
        "bounced": "Отклонено сервером получателя",
        "canceled": "Отменено",
    }


class MailingRecipient(Model):
    """One recipient of a mailing and what became of their message. The row is claimed by a
    delivery task (``claimed_by``, the Celery task id) before sending and marked sent right
    after the server accepts it, so a retried task resends only what was never accepted."""

    __tablename__ = "mailing_recipient"
    __table_args__ = (
        CheckConstraint(DeliveryStatus.check("status"), name="ck_mailing_recipient_status"),
        UniqueConstraint("mailing_id", "user_id", name="uq_mailing_recipient_user"),
        Index("ix_mailing_recipient_due", "mailing_id", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    mailing_id: Mapped[int] = mapped_column(ForeignKey("mailing.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(160))
    account: Mapped[Optional[str]] = mapped_column(String(13))
    debt: Mapped[Decimal] = mapped_column(Money, default=ZERO)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    next_attempt_at: Mapped[Optional[dt.datetime]] = Timestamp()
    claimed_by: Mapped[Optional[str]] = mapped_column(String(64))
    error: Mapped[Optional[str]] = mapped_column(String(255))
    sent_at: Mapped[Optional[dt.datetime]] = Timestamp()

    mailing: Mapped[Mailing] = relationship()
    user: Mapped[PortalUser] = relationship()


class ReconciliationAct(Model):
    """A request for a reconciliation act (акт сверки) for a contract and a period."""

    __tablename__ = "reconciliation_act"
    __table_args__ = (
        CheckConstraint(ActStatus.check("status"), name="ck_act_status"),
        CheckConstraint("date_from <= date_to", name="ck_act_dates"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contract.id"), index=True)
    date_from: Mapped[dt.date] = mapped_column(Date)
    date_to: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="requested", index=True)
    requested_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    requested_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    ready_at: Mapped[Optional[dt.datetime]] = Timestamp()
    # Who in finance marked the act ready or rejected it, when, and the reason of a rejection
    # (shown to the organization).
    decided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"))
    decided_at: Mapped[Optional[dt.datetime]] = Timestamp()
    note: Mapped[Optional[str]] = mapped_column(String(500))

    organization: Mapped[Organization] = relationship()
    contract: Mapped[Contract] = relationship()
    requested_by: Mapped[Optional[PortalUser]] = relationship(foreign_keys=[requested_by_id])
    decided_by: Mapped[Optional[PortalUser]] = relationship(foreign_keys=[decided_by_id])


class NoticeTemplate(Model):
    """Staff's wording of an event notice (app.services.notice_wordings: a new bill, the
    reading window, a payment...): Jinja templates, rendered in a sandbox. The defaults live
    in app/templates/notices/wordings/; a row whose ``updated_at`` is empty was never edited
    and follows them."""

    __tablename__ = "notice_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(160))
    subject: Mapped[str] = mapped_column(String(200))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    # The short text sent by SMS; empty: the notice goes by e-mail only.
    sms_body: Mapped[Optional[str]] = mapped_column(String(400))
    updated_at: Mapped[Optional[dt.datetime]] = Timestamp()
    updated_by_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("ab_user.id", ondelete="SET NULL"))

    updated_by: Mapped[Optional[PortalUser]] = relationship()

    def __repr__(self) -> str:
        return self.title


class NoticeLog(Model):
    """What event notice went to whom about what (``object_key``: a period, an invoice, a
    payment...): the unique key keeps a scheduled job from telling anyone twice."""

    __tablename__ = "notice_log"
    __table_args__ = (
        UniqueConstraint("code", "user_id", "object_key", name="uq_notice_log_key"),
        Index("ix_notice_log_sent", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    code: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("ab_user.id", ondelete="CASCADE"), index=True)
    object_key: Mapped[str] = mapped_column(String(80))
    # The channels it reached ("email", "email,sms"); empty while being sent.
    channels: Mapped[Optional[str]] = mapped_column(String(32))
    sent_at: Mapped[dt.datetime] = Timestamp(default=utcnow)


class PushSubscription(Model):
    """One device (a browser's push subscription, RFC 8030) that gets a user's notices by Web
    Push. The endpoint is unique: a device signed into by another user is bound to them
    instead. The endpoint and keys are secrets of the device: never logged or shown."""

    __tablename__ = "push_subscription"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"),
                                         index=True)
    endpoint: Mapped[str] = mapped_column(String(1000), unique=True)
    # The browser's P-256 public key and authentication secret (RFC 8291), base64url.
    p256dh: Mapped[str] = mapped_column(String(100))
    auth: Mapped[str] = mapped_column(String(40))
    # What the person sees in the list of devices: «Chrome на Android».
    device: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    last_used_at: Mapped[Optional[dt.datetime]] = Timestamp()

    def __repr__(self) -> str:
        return self.device


# ---------------------------------------------------------------------------------------------
# Security records


class OtpChallenge(Model):
    """A one-time code sent to a phone or e-mail; only a keyed hash of the code is kept."""

    __tablename__ = "otp_challenge"
    __table_args__ = (Index("ix_otp_destination_created", "destination_hash", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    destination_hash: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"))
    ip: Mapped[Optional[str]] = mapped_column(String(45))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    created_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    expires_at: Mapped[dt.datetime] = Timestamp()
    consumed_at: Mapped[Optional[dt.datetime]] = Timestamp()


class JobStatus(Choices):
    labels = {"queued": "В очереди", "running": "Выполняется", "done": "Готово",
              "failed": "Ошибка"}


class BackgroundJob(Model):
    """Long work started from the back office (a billing run, a mailing): its progress as
    ``done`` of ``total`` steps, for the admin view's progress figure."""

    __tablename__ = "background_job"
    __table_args__ = (CheckConstraint(JobStatus.check("status"), name="ck_job_status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(160))
    params: Mapped[Optional[str]] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[Optional[str]] = mapped_column(String(500))
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    created_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    started_at: Mapped[Optional[dt.datetime]] = Timestamp()
    finished_at: Mapped[Optional[dt.datetime]] = Timestamp()

    created_by: Mapped[Optional[PortalUser]] = relationship()

    @property
    def percent(self) -> int:
        if self.status == "done":
            return 100
        return int(self.done * 100 / self.total) if self.total else 0


class AuditEvent(Model):
    """An append-only journal of security events and access to personal data."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_object", "object_type", "object_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ab_user.id"), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[Optional[str]] = mapped_column(String(64))
    object_id: Mapped[Optional[str]] = mapped_column(String(64))
    ip: Mapped[Optional[str]] = mapped_column(String(45))
    details: Mapped[Optional[str]] = mapped_column(Text)

    actor: Mapped[Optional[PortalUser]] = relationship()


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _audit_is_append_only(mapper, connection, target):
    raise PermissionError("Журнал аудита только пополняется: изменять и удалять записи нельзя")


class SessionKind(Choices):
    labels = {"web": "Браузер", "api": "Мобильное приложение"}


class UserSession(Model):
    """One sign-in: a browser's session with its «Запомнить меня» cookie, or the mobile app's
    tokens. The secret token lives only in the cookie or the tokens; the row keeps its SHA-256,
    so a copy of the table opens nothing. A row ended (sign-out, «Выйти на всех устройствах»,
    a new password) or past ``expires_at`` signs no one in (app.services.sessions)."""

    __tablename__ = "user_session"
    __table_args__ = (CheckConstraint(SessionKind.check("kind"), name="ck_user_session_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"),
                                         index=True)
    kind: Mapped[str] = mapped_column(String(8))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # «Запомнить меня»: the session lives its fixed term; without it, it ends when idle.
    remember: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # What the person sees in the list of sign-ins: «Chrome на Android».
    device: Mapped[str] = mapped_column(String(80))
    ip: Mapped[Optional[str]] = mapped_column(String(45))
    created_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    last_used_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    expires_at: Mapped[dt.datetime] = Timestamp(index=True)
    ended_at: Mapped[Optional[dt.datetime]] = Timestamp()

    def __repr__(self) -> str:
        return self.device


# ---------------------------------------------------------------------------------------------
# Messenger bots (plugins such as plugins/telegram_bot)


class MessengerLink(Model):
    """A resident's cabinet linked to a chat with the portal's bot in a messenger: one chat per
    user and messenger, one cabinet per chat. The bot shows only the user's own accounts
    (app.services.messenger_links). ``notify_<topic>`` says which notices (NoticeTopic) also go
    to the chat; ``state`` is the conversation in progress (awaiting a reading for a meter),
    kept here rather than in the chat, and void after ``state_expires_at``."""

    __tablename__ = "messenger_link"
    __table_args__ = (
        UniqueConstraint("messenger", "chat_id", name="uq_messenger_link_chat"),
        UniqueConstraint("user_id", "messenger", name="uq_messenger_link_user"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"))
    messenger: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(32))
    linked_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    notify_bills: Mapped[bool] = mapped_column(Boolean, default=True,
                                               server_default=text("true"))
    notify_readings: Mapped[bool] = mapped_column(Boolean, default=True,
                                                  server_default=text("true"))
    notify_payments: Mapped[bool] = mapped_column(Boolean, default=True,
                                                  server_default=text("true"))
    state: Mapped[Optional[str]] = mapped_column(Text)
    state_expires_at: Mapped[Optional[dt.datetime]] = Timestamp()

    user: Mapped[PortalUser] = relationship()


class MessengerLinkToken(Model):
    """A one-time link that ties a chat to the cabinet that issued it (the bot's
    ``/start <token>``): only the token's SHA-256 is kept, it expires, and it is spent by its
    first use."""

    __tablename__ = "messenger_link_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"),
                                         index=True)
    messenger: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = Timestamp(default=utcnow)
    expires_at: Mapped[dt.datetime] = Timestamp()
    used_at: Mapped[Optional[dt.datetime]] = Timestamp()
