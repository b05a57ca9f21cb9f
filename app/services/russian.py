"""Russian words for numbers, money, energy, dates and months: the one place their grammar and
look live (shared/docs/ux.md, «Russian formatting»), for pages, letters, notices and PDFs."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from num2words import num2words

NBSP = "\u00a0"
MONTHS = ("январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август",
          "сентябрь", "октябрь", "ноябрь", "декабрь")
MONTHS_GENITIVE = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
                   "сентября", "октября", "ноября", "декабря")


def plural(n: int, one: str, few: str, many: str) -> str:
    """The Russian plural form for n: 1 счёт, 2 счёта, 5 счетов, 11 счетов, 21 счёт."""
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


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


def kwh(value: Decimal | None) -> str:
    """A volume in a table whose heading names the unit: whole, or to the watt-hour."""
    if value is None:
        return ""
    whole = value == value.to_integral_value()
    return number(value, 0 if whole else 3)


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


def amount_in_words(amount: Decimal) -> str:
    """735.00 -> «Семьсот тридцать пять рублей 00 копеек» (rubles in words, kopecks in
    digits, as on Russian payment documents)."""
    value = Decimal(amount).quantize(Decimal("0.01"))
    sign = "минус " if value < 0 else ""
    value = abs(value)
    whole, kopecks = int(value), int((value - int(value)) * 100)
    words = num2words(whole, lang="ru")
    text = (f"{sign}{words} {plural(whole, 'рубль', 'рубля', 'рублей')} "
            f"{kopecks:02d} {plural(kopecks, 'копейка', 'копейки', 'копеек')}")
    return text[0].upper() + text[1:]


def date(value: dt.date | None) -> str:
    return value.strftime("%d.%m.%Y") if value else ""


def month(value: dt.date | None) -> str:
    """A billing period (the first day of a month) -> 'октябрь 2026'."""
    return f"{MONTHS[value.month - 1]} {value.year}" if value else ""


def month_name(period: dt.date) -> str:
    """A billing period as documents write it: 'октябрь 2026 г.'."""
    return f"{MONTHS[period.month - 1]} {period.year} г."


def day_month(day: dt.date) -> str:
    """'5 октября': a day of the current year in a message."""
    return f"{day.day} {MONTHS_GENITIVE[day.month - 1]}"
