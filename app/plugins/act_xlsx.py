"""Built-in plugin: the reconciliation act as .xlsx, the customary (1C-style) layout.

Written by openpyxl in write-only mode: each row goes to disk as it is appended, so memory
stays flat whatever the number of documents. The cells of a document row are made once per
column with their style and refilled for every row (the write-only sheet serializes a row
as soon as it is appended), which keeps the exporter as fast as plain openpyxl.
"""
from __future__ import annotations

from typing import IO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.properties import PageSetupProperties

from app.plugins import hookimpl

MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MONEY_FORMAT = "#,##0.00"
DATE_FORMAT = "DD.MM.YYYY"
#: One half: № п/п | Дата | Документ | Дебет | Кредит; the customer's half mirrors it.
HALF = ("№ п/п", "Дата", "Документ", "Дебет", "Кредит")
WIDTHS = (5.5, 11, 36, 14, 14)
COLUMNS = 2 * len(HALF)
LAST = get_column_letter(COLUMNS)
#: The rows of the halves' captions and column headings, repeated on every printed page.
SIDES_ROW, HEAD_ROW = 8, 9
PAPERSIZE_A4 = 9
#: Under the signature line: what goes where.
CAPTION = "      (подпись)                 (Ф. И. О.)"

THIN = Side(style="thin", color="808080")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
HEAD_FILL = PatternFill("solid", fgColor="E2E9F3")
BOLD = Font(bold=True)
CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
WRAP = Alignment(vertical="top", wrap_text=True)


class XlsxActExporter:
    format = "xlsx"
    mimetype = MIMETYPE
    extension = "xlsx"

    def __repr__(self) -> str:
        return "app.plugins.act_xlsx"

    def export(self, act_data, stream: IO[bytes]) -> None:
        write_act(act_data, stream)


def _cell(sheet, value=None, *, font=None, fill=None, border=None, alignment=None,
          number_format=None) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    if font is not None:
        cell.font = font
    if fill is not None:
        cell.fill = fill
    if border is not None:
        cell.border = border
    if alignment is not None:
        cell.alignment = alignment
    if number_format is not None:
        cell.number_format = number_format
    return cell


def _merge(sheet, row: int, first: int, last: int) -> None:
    sheet.merged_cells.add(f"{get_column_letter(first)}{row}:{get_column_letter(last)}{row}")


def _line(sheet, row: int, text: str, *, font=None, alignment=CENTER, height=None) -> None:
    """A text across the whole width (a merged row)."""
    if height:
        sheet.row_dimensions[row].height = height
    sheet.append([_cell(sheet, text, font=font, alignment=alignment)])
    _merge(sheet, row, 1, COLUMNS)


def _balance_row(sheet, row: int, label: str, debit, credit) -> None:
    """«Сальдо …» / «Обороты …»: the label over № / Дата / Документ, the amounts in the
    supplier's half; the customer's half has the label and empty boxes."""
    cells = []
    for side in (0, 1):
        cells += [_cell(sheet, label, font=BOLD, border=BOX, alignment=WRAP),
                  _cell(sheet, border=BOX), _cell(sheet, border=BOX)]
        for amount in ((debit, credit) if side == 0 else (None, None)):
            cells.append(_cell(sheet, amount, font=BOLD, border=BOX,
                               number_format=MONEY_FORMAT))
        _merge(sheet, row, side * 5 + 1, side * 5 + 3)
    sheet.append(cells)


def write_act(data, stream: IO[bytes]) -> int:
    """Write the act into ``stream``; return the number of document rows."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Акт сверки")
    for index, width in enumerate(WIDTHS * 2, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.page_setup.paperSize = PAPERSIZE_A4
    sheet.page_setup.orientation = "portrait"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    sheet.page_margins.left = sheet.page_margins.right = 0.4
    sheet.page_margins.top = sheet.page_margins.bottom = 0.5
    sheet.print_options.horizontalCentered = True
    sheet.print_title_rows = f"{SIDES_ROW}:{HEAD_ROW}"

    # Title, preamble (rows 1-7).
    _line(sheet, 1, data.heading, font=Font(bold=True, size=14), height=22)
    _line(sheet, 2, data.period_line, font=BOLD)
    _line(sheet, 3, data.parties_line, font=BOLD, height=30)
    _line(sheet, 4, data.contract_line)
    sheet.append([])
    _line(sheet, 6, data.preamble, alignment=Alignment(wrap_text=True, vertical="top"),
          height=44)
    sheet.append([])

    # The halves and their columns (rows 8-9, repeated on every page).
    sides = []
    for caption in (data.supplier_side, data.customer_side):
        sides += [_cell(sheet, caption, font=BOLD, fill=HEAD_FILL, border=BOX,
                        alignment=CENTER)] + [_cell(sheet, border=BOX) for _ in range(4)]
    sheet.row_dimensions[SIDES_ROW].height = 30
    sheet.append(sides)
    _merge(sheet, SIDES_ROW, 1, 5)
    _merge(sheet, SIDES_ROW, 6, 10)
    sheet.append([_cell(sheet, text, font=BOLD, fill=HEAD_FILL, border=BOX, alignment=CENTER)
                  for text in HALF * 2])

    row = HEAD_ROW + 1
    _balance_row(sheet, row, "Сальдо начальное", *data.split(data.opening))

    # Document rows: one styled cell per column, refilled for each row.
    number = _cell(sheet, border=BOX)
    day = _cell(sheet, border=BOX, number_format=DATE_FORMAT)
    document = _cell(sheet, border=BOX)
    debit = _cell(sheet, border=BOX, number_format=MONEY_FORMAT)
    credit = _cell(sheet, border=BOX, number_format=MONEY_FORMAT)
    blank = [_cell(sheet, border=BOX) for _ in range(len(HALF))]
    cells = [number, day, document, debit, credit, *blank]
    count = 0
    for count, act_row in enumerate(data.rows, start=1):
        number.value = count
        day.value = act_row.date
        document.value = act_row.document
        debit.value = act_row.debit
        credit.value = act_row.credit
        sheet.append(cells)
    row += count + 1

    _balance_row(sheet, row, "Обороты за период", data.debit_total, data.credit_total)
    row += 1
    _balance_row(sheet, row, "Сальдо конечное", *data.split(data.closing))
    row += 1

    sheet.append([])
    _line(sheet, row + 1, data.conclusion, font=BOLD,
          alignment=Alignment(wrap_text=True, vertical="top"), height=32)
    sheet.append([])
    row += 3
    signature = [
        (f"От {data.supplier['name']}", f"От {data.customer}"),
        ("", ""),
        ("_____________________ (должность)", "_____________________ (должность)"),
        ("", ""),
        ("__________________ / ___________________ /",
         f"__________________ / {data.customer_signer or '___________________'} /"),
        (CAPTION, CAPTION),
        ("М.П.", "М.П."),
    ]
    for left, right in signature:
        font = BOLD if left.startswith("От ") else None
        sheet.append([_cell(sheet, left, font=font, alignment=WRAP), None, None, None, None,
                      _cell(sheet, right, font=font, alignment=WRAP)])
        _merge(sheet, row, 1, 5)
        _merge(sheet, row, 6, 10)
        row += 1
    book.save(stream)
    return count


@hookimpl
def register_act_exporters():
    return [XlsxActExporter()]
