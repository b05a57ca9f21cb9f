"""Lists to .xlsx: rows streamed into a write-only workbook, typed cells, Russian headers."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import IO, Any, Callable, Iterable, Sequence

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

MONEY_FORMAT = "#,##0.00"
DATE_FORMAT = "DD.MM.YYYY"
MONTH_FORMAT = "MM.YYYY"
DATETIME_FORMAT = "DD.MM.YYYY HH:MM"

HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="1D4F91")


@dataclass(frozen=True)
class Column:
    """One column of the sheet: its header, the Excel number format of its cells, its width."""

    label: str
    number_format: str | None = None
    width: float = 18


def sheet_title(title: str) -> str:
    """Excel allows 31 characters and none of []:*?/\\ in a sheet name."""
    return re.sub(r"[\[\]:*?/\\]", " ", title).strip()[:31] or "Лист1"


def write_xlsx(stream: IO[bytes], title: str, columns: Sequence[Column],
               rows: Iterable[Sequence[Any]],
               to_local: Callable[[dt.datetime], dt.datetime] = lambda v: v) -> int:
    """Write ``rows`` under a header of ``columns`` into ``stream``; return the row count.

    Rows are consumed one at a time, so a large query can be streamed through. Aware
    datetimes go through ``to_local`` first: Excel has no time zones."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title(title))
    for index, column in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    sheet.freeze_panes = "A2"
    sheet.append([_header_cell(sheet, column.label) for column in columns])
    count = 0
    for row in rows:
        sheet.append([_cell(sheet, value, column, to_local)
                      for value, column in zip(row, columns)])
        count += 1
    workbook.save(stream)
    return count


def _header_cell(sheet, label: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=label)
    cell.font = HEADER_FONT
    cell.fill = HEADER_FILL
    cell.alignment = Alignment(wrap_text=True, vertical="center")
    return cell


def _cell(sheet, value: Any, column: Column, to_local) -> WriteOnlyCell | Any:
    if isinstance(value, dt.datetime):
        value = to_local(value)
    if isinstance(value, str):
        return _text_cell(sheet, value)
    if value is None or column.number_format is None:
        return value
    cell = WriteOnlyCell(sheet, value=value)
    cell.number_format = column.number_format
    return cell


def _text_cell(sheet, text: str) -> WriteOnlyCell | str:
    """Text as text: without the control characters a worksheet cannot hold (openpyxl
    refuses the whole file), and never a formula (a name typed as "=HYPERLINK(...)" stays a
    name in finance's spreadsheet)."""
    text = ILLEGAL_CHARACTERS_RE.sub("", text)
    if not text.startswith("="):
        return text
    cell = WriteOnlyCell(sheet, value=text)
    cell.data_type = "s"
    return cell
