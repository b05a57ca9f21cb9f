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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

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
