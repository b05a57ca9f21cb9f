"""Meter readings: the rules of acceptance (Правила 354 and the supplier's settings), written
once and used by the cabinet, the API and the staff views alike.

- Readings are taken within the monthly window (default the 15th to the 25th) and count for
  the current month's period.
- Values are whole kWh, not negative, one per register of the meter (T1; T1/T2; T1/T2/T3).
- A value lower than the last accepted one is refused, unless it is a rollover of the meter's
  digit capacity, which the user must confirm.
- An implausible reading (app.services.reading_checks: longer than the meter's display, far
  above its average month, or above what the connection can draw) needs confirmation and is
  saved «на проверке»: it is not billed until staff accept it.
- Submitting again within a period replaces the earlier reading until the period is billed.
- A reading of a meter past its verification date is kept, with a note that it is not billed
  (app.services.verification).
"""
from __future__ import annotations

import datetime as dt
from calendar import monthrange
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, inspect, or_, select, update
from sqlalchemy.orm import Session

from app.models import Invoice, Meter, Reading
from app.services import audit, verification
from app.services.periods import add_months
from app.services.reading_checks import HELD, MAX_DIGITS, Doubt, Limits, doubts, reading_day
from app.services.reading_checks import review_note as held_note
from app.services.scoping import branch_condition

ZONES = ("t1", "t2", "t3")
ZONE_LABELS = {
    1: {"t1": "Показание"},
    2: {"t1": "День (T1)", "t2": "Ночь (T2)"},
    3: {"t1": "Пик (T1)", "t2": "Ночь (T2)", "t3": "Полупик (T3)"},
}
AVERAGE_MONTHS = 6
ROLLOVER_NOTE = "Переход через ноль счётчика"


class ReadingError(Exception):
    """A reading that cannot be accepted as given; the text is safe to show to the user."""


@dataclass(frozen=True)
class Window:
    """The days of the month readings are taken on (READING_WINDOW_FIRST_DAY..LAST_DAY)."""

    first_day: int
    last_day: int

    def is_open(self, today: dt.date) -> bool:
        return self.first_day <= today.day <= self.last_day

    def next_opening(self, today: dt.date) -> dt.date:
        """The first day of the window ``today`` is in or before, else of next month's (a
        short month opens on its last day when the window starts past it)."""
        month = today.replace(day=1)
        if today.day > self.last_day:
            month = add_months(month, 1)
        return month.replace(day=min(self.first_day, monthrange(month.year, month.month)[1]))

    @property
    def days(self) -> str:
        return f"с {self.first_day} по {self.last_day} число месяца"

    def closed_message(self, today: dt.date) -> str:
        return (f"Показания принимаются {self.days}. "
                f"Следующий приём начнётся {self.next_opening(today):%d.%m.%Y}.")

    def period_for(self, today: dt.date) -> dt.date:
        if not self.is_open(today):
            raise ReadingError(self.closed_message(today))
        return today.replace(day=1)


@dataclass
class Assessment:
    """What a submitted reading means, before it is saved: shown to the user to confirm."""

    meter_id: int
    period: dt.date
    values: dict[str, Decimal]
    previous: dict[str, Decimal | None]
    previous_period: dt.date | None
    consumption: dict[str, Decimal]
    rollover_zones: list[str] = field(default_factory=list)
    doubts: list[Doubt] = field(default_factory=list)
    window: Window | None = None
    #: The meter's verification has expired: the reading is kept but not billed (why, in words).
    verification_note: str | None = None

    @property
    def total(self) -> Decimal:
        return sum(self.consumption.values(), Decimal(0))

    @property
    def held(self) -> bool:
        """Implausible: saved «на проверке», billed only once staff accept it."""
        return bool(self.doubts)

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.rollover_zones) or self.held


def parse_value(raw: str | None, label: str) -> Decimal:
    """A whole, non-negative number of kWh, as typed by a person."""
    text = (raw or "").strip().replace(" ", "").replace("\u00a0", "")
    if not text:
        raise ReadingError(f"{label}: введите показание.")
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise ReadingError(f"{label}: показание должно быть числом, например 12345.") from None
    if value < 0:
        raise ReadingError(f"{label}: показание не может быть отрицательным.")
    if value != value.to_integral_value():
        raise ReadingError(f"{label}: введите целое число киловатт-часов, без дробной части.")
    return value


