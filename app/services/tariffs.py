"""Tariff arithmetic: the rates and consumption ranges in force, and the pricing of a month's
consumption (ranges apply to the total of all registers). Used by the billing run, by the
estimate shown before a reading is confirmed, and by the demo data."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from itertools import accumulate

from sqlalchemy import Date, bindparam, literal, select, union_all
from sqlalchemy.orm import Session

from app import models as m

KWH = Decimal("0.001")
KOPECK = Decimal("0.01")
ZERO = Decimal("0")
HEATING_MONTHS = frozenset({10, 11, 12, 1, 2, 3, 4})


def season_of(period: dt.date) -> str:
    """The season of a month for consumption ranges: heating October-April, else summer."""
    return "heating" if period.month in HEATING_MONTHS else "summer"





@dataclass(frozen=True)
class ChargeLine:
    """kWh of one register within one consumption range, at the range's rate."""

    zone: str
    range_no: int
    kwh: Decimal
    rate: Decimal
    amount: Decimal


def split_by_ranges(kwh: Decimal, limits: Sequence[Decimal | None]) -> list[Decimal]:
    """Split a month's consumption over consecutive ranges: up to the first upper limit in
    range 1, the excess up to the second limit in range 2, and so on. ``limits`` are the
    cumulative upper limits in range order; None (or running out of limits) means no limit."""
    if kwh < 0:
        raise ValueError("consumption cannot be negative")
    parts, lower = [], ZERO
    for upper in limits:
        if upper is None or kwh <= upper:
            parts.append(kwh - lower)
            return parts
        parts.append(upper - lower)
        lower = upper
    parts.append(kwh - lower)
    return parts


def price_consumption(
    kwh_by_zone: Mapping[str, Decimal],
    limits: Sequence[Decimal | None],
    rates: Mapping[tuple[str, int], Decimal],
) -> list[ChargeLine]:
    """Charge lines of one month: ranges apply to the total of all registers, and each range's
    kWh is shared between the registers in proportion to their consumption.

    kWh are rounded to 0.001 so that the lines of a register add up to its consumption and the
    lines of a range to the range's part; each line's amount is kWh x rate rounded half-up to
    kopecks, once."""
    zones = sorted(kwh_by_zone)
    total = sum((kwh_by_zone[z] for z in zones), ZERO)
    if total <= 0:
        return []
    parts = split_by_ranges(total, limits)
    if len(parts) == 1:  # all within range 1: nothing to share out
        return [ChargeLine(z, 1, kwh_by_zone[z], rates[(z, 1)],
                           (kwh_by_zone[z] * rates[(z, 1)]).quantize(KOPECK, ROUND_HALF_UP))
                for z in zones if kwh_by_zone[z]]
    cum_zone = list(accumulate(kwh_by_zone[z] for z in zones))
    cum_part = list(accumulate(parts))

    def corner(i: int, j: int) -> Decimal:
        """kWh of the first i registers within the first j ranges."""
        if i == 0 or j == 0:
            return ZERO
        if i == len(zones):
            return cum_part[j - 1]
        if j == len(parts):
            return cum_zone[i - 1]
        return (cum_zone[i - 1] * cum_part[j - 1] / total).quantize(KWH, ROUND_HALF_UP)

    lines = []
    for j in range(1, len(parts) + 1):
        for i, zone in enumerate(zones, start=1):
            kwh = corner(i, j) - corner(i - 1, j) - corner(i, j - 1) + corner(i - 1, j - 1)
            if kwh:
                rate = rates[(zone, j)]
                amount = (kwh * rate).quantize(KOPECK, ROUND_HALF_UP)
                lines.append(ChargeLine(zone, j, kwh, rate, amount))
    return lines


@dataclass
class TariffBook:
    """Rates and range limits in force on one date, read from the Tariff and ConsumptionRange
    tables: ``rates[(group_id, zones)][(zone, range_no)]``, ``limits[(group_id, season)]``."""

    on: dt.date
    rates: dict[tuple[int, int], dict[tuple[str, int], Decimal]] = field(default_factory=dict)
    limits: dict[tuple[int, str], tuple[Decimal | None, ...]] = field(default_factory=dict)

    def range_limits(self, group_id: int, period: dt.date, large_family: bool = False):
        """Large families pay range 1 for all their consumption."""
        return (None,) if large_family else self.limits[(group_id, season_of(period))]


@cache
def _tariff_book_rows():
    """Rates and range limits in force on the ``on`` parameter, as rows of one UNION ALL;
    built once (building it costs more than running it)."""
    on = bindparam("on", type_=Date)

    def in_force(model):
        return (model.effective_from <= on) & (
            (model.effective_to.is_(None)) | (model.effective_to > on))

    tariff, limit = m.Tariff, m.ConsumptionRange
    rates = select(literal(0).label("is_limit"), tariff.tariff_group_id, tariff.zones,
                   tariff.zone, literal("").label("season"), tariff.range_no,
                   tariff.rate.label("value")).where(in_force(tariff))
    limits = select(literal(1), limit.tariff_group_id, literal(0), literal(""), limit.season,
                    limit.range_no, limit.upper_kwh).where(in_force(limit))
    return union_all(rates, limits).order_by("is_limit", "range_no")


def load_tariff_book(session: Session, on: dt.date) -> TariffBook:
    """The rates and the range limits in force on ``on``, in one round trip (the cabinet's
    forecast reads them on every visit)."""
    book = TariffBook(on)
    ranges: dict[tuple[int, str], list] = {}
    for is_limit, group, zones, zone, season, range_no, value in session.execute(
            _tariff_book_rows(), {"on": on}):
        if is_limit:
            ranges.setdefault((group, season), []).append(value)
        else:
            book.rates.setdefault((group, zones), {})[(zone, range_no)] = value
    book.limits = {key: tuple(values) for key, values in ranges.items()}
    return book


@dataclass(frozen=True)
class Estimate:
    """What a month's consumption would cost at the tariffs in force: shown to a resident
    before a reading is confirmed."""

    lines: list[ChargeLine]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


def estimate(session: Session, account: m.PersonalAccount, zones: int,
             consumption: Mapping[str, Decimal], period: dt.date) -> Estimate | None:
    """Price one meter's consumption (keys t1/t2/t3) as the billing run would; None when no
    tariff is in force for the account's group and the meter's zone scheme."""
    book = load_tariff_book(session, period)
    rates = book.rates.get((account.tariff_group_id, zones))
    try:
        limits = book.range_limits(account.tariff_group_id, period, account.large_family)
    except KeyError:
        limits = (None,)
    if not rates:
        return None
    by_register = {zone.upper(): kwh for zone, kwh in consumption.items()}
    try:
        return Estimate(price_consumption(by_register, limits, rates))
    except KeyError:
        return None
