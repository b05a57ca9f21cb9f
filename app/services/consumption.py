"""A personal account's consumption as its holder sees it: kWh per zone and money charged per
month over the last 24 months, from the ledger (Charge rows) in one grouped query.

Zones are named by the scheme of the meter that was charged (one zone: «Круглосуточно»; two:
«День», «Ночь»; three: «Пик», «Ночь», «Полупик»), so a meter replaced by a two-zone one shows
both, and the night of a two- and a three-zone meter is one series. Rows without a meter take
the scheme of the account's active meter; rows without a zone (adjustments) count in money and,
if they carry kWh, in a series of their own.

The months shown run without gaps from the first to the last charged month inside the window:
a month with no charge inside that range is a zero, not a missing bar. All sums are Decimal.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import IO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Charge, Meter, PersonalAccount
from app.services import export
from app.services.periods import add_months

MONTHS = 24
KWH_PLACES = Decimal("0.001")
MONEY_PLACES = Decimal("0.01")
NO_KWH = Decimal("0.000")
NO_MONEY = Decimal("0.00")

#: Series labels by the number of zones of a meter and the register (Charge.zone).
ZONE_LABELS = {
    1: {"T1": "Круглосуточно"},
    2: {"T1": "День", "T2": "Ночь"},
    3: {"T1": "Пик", "T2": "Ночь", "T3": "Полупик"},
}
OTHER_LABEL = "Без зоны"

PERIOD_HEADER = "Месяц"
TOTAL_KWH_HEADER = "Всего, кВт·ч"
AMOUNT_HEADER = "Начислено, руб."
TOTAL_LABEL = "Итого"
KWH_FORMAT = "#,##0.000"


@dataclass(frozen=True)
class MonthRow:
    period: dt.date
    kwh: tuple[Decimal, ...]  # one value per series, in Consumption.series order
    amount: Decimal

    @property
    def total_kwh(self) -> Decimal:
        return sum(self.kwh, NO_KWH)


@dataclass(frozen=True)
class Consumption:
    account: PersonalAccount
    series: tuple[str, ...]
    rows: tuple[MonthRow, ...]

    @property
    def kwh_totals(self) -> tuple[Decimal, ...]:
        if not self.rows:
            return tuple(NO_KWH for _ in self.series)
        return tuple(sum(column, NO_KWH) for column in zip(*(r.kwh for r in self.rows)))

    @property
    def total_kwh(self) -> Decimal:
        return sum((r.total_kwh for r in self.rows), NO_KWH)

    @property
    def total_amount(self) -> Decimal:
        return sum((r.amount for r in self.rows), NO_MONEY)


def window(today: dt.date, months: int = MONTHS) -> tuple[dt.date, dt.date]:
    """The first and last period of the ``months`` months ending with today's month."""
    last = today.replace(day=1)
    return add_months(last, -(months - 1)), last


def zone_label(zones: int | None, zone: str | None) -> str:
    if zone is None:
        return OTHER_LABEL
    scheme = ZONE_LABELS.get(zones or 0) or ZONE_LABELS[3]
    return scheme.get(zone, zone)


