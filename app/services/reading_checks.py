"""Whether a meter reading is plausible: the one rule the cabinet, the guest form, the app's
queue, the API and the back office apply before a reading may reach billing.

A reading that passes the refusals of app.services.readings (a number, whole, within the
window, not below the previous one unless the meter rolled over) is still doubtful when
- a value has more digits than the meter's display (``Meter.digit_capacity``): a typo, or a
  meter recorded with the wrong capacity; staff tell which;
- its consumption exceeds READING_SPIKE_FACTOR times the meter's average month (times the
  months since the previous reading, so that a skipped month is not a spike);
- or it exceeds what the connection can draw since the previous reading: the connected power
  (READING_HOUSEHOLD_POWER_KW, or READING_ORGANIZATION_POWER_KW for an organization's
  contract: no table records a premises' own power yet) x 24 h x the days from the first day
  of the previous reading's month to the day of this one (an upper bound of the time between
  them, so an honest reading is never above it).

A doubtful reading is saved with the status "flagged" («На проверке»): billing reads accepted
readings only, so it waits for staff to accept it (app.services.readings.review)."""
from __future__ import annotations

import datetime as dt
from calendar import monthrange
from dataclasses import dataclass
from decimal import Decimal

from app.models import Meter
from app.services.russian import energy, number, plural

#: Statuses of a reading (models.ReadingStatus): billed, held for staff, refused by staff.
ACCEPTED, HELD, REJECTED = "accepted", "flagged", "rejected"
#: No meter has more digits than this (models.Meter, ck_meter_digits): a longer value is
#: refused outright, as no display could show it (and the column could not hold it).
MAX_DIGITS = 9
#: Reading.review_note's length: the reasons that fit are kept whole.
NOTE_LENGTH = 255
HOURS_A_DAY = 24


@dataclass(frozen=True)
class Limits:
    """The configurable parts of the rule (config.py READING_SPIKE_FACTOR, READING_*_POWER_KW)."""

    spike_factor: Decimal
    household_kw: Decimal
    organization_kw: Decimal

    @classmethod
    def from_config(cls, config) -> Limits:
        return cls(Decimal(config["READING_SPIKE_FACTOR"]),
                   Decimal(config["READING_HOUSEHOLD_POWER_KW"]),
                   Decimal(config["READING_ORGANIZATION_POWER_KW"]))

    def power_kw(self, meter: Meter) -> Decimal:
        """The connected power of the meter's account: an organization's contract or not."""
        contract = meter.account.contract
        organization = contract is not None and contract.organization_id is not None
        return self.organization_kw if organization else self.household_kw


@dataclass(frozen=True)
class Doubt:
    """Why a reading is held for review: ``kind`` (capacity, spike, ceiling) and the reason in
    Russian, for the person, the app and the staff alike."""

    kind: str
    text: str


def reading_day(period: dt.date, today: dt.date) -> dt.date:
    """The latest day a reading of ``period`` can have been taken: today, or the last day of
    a past period's month (staff entering an old reading)."""
    last = period.replace(day=monthrange(period.year, period.month)[1])
    return min(today, last)


def months_between(earlier: dt.date, later: dt.date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def doubts(meter: Meter, labels: dict[str, str], values: dict[str, Decimal],
           total: Decimal, *, period: dt.date, previous_period: dt.date | None,
           taken_on: dt.date, average: Decimal | None, limits: Limits) -> list[Doubt]:
    """Every reason to hold the reading; none for a plausible one. A first reading (no
    previous) has no consumption, so only the capacity is checked."""
    found = []
    capacity = Decimal(10) ** meter.digit_capacity
    too_long = [labels[zone] for zone, value in values.items() if value >= capacity]
    if too_long:
        digits = meter.digit_capacity
        where = "показании" if len(labels) == 1 else f"показаниях {', '.join(too_long)}"
        found.append(Doubt("capacity", (
            f"На табло счётчика {digits} {plural(digits, 'разряд', 'разряда', 'разрядов')}, "
            f"а в {where} больше цифр. Возможно, введены цифры после запятой.")))
    if previous_period is None:
        return found
    months = max(1, months_between(previous_period, period))
    if average and total > limits.spike_factor * average * months:
        span = "" if months == 1 else f" за {months} {plural(months, 'месяц', 'месяца', 'месяцев')}"
        found.append(Doubt("spike", (
            f"Расход {_kwh(total)}{span} более чем в {_times(limits.spike_factor)} выше "
            f"обычного: в среднем {_kwh(average)} в месяц.")))
    days = max(1, (taken_on - previous_period).days + 1)
    power = limits.power_kw(meter)
    ceiling = power * HOURS_A_DAY * days
    if total > ceiling:
        found.append(Doubt("ceiling", (
            f"Расход {_kwh(total)} больше возможного при мощности {_number(power)} кВт "
            f"за {days} {plural(days, 'день', 'дня', 'дней')}: не более {_kwh(ceiling)}.")))
    return found


def review_note(found: list[Doubt]) -> str:
    """The reasons as one note for Reading.review_note: whole reasons while they fit."""
    kept: list[str] = []
    for doubt in found:
        if len(" ".join([*kept, doubt.text])) <= NOTE_LENGTH:
            kept.append(doubt.text)
    return " ".join(kept)


def _kwh(value: Decimal) -> str:
    return energy(Decimal(value).quantize(Decimal(1)))


def _number(value: Decimal) -> str:
    places = max(0, -Decimal(value).normalize().as_tuple().exponent)
    return number(Decimal(value), places)


def _times(factor: Decimal) -> str:
    """«5 раз», «2 раза», «1,5 раза»."""
    if factor != factor.to_integral_value():
        return f"{_number(factor)} раза"
    return f"{_number(factor)} {plural(int(factor), 'раз', 'раза', 'раз')}"
