"""Search as you type over the tables that grow with the customers (accounts, meters, users,
organizations, contracts, premises): the back office's relation fields and filters ask here
for a few matches of what was typed instead of listing every row of the related table.

Every search is a prefix of an indexed column, written as a range (``key >= 'abc' AND
key < 'abd'``) rather than ``LIKE 'abc%'``: the range uses the column's B-tree index in SQLite
(whose LIKE ignores case and so skips the index) and in PostgreSQL whatever the collation
(exact for byte-order collations such as C.UTF-8), and ``%`` or ``_`` typed by a person are
plain characters.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import and_, select, union
from sqlalchemy.orm import joinedload
from sqlalchemy.sql.elements import ColumnElement

from app import models as m
from app.services.scoping import branch_condition

#: Matches one search returns: a drop-down shows them without scrolling.
LIMIT = 20
#: Longest text searched; nothing longer matches any key of these tables.
MAX_TEXT = 100
#: Largest value of an integer primary key (PostgreSQL's int4).
MAX_ID = 2**31 - 1
SURROGATES = range(0xD800, 0xE000)
PHONE_TEXT = re.compile(r"^\+?[\d\s()\-]+$")
#: How organizations' names begin: "ромашка" finds «ООО «Ромашка»».
LEGAL_FORMS = ("ООО «", "АО «", "ПАО «", "ЗАО «", "ОАО «", "ИП ")


def clean(text: Any) -> str:
    """The typed text as searched: trimmed, inner spaces collapsed; "" when it cannot match
    (empty, too long, with control characters such as NUL)."""
    if not isinstance(text, str):
        return ""
    text = " ".join(text.split())
    if not text or len(text) > MAX_TEXT or any(ord(ch) < 32 for ch in text):
        return ""
    return text


def after(text: str) -> str | None:
    """The smallest string greater than every string starting with ``text`` (by code
    point), or None when there is none."""
    for cut in range(len(text), 0, -1):
        code = ord(text[cut - 1]) + 1
        if code in SURROGATES:
            code = SURROGATES.stop
        if code <= 0x10FFFF:
            return text[:cut - 1] + chr(code)
    return None


#: An indexed column and the beginning of its value searched for.
Key = tuple[Any, str]


def starts_with(column, text: str) -> ColumnElement[bool]:
    """``column`` starts with ``text``, as an index range."""
    upper = after(text)
    if upper is None:
        return column >= text
    return and_(column >= text, column < upper)


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def name_variants(text: str) -> list[str]:
    """A name as typed and with a capital first letter: "иванов" finds "Иванов"."""
    return list(dict.fromkeys([text, _capitalized(text)]))


def phone_prefix(text: str) -> str | None:
    """The beginning of an E.164 Russian number (how phones are stored) for a typed
    beginning such as "8 918", "+7918" or "918"; None when the text is no phone."""
    if not PHONE_TEXT.match(text):
        return None
    digits = re.sub(r"\D", "", text)
    if len(digits) < 3:
        return None
    if digits[0] == "8":
        digits = "7" + digits[1:]
    elif digits[0] == "9":
        digits = "7" + digits
    return "+" + digits


def _user_keys(text: str) -> list[Key]:
    user = m.PortalUser
    logins = dict.fromkeys([text, text.lower(), _capitalized(text)])
    found = [(user.username, v) for v in logins]
    found += [(user.email, v) for v in dict.fromkeys([text, text.lower()])]
    phone = phone_prefix(text)
    if phone:
        found.append((user.phone, phone))
    return found


def _organization_keys(text: str) -> list[Key]:
    names = name_variants(text)
    names += [form + _capitalized(text) for form in LEGAL_FORMS]
    return [(m.Organization.inn, text), *((m.Organization.name, v) for v in dict.fromkeys(names))]


def _premises_keys(text: str) -> list[Key]:
    streets = [*name_variants(text), "ул. " + _capitalized(text)]
    return [(m.Premises.street, v) for v in dict.fromkeys(streets)]


def _account_label(row: m.PersonalAccount) -> str:
    return f"{row.number} — {row.holder_name}"


def _meter_label(row: m.Meter) -> str:
    return f"{row.serial} (л/с {row.account.number})" if row.account else row.serial


def _user_label(row: m.PortalUser) -> str:
    name = " ".join(p for p in (row.last_name, row.first_name) if p)
    return f"{row.username} — {name}" if name else row.username


def _organization_label(row: m.Organization) -> str:
    return f"{row.name} (ИНН {row.inn})"


def _contract_label(row: m.Contract) -> str:
    return f"№ {row.number}"


@dataclass(frozen=True)
class FilterKey:
    """A natural key a list can be filtered by ("equal to", "starts with"), in Russian."""

    column: Any
    equal: str
    starts: str


@dataclass(frozen=True)
class Lookup:
    """How rows of one table are found by what a person types and shown in a field."""

    model: type
    #: What the search field says it searches, in Russian.
    hint: str
    #: The indexed columns and the beginnings searched in them for the typed text.
    keys: Callable[[str], list[Key]]
    label: Callable[[Any], str]
    order: tuple
    #: Relations the label reads, loaded with the rows.
    loads: tuple = ()
    #: The keys a list of rows pointing at this table is filtered by.
    filter_keys: tuple[FilterKey, ...] = ()


LOOKUPS: dict[type, Lookup] = {
    m.PersonalAccount: Lookup(
        m.PersonalAccount, "номер лицевого счёта или фамилия владельца",
        lambda t: [(m.PersonalAccount.number, t),
                   *((m.PersonalAccount.holder_name, v) for v in name_variants(t))],
        _account_label, (m.PersonalAccount.number,),
        filter_keys=(FilterKey(m.PersonalAccount.number, "номер равен",
                               "номер начинается с"),)),
    m.Meter: Lookup(
        m.Meter, "заводской номер прибора учёта",
        lambda t: [(m.Meter.serial, v) for v in dict.fromkeys([t, t.upper()])],
        _meter_label, (m.Meter.serial,), (m.Meter.account,),
        filter_keys=(FilterKey(m.Meter.serial, "заводской номер равен",
                               "заводской номер начинается с"),)),
    m.PortalUser: Lookup(
        m.PortalUser, "логин, электронная почта или телефон",
        _user_keys, _user_label, (m.PortalUser.username,),
        filter_keys=(FilterKey(m.PortalUser.username, "логин равен", "логин начинается с"),
                     FilterKey(m.PortalUser.email, "эл. почта равна",
                               "эл. почта начинается с"))),
    m.Organization: Lookup(
        m.Organization, "наименование или ИНН организации",
        _organization_keys,
        _organization_label, (m.Organization.name, m.Organization.id),
        filter_keys=(FilterKey(m.Organization.inn, "ИНН равен", "ИНН начинается с"),
                     FilterKey(m.Organization.name, "наименование равно",
                               "наименование начинается с"))),
    m.Contract: Lookup(
        m.Contract, "номер договора",
        lambda t: [(m.Contract.number, v) for v in dict.fromkeys([t, t.upper()])],
        _contract_label, (m.Contract.number,),
        filter_keys=(FilterKey(m.Contract.number, "номер равен", "номер начинается с"),)),
    m.Premises: Lookup(
        m.Premises, "улица (например «ул. Красная»)",
        _premises_keys, lambda row: row.address,
        (m.Premises.street, m.Premises.house, m.Premises.flat, m.Premises.id),
        filter_keys=(FilterKey(m.Premises.street, "улица равна", "улица начинается с"),)),
}


def lookup_for(model: type) -> Lookup | None:
    """The lookup of a table that grows with the customers, None for a small directory."""
    for cls in getattr(model, "__mro__", ()):
        if cls in LOOKUPS:
            return LOOKUPS[cls]
    return None


def search(session, model: type, text: Any, branch_id: int | None = None,
           limit: int = LIMIT) -> list[dict[str, Any]]:
    """At most ``limit`` rows of ``model`` matching ``text``, within ``branch_id`` when the
    user is branch-scoped, as {"id", "text"} (what select2 reads).

    Each key is searched on its own, in its index's order and cut at ``limit``, and the ids
    are united: one ``WHERE a OR b ORDER BY a`` lets PostgreSQL walk the whole index of
    ``a`` looking for rows that match ``b``."""
    spec = lookup_for(model)
    text = clean(text)
    if spec is None or not text:
        return []
    limit = max(1, min(limit, LIMIT))
    scope = [branch_condition(model, branch_id)] if branch_id is not None else []
    found = union(*(_first(model, column, prefix, scope, limit)
                    for column, prefix in spec.keys(text))).subquery()
    query = (select(model).where(model.id.in_(select(found.c.id)))
             .options(*(joinedload(r) for r in spec.loads))
             .order_by(*spec.order).limit(limit))
    return [{"id": row.id, "text": spec.label(row)} for row in session.scalars(query).unique()]


def _first(model: type, column, prefix: str, scope: list, limit: int):
    """The ids of the first ``limit`` rows whose ``column`` starts with ``prefix``: a range
    of the column's index, read in order and cut."""
    page = (select(model.id).where(starts_with(column, prefix), *scope)
            .order_by(column).limit(limit).subquery())
    return select(page.c.id)


def parse_id(value: Any) -> int | None:
    """A primary key from a form or URL, or None when the text is not one."""
    text = str(value or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def get(session, model: type, value: Any, branch_id: int | None = None):
    """The row of ``model`` with the id ``value`` if it exists and lies in ``branch_id``
    (when given), else None."""
    pk = parse_id(value)
    if pk is None:
        return None
    query = select(model).where(model.id == pk)
    if branch_id is not None:
        query = query.where(branch_condition(model, branch_id))
    return session.scalars(query).first()


def label(obj) -> str:
    """How a row is shown in its field."""
    if obj is None:
        return ""
    spec = lookup_for(type(obj))
    return spec.label(obj) if spec else str(obj)