def monthly(session: Session, account: PersonalAccount, today: dt.date | None = None,
            months: int = MONTHS) -> Consumption:
    """kWh per zone and money charged per month over the window: two queries in all."""
    first, last = window(today or dt.date.today(), months)
    grouped = session.execute(
        select(Charge.period, Charge.zone, Meter.zones,
               func.sum(Charge.kwh), func.sum(Charge.amount))
        .outerjoin(Meter, Meter.id == Charge.meter_id)
        .where(Charge.account_id == account.id, Charge.period.between(first, last))
        .group_by(Charge.period, Charge.zone, Meter.zones)
    ).all()
    default_zones = session.execute(
        select(func.max(Meter.zones)).where(Meter.account_id == account.id, Meter.active)
    ).scalar() or 1

    kwh: dict[tuple[dt.date, str], Decimal] = {}
    amounts: dict[dt.date, Decimal] = {}
    order: dict[str, tuple[int, str]] = {}
    for period, zone, zones, kwh_sum, amount_sum in grouped:
        period = _as_date(period)
        zones = zones or default_zones
        label = zone_label(zones, zone)
        kwh_sum = _dec(kwh_sum, KWH_PLACES)
        amounts[period] = amounts.get(period, NO_MONEY) + _dec(amount_sum, MONEY_PLACES)
        if zone is None and not kwh_sum:
            continue  # a money-only adjustment: no kWh series for it
        kwh[period, label] = kwh.get((period, label), NO_KWH) + kwh_sum
        order[label] = min(order.get(label, (9, "")), (zones if zone else 9, zone or ""))

    series = tuple(sorted(order, key=lambda label: order[label]))
    if not amounts:
        return Consumption(account, series, ())
    periods, period = [], min(amounts)
    while period <= max(amounts):
        periods.append(period)
        period = add_months(period, 1)
    rows = tuple(
        MonthRow(p, tuple(kwh.get((p, label), NO_KWH) for label in series),
                 amounts.get(p, NO_MONEY))
        for p in periods
    )
    return Consumption(account, series, rows)


def chart_data(data: Consumption, month_name) -> dict:
    """What consumption.js draws; numbers as strings so no float touches the money."""
    return {
        "labels": [month_name(r.period) for r in data.rows],
        "series": [
            {"label": label, "values": [str(r.kwh[i]) for r in data.rows]}
            for i, label in enumerate(data.series)
        ],
        "amounts": [str(r.amount) for r in data.rows],
    }


# Downloads --------------------------------------------------------------------------------


def _headers(data: Consumption) -> list[str]:
    return [PERIOD_HEADER, *(f"{label}, кВт·ч" for label in data.series), TOTAL_KWH_HEADER,
            AMOUNT_HEADER]


def table_rows(data: Consumption) -> list[list]:
    """The table as typed values: months, then a total line."""
    rows: list[list] = [[r.period, *r.kwh, r.total_kwh, r.amount] for r in data.rows]
    rows.append([TOTAL_LABEL, *data.kwh_totals, data.total_kwh, data.total_amount])
    return rows


def write_xlsx(stream: IO[bytes], data: Consumption) -> int:
    """The table as an .xlsx sheet (months as dates formatted MM.YYYY, numbers as numbers)."""
    columns = [export.Column(PERIOD_HEADER, export.MONTH_FORMAT, 14)]
    columns += [export.Column(f"{label}, кВт·ч", KWH_FORMAT, 16) for label in data.series]
    columns += [export.Column(TOTAL_KWH_HEADER, KWH_FORMAT, 16),
                export.Column(AMOUNT_HEADER, export.MONEY_FORMAT, 18)]
    return export.write_xlsx(stream, f"Потребление {data.account.number}", columns,
                             table_rows(data))


def csv_bytes(data: Consumption) -> bytes:
    """The table as CSV for Russian Excel: UTF-8 with a BOM, ``;`` between fields, a decimal
    comma and no thousands separator, months as the period's first day DD.MM.YYYY."""
    text = io.StringIO()
    writer = csv.writer(text, delimiter=";", lineterminator="\r\n")
    writer.writerow(_headers(data))
    for row in table_rows(data):
        writer.writerow([_csv_value(v) for v in row])
    return text.getvalue().encode("utf-8-sig")


def _csv_value(value) -> str:
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, Decimal):
        return str(value).replace(".", ",")
    return str(value)


def _dec(value, places: Decimal) -> Decimal:
    """A sum as Decimal at its column's scale (a driver's float goes through its text)."""
    return Decimal(str(value or 0)).quantize(places)


def _as_date(value) -> dt.date:
    """SQLite may hand a grouped date back as text."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
