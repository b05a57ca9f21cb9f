"""The resident's payment report: the account's succeeded payments over a chosen period (one
query), as .xlsx or as a PDF in the portal's printed look."""
from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import ZERO, Payment, PaymentMethod, PersonalAccount
from app.services.bill_data import DEFAULT_TZ, local_time, utc_bounds
from app.services.pdf_layout import document, header, pairs, payer_pairs, section, table
from app.services.russian import amount_in_words, money
from app.services.supplier import requisites

#: The longest period of a payment report.
MAX_REPORT_DAYS = 5 * 366


class PeriodError(ValueError):
    """The period of a report is not usable; the message says why."""


def parse_date(text: str | None, what: str) -> dt.date:
    raw = (text or "").strip()
    if not raw:
        raise PeriodError(f"Укажите дату «{what}».")
    for pattern in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(raw, pattern).date()
        except ValueError:
            continue
    raise PeriodError(f"Дата «{what}» указывается в виде ДД.ММ.ГГГГ.")


def parse_period(date_from: str | None, date_to: str | None) -> tuple[dt.date, dt.date]:
    """The dates of a report (inclusive), checked: in order and at most about five years."""
    start, end = parse_date(date_from, "с"), parse_date(date_to, "по")
    if start > end:
        raise PeriodError("Дата «с» не может быть позже даты «по».")
    if (end - start).days > MAX_REPORT_DAYS:
        raise PeriodError("Отчёт формируется не более чем за пять лет.")
    return start, end


@dataclass(frozen=True)
class ReportRow:
    at: dt.datetime
    method: str
    amount: Decimal


@dataclass
class PaymentReport:
    account: PersonalAccount
    date_from: dt.date
    date_to: dt.date
    rows: list[ReportRow]

    @property
    def total(self) -> Decimal:
        return sum((r.amount for r in self.rows), ZERO)

    @property
    def count(self) -> int:
        return len(self.rows)

    @property
    def by_method(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for r in self.rows:
            totals[r.method] = totals.get(r.method, ZERO) + r.amount
        return totals


def payment_report(session: Session, account: PersonalAccount, date_from: dt.date,
                   date_to: dt.date, tz: str = DEFAULT_TZ) -> PaymentReport:
    """The account's succeeded payments dated (in local time) from ``date_from`` to
    ``date_to`` inclusive: one query."""
    start, end = utc_bounds(date_from, date_to + dt.timedelta(days=1), tz)
    paid_at = func.coalesce(Payment.paid_at, Payment.created_at)
    rows = session.execute(
        select(Payment.amount, Payment.method, paid_at.label("at"))
        .where(Payment.account_id == account.id, Payment.status == "succeeded",
               paid_at >= start, paid_at < end)
        .order_by(paid_at, Payment.id)).all()
    return PaymentReport(account, date_from, date_to,
                         [ReportRow(local_time(r.at, tz), PaymentMethod.label(r.method), r.amount)
                          for r in rows])


def _report_title(report: PaymentReport) -> str:
    return (f"Платежи по лицевому счёту {report.account.number} "
            f"с {report.date_from:%d.%m.%Y} по {report.date_to:%d.%m.%Y}")


def payment_report_xlsx(report: PaymentReport) -> bytes:
    """The report as .xlsx: a title, the rows, the total and the totals by method."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Платежи"
    thin = Side(style="thin", color="A0A8B0")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    ws.merge_cells("A1:D1")
    ws["A1"] = _report_title(report)
    ws["A1"].font = Font(bold=True, size=12)
    ws["A2"] = f"Плательщик: {report.account.holder_name}, {report.account.premises.address}"
    ws.merge_cells("A2:D2")
    columns = ["№", "Дата и время", "Способ оплаты", "Сумма, руб."]
    ws.append([])
    ws.append(columns)
    for cell in ws[4]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="1D4F91")
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = box
    for n, row in enumerate(report.rows, start=1):
        ws.append([n, row.at, row.method, row.amount])
        r = ws.max_row
        ws.cell(r, 2).number_format = "DD.MM.YYYY HH:MM"
        ws.cell(r, 4).number_format = "#,##0.00"
        for c in range(1, 5):
            ws.cell(r, c).border = box
    ws.append(["", "Итого", f"{report.count} платеж(ей)", report.total])
    r = ws.max_row
    for c in range(1, 5):
        ws.cell(r, c).font = Font(bold=True)
        ws.cell(r, c).border = box
    ws.cell(r, 4).number_format = "#,##0.00"
    if report.by_method:
        ws.append([])
        ws.append(["", "По способам оплаты"])
        ws.cell(ws.max_row, 2).font = Font(bold=True)
        for method, amount in report.by_method.items():
            ws.append(["", "", method, amount])
            ws.cell(ws.max_row, 4).number_format = "#,##0.00"
    for letter, width in zip("ABCD", (6, 20, 26, 16)):
        ws.column_dimensions[letter].width = width
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "portrait"
    ws.print_title_rows = "4:4"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def payment_report_pdf(report: PaymentReport, config: Mapping[str, Any],
                       today: dt.date | None = None) -> bytes:
    supplier = requisites(config)
    today = today or dt.date.today()
    pdf = document(_report_title(report))
    header(pdf, supplier, "ОТЧЁТ О ПЛАТЕЖАХ", [
        f"лицевой счёт {report.account.number}",
        f"с {report.date_from:%d.%m.%Y} по {report.date_to:%d.%m.%Y}",
        f"сформирован {today:%d.%m.%Y}",
    ])
    pairs(pdf, payer_pairs(report.account)[:3], label_w=32)
    section(pdf, "Платежи за период")
    rows = [[str(n), f"{r.at:%d.%m.%Y %H:%M}", r.method, money(r.amount)]
            for n, r in enumerate(report.rows, start=1)]
    if not rows:
        rows = [["", "Платежей за период нет", "", ""]]
    table(pdf, ["№", "Дата и время", "Способ оплаты", "Сумма, руб."], rows,
           (12, 50, 76, 40), ("CENTER", "LEFT", "LEFT", "RIGHT"),
           total=["", "Итого", f"платежей: {report.count}", money(report.total)])
    if report.by_method:
        section(pdf, "По способам оплаты")
        table(pdf, ["Способ оплаты", "Сумма, руб."],
               [[method, money(amount)] for method, amount in report.by_method.items()],
               (138, 40), ("LEFT", "RIGHT"))
    pdf.ln(3)
    pdf.set_font("DejaVu", "", 8.5)
    pdf.multi_cell(0, 5, f"Всего оплачено за период: {money(report.total)} руб. "
                   f"({amount_in_words(report.total)}).", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
