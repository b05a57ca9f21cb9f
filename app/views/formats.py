"""How values read on every page: Russian numbers, money, energy, tariffs, dates, months and
yes/no (shared/docs/ux.md, «Russian formatting»), and reading a Russian date back."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import phonenumbers
from flask import current_app

NBSP = "\u00a0"
MONTHS = ("январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август",
          "сентябрь", "октябрь", "ноябрь", "декабрь")


def number(value: Decimal | float | int | None, places: int) -> str:
    """1234567.5 -> '1 234 567,50' (a no-break space between thousands, a decimal comma)."""
    if value is None:
        return ""
    text = f"{value:,.{places}f}"
    return text.replace(",", NBSP).replace(".", ",")


def money(value: Decimal | None) -> str:
    return number(value, 2)


def rubles(value: Decimal | None) -> str:
    """An amount as a person reads it: '1 234,56 ₽' (a no-break space before the sign)."""
    return "" if value is None else f"{money(value)}{NBSP}₽"


def energy(value: Decimal | float | int | None) -> str:
    """'222 кВт·ч' when whole, '1 099,988 кВт·ч' only where the meter shows fractions."""
    if value is None:
        return ""
    value = Decimal(value)
    places = 0 if value == value.to_integral_value() else \
        max(0, -value.normalize().as_tuple().exponent)
    return f"{number(value, places)}{NBSP}кВт·ч"


def tariff(value: Decimal | None) -> str:
    """'5,15 руб./кВт·ч': kopecks always, more places only where the tariff has them."""
    if value is None:
        return ""
    value = Decimal(value)
    places = max(2, -value.normalize().as_tuple().exponent)
    return f"{number(value, places)}{NBSP}руб./кВт·ч"


def date(value: dt.date | None) -> str:
    return value.strftime("%d.%m.%Y") if value else ""


def parse_date(text: str | None) -> dt.date | None:
    """'05.12.2026' (what our date inputs ask for) or '2026-12-05' (a browser's own or an old
    link) -> a date; None when it is neither."""
    text = (text or "").strip()
    for pattern in ("%d.%m.%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def month(value: dt.date | None) -> str:
    """A billing period (the first day of a month) -> 'октябрь 2026'."""
    return f"{MONTHS[value.month - 1]} {value.year}" if value else ""


def local_time(value: dt.datetime) -> dt.datetime:
    """An instant in the portal's time zone, without tzinfo (naive values are UTC)."""
    zone = ZoneInfo(current_app.config.get("BABEL_DEFAULT_TIMEZONE", "Europe/Moscow"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(zone).replace(tzinfo=None)


def timestamp(value: dt.datetime | None) -> str:
    return local_time(value).strftime("%d.%m.%Y %H:%M") if value else ""


def phone(value: str | None) -> str:
    """A stored E.164 number as people write it: '+79183656184' -> '+7 918 365-61-84'."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, "RU")
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def yes_no(value: bool | None) -> str:
    if value is None:
        return ""
    return "Да" if value else "Нет"


def text(value) -> str:
    """Anything else: empty for None rather than the word 'None'."""
    return "" if value is None else value


def local_today() -> dt.date:
    """Today in the portal's time zone (the reading window counts local days)."""
    return local_time(dt.datetime.now(dt.timezone.utc)).date()
