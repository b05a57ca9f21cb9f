"""Billing periods: a period is the first day of its month; days are the portal's local days."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

#: The portal's time zone when BABEL_DEFAULT_TIMEZONE is not set.
DEFAULT_TZ = "Europe/Moscow"


def add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after the month of ``day``."""
    total = day.year * 12 + day.month - 1 + months
    return dt.date(total // 12, total % 12 + 1, 1)


def local_today(config: Mapping[str, Any]) -> dt.date:
    """Today in the portal's time zone: reading windows and billing guards count local days."""
    zone = ZoneInfo(config.get("BABEL_DEFAULT_TIMEZONE") or DEFAULT_TZ)
    return dt.datetime.now(zone).date()
