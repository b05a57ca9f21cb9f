"""How values read on every page: the template filters and what views format. The Russian
words themselves live in app.services.russian; here are what needs the request's app (its time
zone), phones, yes/no and reading a typed Russian date back."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import phonenumbers
from flask import current_app

from app.services import periods
from app.services.russian import date, energy, money, month, number, rubles, tariff

#: What views and templates take from here; the Russian words come from their one home.
__all__ = ["date", "energy", "local_time", "local_today", "money", "month", "number",
           "parse_date", "phone", "rubles", "tariff", "text", "timestamp", "yes_no"]


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
        parsed = phonenumbers.parse(value, "RU")
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def yes_no(value: bool | None) -> str:
    if value is None:
        return ""
    return "Да" if value else "Нет"


def text(value) -> str:
    """Anything else: empty for None rather than the word 'None'."""
    return "" if value is None else value


def local_today() -> dt.date:
    """Today in the portal's time zone (the reading window counts local days)."""
    return periods.local_today(current_app.config)
