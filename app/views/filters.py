"""FAB's search filters, with a money or kWh (Numeric) column compared with a number.

FAB converts the text typed into a filter to the column's type for integers, floats, dates
and yes/no columns, but compares a Numeric column with the text itself: SQLite converts it,
PostgreSQL refuses (``operator does not exist: numeric > character varying``), so "Сумма
больше 1000" was a server error. These filters convert it first; text that is no number
leaves the filter out, as FAB does for an integer it cannot read.
"""
from __future__ import annotations

import re
from decimal import Decimal

from flask_appbuilder.models.sqla import filters as fab

#: A number as people type it in a filter: digits, a sign, a decimal point or comma.
PLAIN_NUMBER = re.compile(r"^\s*-?\d{1,20}([.,]\d{1,20})?\s*$")


def number(value) -> Decimal | None:
    """The number in a filter's text, or None when it is not one."""
    text = str(value)
    if not PLAIN_NUMBER.match(text):
        return None
    return Decimal(text.strip().replace(",", "."))


def _numeric(filter_class: type) -> type:
    """``filter_class`` with its value read as a number first."""

    def apply(self, query, value):
        if isinstance(value, list):  # FilterIn, FilterNotIn
            numbers = [n for n in map(number, value) if n is not None]
            return filter_class.apply(self, query, numbers)
        converted = number(value)
        if converted is None:
            return query
        return filter_class.apply(self, query, converted)

    return type(f"Numeric{filter_class.__name__}", (filter_class,), {"apply": apply})


NUMERIC_FILTERS = [_numeric(f) for f in (fab.FilterEqual, fab.FilterGreater,
                                         fab.FilterSmaller, fab.FilterNotEqual,
                                         fab.FilterIn, fab.FilterNotIn)]


class TypedFilterConverter(fab.SQLAFilterConverter):
    """FAB's converter with the number-reading filters for Numeric columns."""

    conversion_table = tuple(
        (test, NUMERIC_FILTERS if test == "is_numeric" else filters)
        for test, filters in fab.SQLAFilterConverter.conversion_table)
