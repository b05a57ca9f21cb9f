"""Meter verification (поверка), Правила 354 п. 59-60, 81(12). A meter past its verification
date is not trusted: its readings are kept for the record, but the month is billed by the
average, then by the norm. So residents are warned METER_VERIFICATION_WARN_DAYS ahead — on the
cabinet's overview, on the readings form and by a notice — and offered the application
«Поверка или замена прибора учёта».

The rule is written here once, for meters already loaded (``overdue``, ``warnings``) and in
SQL (``overdue_clause``, ``due_clause``): the date itself still counts, the meter is verified
«до» it."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import String, cast, literal, select
from sqlalchemy.orm import Session

from app.models import AccountBinding, Meter, PersonalAccount, PortalUser, Premises

#: The application kind (models.ApplicationKind) the warnings link to.
APPLICATION_KIND = "verification"
#: The notice's code (notice_wordings.NOTICES) and its journal key per meter and verification date.
NOTICE_CODE = "meter_verification_due"
DEFAULT_WARN_DAYS = 60


class MeterLike(Protocol):
    id: int
    serial: str
    verification_due: dt.date | None


def warn_days(config: Mapping[str, Any]) -> int:
    return int(config.get("METER_VERIFICATION_WARN_DAYS", DEFAULT_WARN_DAYS))


def overdue(due: dt.date | None, today: dt.date) -> bool:
    """Past the verification date: its readings no longer count for billing."""
    return due is not None and due < today


def overdue_clause(column, today: dt.date):
    """SQL: ``overdue`` of a date column."""
    return column.is_not(None) & (column < today)


def due_clause(column, today: dt.date, days: int):
    """SQL: the verification date falls within ``days`` from ``today``, or has passed."""
    return column.is_not(None) & (column <= today + dt.timedelta(days=days))


@dataclass(frozen=True)
class Due:
    """A meter whose verification date is near or past, with what the resident reads."""

    meter_id: int
    serial: str
    due: dt.date
    overdue: bool

    @property
    def text(self) -> str:
        if self.overdue:
            return (f"Срок поверки счётчика №\u00a0{self.serial} истёк {self.due:%d.%m.%Y}: "
                    "показания этого счётчика не принимаются к расчёту, начисления идут по "
                    "среднему, затем по нормативу.")
        return (f"Срок поверки счётчика №\u00a0{self.serial} — до {self.due:%d.%m.%Y}. Подайте "
                "заявку на поверку или замену, чтобы начисления шли по показаниям.")


def warnings(meters: Iterable[MeterLike], today: dt.date, days: int) -> list[Due]:
    """The meters due within ``days`` or overdue, the earliest first."""
    horizon = today + dt.timedelta(days=days)
    found = [Due(m.id, m.serial, m.verification_due, overdue(m.verification_due, today))
             for m in meters if m.verification_due is not None and m.verification_due <= horizon]
    return sorted(found, key=lambda d: (d.due, d.serial))


def reading_note(meter: MeterLike, on: dt.date) -> str | None:
    """What a reading of a meter overdue on ``on`` means: kept, but not billed."""
    if not overdue(meter.verification_due, on):
        return None
    return (f"Срок поверки счётчика №\u00a0{meter.serial} истёк "
            f"{meter.verification_due:%d.%m.%Y}: его показания сохраняются, но к расчёту не "
            "принимаются — начисления идут по среднему, затем по нормативу, пока счётчик не "
            "поверят или не заменят.")


def application_path(meter_id: int) -> str:
    """The application form (ApplicationView.new) for this meter, for links outside a request."""
    return f"/cabinet/applications/new?kind={APPLICATION_KIND}&meter={meter_id}"


# ---------------------------------------------------------------------------------------------
# The notice METER_VERIFICATION_WARN_DAYS ahead


def notice_key(meter_id: int, due: dt.date) -> str:
    """Once per meter and verification date: a new date (after a verification) warns again."""
    return f"meter:{meter_id}:{due.isoformat()}"


def meter_verification_due(session: Session, today: dt.date,
                           config: Mapping[str, Any] | None = None) -> int:
    """Tell the residents bound to an account whose active meter's verification date is within
    METER_VERIFICATION_WARN_DAYS (and not yet past) that it is time to apply: one notice per
    user listing their meters, each meter once per date. One query finds them all."""
    from app.services import notices
    from app.services.accounts import open_to_residents

    config = notices.app_config(config)
    key = (literal("meter:") + cast(Meter.id, String) + literal(":")
           + cast(Meter.verification_due, String))
    rows = session.execute(
        select(PortalUser, PersonalAccount, Premises, Meter)
        .join(AccountBinding, AccountBinding.user_id == PortalUser.id)
        .join(PersonalAccount, PersonalAccount.id == AccountBinding.account_id)
        .join(Premises, Premises.id == PersonalAccount.premises_id)
        .join(Meter, Meter.account_id == PersonalAccount.id)
        .where(PersonalAccount.status == "active", open_to_residents(), Meter.active.is_(True),
               due_clause(Meter.verification_due, today, warn_days(config)),
               ~overdue_clause(Meter.verification_due, today),
               notices.wants_any("readings"), notices.not_told(NOTICE_CODE, key))
        .order_by(PortalUser.id, Meter.verification_due, Meter.serial)).all()
    base = notices.portal_url(config)
    users: dict[int, PortalUser] = {}
    meters: dict[int, list[tuple[PersonalAccount, Premises, Meter]]] = defaultdict(list)
    for user, account, premises, meter in rows:
        users[user.id] = user
        meters[user.id].append((account, premises, meter))
    batch = []
    for user_id, user in users.items():
        own = [{"serial": meter.serial, "account": account.number, "address": premises.address,
                "due": f"{meter.verification_due:%d.%m.%Y}",
                "link": base + application_path(meter.id)} for account, premises, meter in
               meters[user_id]]
        batch.append(notices.Outgoing(
            notices.topic_recipient(user, "readings"),
            [notice_key(meter.id, meter.verification_due) for _, _, meter in meters[user_id]], {
                "meters": own, "several": len(own) > 1, "due": own[0]["due"],
                "serials": ", № ".join(m["serial"] for m in own),
                "link": own[0]["link"] if len(own) == 1 else f"{base}/cabinet/"}))
    return notices.deliver(session, NOTICE_CODE, batch, config)