def last_accepted(session: Session, meter_id: int, before: dt.date) -> Reading | None:
    return session.execute(
        select(Reading)
        .where(Reading.meter_id == meter_id, Reading.period < before,
               Reading.status == "accepted")
        .order_by(Reading.period.desc(), Reading.submitted_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def average_monthly(session: Session, meter_id: int, before: dt.date) -> Decimal | None:
    """Average monthly consumption over the last accepted readings (up to AVERAGE_MONTHS)."""
    rows = session.execute(
        select(Reading.period, Reading.t1, Reading.t2, Reading.t3)
        .where(Reading.meter_id == meter_id, Reading.period < before,
               Reading.status == "accepted")
        .order_by(Reading.period.desc())
        .limit(AVERAGE_MONTHS + 1)
    ).all()
    if len(rows) < 2:
        return None
    newest, oldest = rows[0], rows[-1]
    months = (newest.period.year - oldest.period.year) * 12 + newest.period.month \
        - oldest.period.month
    used = sum((getattr(newest, z) or 0) - (getattr(oldest, z) or 0) for z in ZONES)
    return Decimal(used) / months if months > 0 and used >= 0 else None


def assess(session: Session, meter: Meter, raw_values: dict[str, str], today: dt.date,
           rules: Rules, *, period: dt.date | None = None) -> Assessment:
    """Check a submission against the rules and work out its consumption per register. A
    ``period`` given (staff entering a month's reading in the back office) skips the window."""
    window = None if period is not None else rules.window
    if period is None:
        period = rules.window.period_for(today)
    labels = ZONE_LABELS[meter.zones]
    values = {zone: parse_value(raw_values.get(zone), label) for zone, label in labels.items()}
    for zone, value in values.items():
        if value >= Decimal(10) ** MAX_DIGITS:
            raise ReadingError(f"{labels[zone]}: в показании не может быть больше "
                               f"{MAX_DIGITS} цифр.")
    capacity = Decimal(10) ** meter.digit_capacity
    previous_reading = last_accepted(session, meter.id, period)
    previous = {z: getattr(previous_reading, z) if previous_reading else None for z in values}
    consumption, rollovers = {}, []
    for zone, value in values.items():
        before = previous[zone]
        if before is None:
            consumption[zone] = Decimal(0)
        elif value >= before:
            consumption[zone] = value - before
        else:
            consumption[zone] = value + capacity - before
            rollovers.append(zone)
    if rollovers and max(consumption[z] for z in rollovers) > capacity / 2:
        zone = rollovers[0]
        raise ReadingError(f"{labels[zone]}: показание меньше предыдущего "
                           f"({previous[zone]:.0f}). Проверьте цифры.")
    result = Assessment(meter.id, period, values, previous,
                        previous_reading.period if previous_reading else None, consumption,
                        rollovers, window=window)
    taken_on = reading_day(period, today)
    result.doubts = doubts(meter, labels, values, result.total, period=period,
                           previous_period=result.previous_period, taken_on=taken_on,
                           average=average_monthly(session, meter.id, period),
                           limits=rules.limits)
    result.verification_note = verification.reading_note(meter, taken_on)
    return result


def held_status(assessment: Assessment) -> tuple[str, str | None]:
    """The status and review note a reading is saved with: held with its reasons, or
    accepted (noting a rollover)."""
    if assessment.held:
        return HELD, held_note(assessment.doubts)
    return "accepted", ROLLOVER_NOTE if assessment.rollover_zones else None


def values_changed(reading: Reading) -> bool:
    """A new reading, or one an edit gives other values (read before any flush)."""
    state = inspect(reading)
    if not state.persistent:
        return True
    for zone in ZONES:
        added, _unchanged, deleted = state.attrs[zone].history
        if added and (not deleted or added[0] != deleted[0]):
            return True
    return False


def billed(session: Session, account_id: int, period: dt.date) -> bool:
    return session.execute(
        select(Invoice.id).where(Invoice.account_id == account_id, Invoice.period == period)
    ).first() is not None


def submit(session: Session, meter: Meter, assessment: Assessment, *, confirmed: bool,
           source: str, user_id: int | None, ip: str | None) -> Reading:
    """Save an assessed reading; a rollover or an implausible value needs ``confirmed``. An
    implausible one is saved «на проверке» ("flagged"), which billing skips until staff
    accept it. An earlier reading of the same period and source is replaced until the period
    is billed."""
    if assessment.needs_confirmation and not confirmed:
        raise ReadingError("Подтвердите показание: оно требует проверки.")
    if billed(session, meter.account_id, assessment.period):
        when = f" Передайте его {assessment.window.days}." if assessment.window else ""
        raise ReadingError("Счёт за этот месяц уже выставлен: показание учтём в следующем "
                           f"месяце.{when}")
    reading = session.execute(
        select(Reading).where(Reading.meter_id == meter.id,
                              Reading.period == assessment.period, Reading.source == source)
    ).scalar_one_or_none()
    replaced = reading is not None
    if reading is None:
        reading = Reading(meter_id=meter.id, period=assessment.period, source=source)
        session.add(reading)
    for zone in ZONES:
        setattr(reading, zone, assessment.values.get(zone))
    reading.status, reading.review_note = held_status(assessment)
    reading.submitted_by_id = user_id
    reading.submitted_at = dt.datetime.now(dt.timezone.utc)
    session.commit()
    audit.record(session, "reading.replaced" if replaced else "reading.submitted",
                 actor_id=user_id, object_type="meter", object_id=meter.id, ip=ip,
                 details={"period": assessment.period.isoformat(), "status": reading.status})
    return reading


@dataclass(frozen=True)
class Rules:
    """The configurable parts of the rules (see config.py READING_*)."""

    window: Window
    limits: Limits

    @classmethod
    def from_config(cls, config) -> Rules:
        return cls(Window(config["READING_WINDOW_FIRST_DAY"], config["READING_WINDOW_LAST_DAY"]),
                   Limits.from_config(config))


@dataclass
class MeterEntry:
    """One meter on the readings form: its registers, its last accepted reading before this
    month, and this month's reading already passed (accepted, «на проверке» or rejected)."""

    meter: Meter
    labels: dict[str, str]
    last: Reading | None
    current: Reading | None = None


def form_entries(session: Session, meters: list[Meter], today: dt.date) -> list[MeterEntry]:
    """Every active meter with its last accepted reading before this month and this month's
    latest reading: one query."""
    period = today.replace(day=1)
    ids = [m.id for m in meters]
    latest = (select(Reading.meter_id, func.max(Reading.period).label("period"))
              .where(Reading.meter_id.in_(ids), Reading.period < period,
                     Reading.status == "accepted")
              .group_by(Reading.meter_id).subquery())
    rows = session.execute(
        select(Reading).outerjoin(latest, (Reading.meter_id == latest.c.meter_id)
                                  & (Reading.period == latest.c.period))
        .where(Reading.meter_id.in_(ids),
               or_(Reading.period == period,
                   (Reading.status == "accepted") & latest.c.period.is_not(None)))
        .order_by(Reading.submitted_at)).scalars() if ids else []
    last, current = {}, {}
    for reading in rows:
        (current if reading.period == period else last)[reading.meter_id] = reading
    return [MeterEntry(m, ZONE_LABELS[m.zones], last.get(m.id), current.get(m.id))
            for m in meters]


def assess_meters(session: Session, meters: list[Meter], raw: dict[int, dict[str, str]],
                  today: dt.date, rules: Rules) -> list[Assessment]:
    """Assess a submission for several meters; a refusal names the meter it concerns."""
    results = []
    for meter in meters:
        try:
            results.append(assess(session, meter, raw.get(meter.id, {}), today, rules))
        except ReadingError as error:
            if len(meters) == 1 or str(error).startswith("Показания принимаются"):
                raise
            raise ReadingError(f"Счётчик № {meter.serial}. {error}") from None
    return results


def submit_all(session: Session, meters: list[Meter], assessments: list[Assessment], *,
               confirmed: bool, source: str, user_id: int | None,
               ip: str | None) -> list[Reading]:
    """Save the assessed readings of a form; all need confirming before any is saved."""
    if any(a.needs_confirmation for a in assessments) and not confirmed:
        raise ReadingError("Подтвердите показания: они требуют проверки.")
    by_id = {m.id: m for m in meters}
    return [submit(session, by_id[a.meter_id], a, confirmed=confirmed, source=source,
                   user_id=user_id, ip=ip) for a in assessments]


def review(session: Session, reading_ids: list[int], status: str, reviewer_id: int | None,
           branch_id: int | None, ip: str | None = None) -> int:
    """Staff accept or reject flagged readings, in one statement; rows outside the reviewer's
    branch (when limited to one) and rows not flagged are left alone. Returns how many."""
    if status not in ("accepted", "rejected"):
        raise ValueError(status)
    chosen = select(Reading.id).where(Reading.id.in_(reading_ids), Reading.status == "flagged")
    if branch_id is not None:
        chosen = chosen.where(branch_condition(Reading, branch_id))
    ids = list(session.execute(chosen).scalars())
    if ids:
        note = "Принято после проверки" if status == "accepted" else "Отклонено после проверки"
        session.execute(update(Reading).where(Reading.id.in_(ids))
                        .values(status=status, review_note=note))
        audit.record(session, f"reading.{status}", actor_id=reviewer_id, object_type="reading",
                     ip=ip, details={"ids": ids}, commit=False)
    session.commit()
    return len(ids)
