"""The month's forecast on the cabinet's main page: what the current month will likely cost,
from this month's reading when it is in, else from the meter's average month, and how far the
account is from the next consumption range. Two queries whatever the number of accounts
(one when the caller brings the readings)."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Meter, PersonalAccount, Reading
from app.services.readings import AVERAGE_MONTHS, ZONES
from app.services.tariffs import ZERO, load_tariff_book, price_consumption


@dataclass(frozen=True)
class Forecast:
    period: dt.date
    kwh: Decimal
    amount: Decimal
    from_reading: bool
    range_no: int
    #: kWh left before the next range starts; None when there is no next range.
    to_next_range: Decimal | None


def _months_between(newer: dt.date, older: dt.date) -> int:
    return (newer.year - older.year) * 12 + newer.month - older.month


def _meter_month(rows: list[Reading], period: dt.date) -> tuple[dict[str, Decimal], bool] | None:
    """This month's kWh per register of one meter (rows newest first): the actual
    consumption when the month's reading is in, else the average month; None without
    history."""
    current = next((r for r in rows if r.period == period), None)
    earlier = [r for r in rows if r.period < period]
    if current is not None and earlier:
        before = earlier[0]
        return {z: (getattr(current, z) or ZERO) - (getattr(before, z) or ZERO)
                for z in ZONES if getattr(current, z) is not None}, True
    if len(earlier) >= 2:
        newest, oldest = earlier[0], earlier[min(len(earlier), AVERAGE_MONTHS + 1) - 1]
        months = _months_between(newest.period, oldest.period)
        if months > 0:
            return {z: ((getattr(newest, z) or ZERO) - (getattr(oldest, z) or ZERO)) / months
                    for z in ZONES if getattr(newest, z) is not None}, False
    return None


#: The accepted readings of a meter a forecast looks at: this month's and the average's.
HISTORY = AVERAGE_MONTHS + 2


def recent_readings(session: Session, meter_ids: list[int],
                    period: dt.date) -> dict[int, list[Reading]]:
    """Each meter's last HISTORY accepted readings up to ``period``, newest first."""
    readings: dict[int, list[Reading]] = defaultdict(list)
    for reading in session.execute(
            select(Reading).where(Reading.meter_id.in_(meter_ids),
                                  Reading.status == "accepted", Reading.period <= period)
            .order_by(Reading.meter_id, Reading.period.desc())).scalars():
        if len(readings[reading.meter_id]) < HISTORY:
            readings[reading.meter_id].append(reading)
    return readings


def for_accounts(session: Session, accounts: list[PersonalAccount], meters: list[Meter],
                 today: dt.date,
                 readings: dict[int, list[Reading]] | None = None) -> dict[int, Forecast]:
    """Forecasts by account id, for the accounts whose meters have a history. ``readings``
    (as recent_readings gives them) when the caller has read them with the meters."""
    period = today.replace(day=1)
    if not meters:
        return {}
    if readings is None:
        readings = recent_readings(session, [m.id for m in meters], period)
    book = load_tariff_book(session, period)
    by_account = {a.id: a for a in accounts}
    forecasts: dict[int, Forecast] = {}
    for meter in meters:
        month = _meter_month(readings.get(meter.id, []), period)
        account = by_account[meter.account_id]
        rates = book.rates.get((account.tariff_group_id, meter.zones))
        if month is None or not rates or any(v < 0 for v in month[0].values()):
            continue
        used = {zone.upper(): kwh.quantize(Decimal("1")) for zone, kwh in month[0].items()}
        try:
            limits = book.range_limits(account.tariff_group_id, period, account.large_family)
        except KeyError:
            limits = (None,)
        try:
            lines = price_consumption(used, limits, rates)
        except KeyError:
            continue
        total = sum(used.values(), ZERO)
        range_no = max((line.range_no for line in lines), default=1)
        upper = limits[range_no - 1] if range_no - 1 < len(limits) else None
        previous = forecasts.get(account.id)
        forecasts[account.id] = Forecast(
            period, total + (previous.kwh if previous else ZERO),
            sum((line.amount for line in lines), ZERO) + (previous.amount if previous else ZERO),
            month[1] and (previous.from_reading if previous else True),
            range_no, upper - total if upper is not None else None)
    return forecasts
