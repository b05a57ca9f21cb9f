"""Ids as forms send them: text, possibly anything. What is not an id an integer column can
hold is no row at all (PostgreSQL would answer a larger number with an error). And the two
numbers printed on a paper bill as people type them: the account number and a meter's serial."""
from __future__ import annotations

MAX_ID = 2**31 - 1


def parse_id(raw) -> int | None:
    """The id in ``raw`` (surrounding spaces allowed), or None when it is not one."""
    text = str(raw).strip() if raw is not None else ""
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def get_row(session, model, raw):
    """The row of ``model`` whose id is in ``raw``, or None."""
    row_id = parse_id(raw)
    return session.get(model, row_id) if row_id is not None else None


def clean_number(raw: str) -> str:
    """An account number as typed, spaces and dashes dropped: its digits."""
    return "".join(ch for ch in (raw or "") if ch.isdigit())


def clean_serial(raw: str) -> str:
    """A meter serial as typed: without spaces, in capitals."""
    return "".join((raw or "").split()).upper()
