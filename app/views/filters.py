"""FAB's search filters, with a money or kWh (Numeric) column compared with a number.

FAB converts the text typed into a filter to the column's type for integers, floats, dates
and yes/no columns, but compares a Numeric column with the text itself: SQLite converts it,
PostgreSQL refuses (``operator does not exist: numeric > character varying``), so "Сумма
больше 1000" was a server error. These filters convert it first; text that is no number
leaves the filter out, as FAB does for an integer it cannot read.

A relation to a table that grows with the customers (accounts, meters, users...) is not
searched by a drop-down of every related row but by the related row's natural key typed as
text ("Лицевой счёт" - "номер равен" 2300...), through a subquery on that key's index.
"""
from __future__ import annotations

import re
from decimal import Decimal

from flask_appbuilder.models.sqla import filters as fab
from sqlalchemy import false, select
from sqlalchemy.orm import MANYTOONE

from app.services import lookup

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


class RelationIdEqual(fab.FilterRelationOneToManyEqual):
    """FAB's filter by the related row's id, kept at index 0 of a relation's filters: the
    "add" link of a related list and older links pass ``_flt_0_<relation>=<id>``."""

    name = "код записи равен"


def _foreign_key(model, relation: str):
    """The column of ``model`` that holds the key of ``relation`` (a many-to-one)."""
    column, = getattr(model, relation).property.local_columns
    return column


class RelatedKeyFilter(fab.BaseFilter):
    """A relation searched by a natural key of the related row (an account's number, a
    meter's serial...) through a subquery on that key's index: the related table is never
    listed. Text that can match nothing (too long, control characters) finds no rows."""

    related: type = None
    filter_key: lookup.FilterKey = None
    prefix = False

    def apply(self, query, value):
        if not str(value or "").strip():
            return query
        text = lookup.clean(value)
        foreign_key = _foreign_key(self.model, self.column_name)
        if not text:
            return query.filter(false())
        key = self.filter_key.column
        condition = lookup.starts_with(key, text) if self.prefix else key == text
        return query.filter(foreign_key.in_(select(self.related.id).where(condition)))


def relation_filters(model, relation: str) -> list[type] | None:
    """The filters of a relation to a table that grows with the customers: by id (index 0,
    for links), then by the related row's natural keys; None for a small directory."""
    prop = getattr(model, relation).property
    if getattr(prop, "direction", None) is not MANYTOONE:
        return None
    related = prop.mapper.class_
    spec = lookup.lookup_for(related)
    if spec is None or not spec.filter_keys:
        return None
    made = [RelationIdEqual]
    for key in spec.filter_keys:
        for prefix, name in ((False, key.equal), (True, key.starts)):
            made.append(type(f"{related.__name__}{key.column.key.title()}Filter",
                             (RelatedKeyFilter,),
                             {"name": name, "arg_name": f"rel_{key.column.key}_{int(prefix)}",
                              "related": spec.model, "filter_key": key, "prefix": prefix}))
    return made
