"""How numbers, money, energy, tariffs, dates and phones read on every page (shared/docs/ux.md,
«Russian formatting»), and reading a typed Russian date back."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from app.views import formats

NBSP = "\u00a0"


@pytest.mark.parametrize("value, text", [
    (Decimal("1234.56"), "1 234,56 ₽"),
    (Decimal("1234567.5"), "1 234 567,50 ₽"),
    (Decimal("0"), "0,00 ₽"),
    (Decimal("-50"), "-50,00 ₽"),
    (None, ""),
])
def test_rubles(value, text):
    assert formats.rubles(value).replace(NBSP, " ") == text


@pytest.mark.parametrize("value, text", [
    (Decimal("222.000"), "222 кВт·ч"),
    (Decimal("1099.988"), "1 099,988 кВт·ч"),
    (Decimal("1099.980"), "1 099,98 кВт·ч"),
    (Decimal("0"), "0 кВт·ч"),
    (1500, "1 500 кВт·ч"),
    (None, ""),
])
def test_energy_has_decimals_only_where_the_meter_shows_them(value, text):
    assert formats.energy(value).replace(NBSP, " ") == text


@pytest.mark.parametrize("value, text", [
    (Decimal("5.1500"), "5,15 руб./кВт·ч"),
    (Decimal("7.35"), "7,35 руб./кВт·ч"),
    (Decimal("5.156"), "5,156 руб./кВт·ч"),
    (Decimal("6"), "6,00 руб./кВт·ч"),
])
def test_tariff_keeps_kopecks(value, text):
    assert formats.tariff(value).replace(NBSP, " ") == text


@pytest.mark.parametrize("text, day", [
    ("05.12.2026", dt.date(2026, 12, 5)),
    (" 5.12.2026 ", dt.date(2026, 12, 5)),
    ("2026-12-05", dt.date(2026, 12, 5)),
    ("31.02.2026", None),
    ("12/05/2026", None),
    ("", None),
    (None, None),
])
def test_parse_date_reads_russian_and_iso(text, day):
    assert formats.parse_date(text) == day


def test_dates_months_and_phones():
    assert formats.date(dt.date(2026, 12, 5)) == "05.12.2026"
    assert formats.month(dt.date(2026, 12, 1)) == "декабрь 2026"
    assert formats.phone("+79183656184") == "+7 918 365-61-84"
    assert formats.phone(None) == ""
