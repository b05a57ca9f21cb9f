"""Bills and receipts as PDF (Cyrillic font embedded) with the payment QR code of
GOST R 56042-2014, the «квитанция на нужную сумму», and the resident's payment report.

A bill is read from the ledger in a fixed number of queries whatever its size: the account's
meters, the readings of the period, the previous readings, the charges and the payments of the
period. Money stays Decimal; the QR code carries the amount due in kopecks.
"""
from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF, FontFace
from fpdf.enums import TableCellFillMode
from num2words import num2words
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import (
    ZERO,
    Charge,
    ChargeKind,
    Invoice,
    Meter,
    Payment,
    PaymentMethod,
    PersonalAccount,
    Reading,
)
from app.services import payment_qr
from app.services.letters import FONTS
from app.services.periods import add_months
from app.services.russian import plural
from app.services.supplier import requisites

#: The largest sum of a «квитанция на нужную сумму».
MAX_AMOUNT = Decimal("1000000.00")
#: The longest period of a payment report.
MAX_REPORT_DAYS = 5 * 366
DEFAULT_TZ = "Europe/Moscow"
NBSP = "\u00a0"
MONTHS = ("январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август",
          "сентябрь", "октябрь", "ноябрь", "декабрь")
MONTHS_GENITIVE = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
                   "сентября", "октября", "ноября", "декабря")
#: Register -> its name, by the number of zones of the meter (ФСТ 1473-э).
ZONE_NAMES = {
    1: {"T1": "Круглосуточно"},
    2: {"T1": "День (T1)", "T2": "Ночь (T2)"},
    3: {"T1": "Пик (T1)", "T2": "Ночь (T2)", "T3": "Полупик (T3)"},
}
RANGE_NAMES = {1: "1-й", 2: "2-й", 3: "3-й"}
SERVICE = "Электроснабжение"


class AmountError(ValueError):
    """The amount typed for a receipt is not a payable sum; the message says why."""


class PeriodError(ValueError):
    """The period of a report is not usable; the message says why."""


# ---------------------------------------------------------------------------------------------
# Input


def parse_amount(text: str | None, maximum: Decimal = MAX_AMOUNT) -> Decimal:
    """A sum typed by a person (``1500``, ``1 500,50``, ``1500.5``) -> Decimal rubles with
    kopecks; refused with a Russian message when empty, not a number, not positive, finer than
    a kopeck or above ``maximum``."""
    raw = (text or "").strip()
    if not raw:
        raise AmountError("Укажите сумму к оплате.")
    cleaned = re.sub(r"[\s\u00a0\u202f]", "", raw)
    cleaned = re.sub(r"(?i)(руб\.?|р\.|₽)$", "", cleaned)
    if re.fullmatch(r"[-−–]\d+([.,]\d+)?", cleaned):
        raise AmountError("Сумма должна быть больше нуля.")
    if not re.fullmatch(r"\+?\d+([.,]\d+)?", cleaned):
        raise AmountError("Сумма указывается числом в рублях, например 1500 или 1500,50.")
    try:
        value = Decimal(cleaned.lstrip("+").replace(",", "."))
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise AmountError("Сумма указывается числом в рублях, например 1500 или 1500,50.") \
            from exc
    if value <= 0:
        raise AmountError("Сумма должна быть больше нуля.")
    if value != value.quantize(Decimal("0.01")):
        raise AmountError("Копейки указываются не более чем двумя знаками после запятой.")
    if value > maximum:
        raise AmountError(f"Сумма не может быть больше {money(maximum)} руб.")
    return value.quantize(Decimal("0.01"))


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


# ---------------------------------------------------------------------------------------------
# Words and numbers


def amount_in_words(amount: Decimal) -> str:
    """735.00 -> «Семьсот тридцать пять рублей 00 копеек» (rubles in words, kopecks in
    digits, as on Russian payment documents)."""
    value = Decimal(amount).quantize(Decimal("0.01"))
    sign = "минус " if value < 0 else ""
    value = abs(value)
    rubles, kopecks = int(value), int((value - int(value)) * 100)
    words = num2words(rubles, lang="ru")
    text = (f"{sign}{words} {plural(rubles, 'рубль', 'рубля', 'рублей')} "
            f"{kopecks:02d} {plural(kopecks, 'копейка', 'копейки', 'копеек')}")
    return text[0].upper() + text[1:]


def number(value: Decimal | int | None, places: int) -> str:
    if value is None:
        return ""
    return f"{value:,.{places}f}".replace(",", NBSP).replace(".", ",")


def money(value: Decimal | None) -> str:
    return number(value, 2)


def kwh(value: Decimal | None) -> str:
    if value is None:
        return ""
    whole = value == value.to_integral_value()
    return number(value, 0 if whole else 3)


def month_name(period: dt.date) -> str:
    return f"{MONTHS[period.month - 1]} {period.year} г."


def long_date(day: dt.date) -> str:
    return f"{day.day} {MONTHS_GENITIVE[day.month - 1]} {day.year} г."


def _utc_bounds(start: dt.date, end_exclusive: dt.date, tz: str) -> tuple[dt.datetime, ...]:
    zone = ZoneInfo(tz)
    return tuple(dt.datetime.combine(d, dt.time(), zone).astimezone(dt.timezone.utc)
                 for d in (start, end_exclusive))


def _local(value: dt.datetime, tz: str) -> dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


# ---------------------------------------------------------------------------------------------
# What a bill says


@dataclass(frozen=True)
class ReadingLine:
    meter: str
    zone: str
    previous: Decimal | None
    previous_period: dt.date | None
    current: Decimal | None
    kwh: Decimal | None


@dataclass(frozen=True)
class ChargeLine:
    service: str
    zone: str
    range_name: str
    kwh: Decimal | None
    rate: Decimal | None
    amount: Decimal
    kind: str


@dataclass(frozen=True)
class PaymentLine:
    at: dt.datetime
    method: str
    amount: Decimal


@dataclass
class BillData:
    invoice: Invoice
    account: PersonalAccount
    readings: list[ReadingLine] = field(default_factory=list)
    charges: list[ChargeLine] = field(default_factory=list)
    payments: list[PaymentLine] = field(default_factory=list)
    counter: tuple[str, str] | None = None

    @property
    def charged_total(self) -> Decimal:
        return sum((c.amount for c in self.charges), ZERO)

    @property
    def kwh_total(self) -> Decimal:
        return sum((c.kwh or ZERO for c in self.charges if c.kwh), Decimal("0"))


def _register(reading: Reading | None, zone: str) -> Decimal | None:
    return None if reading is None else getattr(reading, zone.lower())


def _consumed(previous: Decimal | None, current: Decimal | None, digits: int) -> Decimal | None:
    if previous is None or current is None:
        return None
    if current >= previous:
        return current - previous
    return current + Decimal(10) ** digits - previous  # the counter rolled over


def _latest(readings) -> dict[int, Reading]:
    """One reading per meter: the latest period, then the latest submitted."""
    chosen: dict[int, Reading] = {}
    for r in readings:
        best = chosen.get(r.meter_id)
        if best is None or (r.period, r.submitted_at or dt.datetime.min) > (
                best.period, best.submitted_at or dt.datetime.min):
            chosen[r.meter_id] = r
    return chosen


def bill_data(session: Session, invoice: Invoice, tz: str = DEFAULT_TZ) -> BillData:
    """The readings, charges and payments of an invoice's period: five queries."""
    account = invoice.account
    period = invoice.period
    meters = list(session.execute(
        select(Meter).where(Meter.account_id == account.id).order_by(Meter.serial)).scalars())
    ids = [m.id for m in meters]
    current = _latest(session.execute(
        select(Reading).where(Reading.meter_id.in_(ids), Reading.period == period,
                              Reading.status == "accepted")).scalars()) if ids else {}
    before = (select(Reading.meter_id, func.max(Reading.period).label("period"))
              .where(Reading.meter_id.in_(ids), Reading.period < period,
                     Reading.status == "accepted")
              .group_by(Reading.meter_id).subquery())
    previous = _latest(session.execute(
        select(Reading).join(before, (Reading.meter_id == before.c.meter_id)
                             & (Reading.period == before.c.period))
        .where(Reading.status == "accepted")).scalars()) if ids else {}
    charges = list(session.execute(
        select(Charge).where(Charge.account_id == account.id, Charge.period == period)
        .order_by(Charge.meter_id, Charge.zone, Charge.range_no, Charge.id)).scalars())
    start, end = _utc_bounds(period, add_months(period, 1), tz)
    paid_at = func.coalesce(Payment.paid_at, Payment.created_at)
    payments = session.execute(
        select(Payment.amount, Payment.method, paid_at.label("at"))
        .where(Payment.account_id == account.id, Payment.status == "succeeded",
               paid_at >= start, paid_at < end)
        .order_by(paid_at)).all()

    data = BillData(invoice, account)
    by_id = {m.id: m for m in meters}
    charged_meters = {c.meter_id for c in charges}
    for meter in meters:
        if not meter.active and meter.id not in charged_meters and meter.id not in current:
            continue
        now, last = current.get(meter.id), previous.get(meter.id)
        for zone in ("T1", "T2", "T3")[: meter.zones]:
            cur, prev = _register(now, zone), _register(last, zone)
            data.readings.append(ReadingLine(
                meter.serial, ZONE_NAMES[meter.zones][zone], prev,
                last.period if last else None, cur,
                _consumed(prev, cur, meter.digit_capacity)))
    single = [m for m in meters if m.active]
    if len(single) == 1 and single[0].zones == 1 and single[0].id in current:
        data.counter = (single[0].serial, f"{current[single[0].id].t1.normalize():f}")
    for c in charges:
        meter = by_id.get(c.meter_id)
        zones = meter.zones if meter else 1
        zone = ZONE_NAMES.get(zones, {}).get(c.zone or "", c.zone or "") if c.zone else ""
        service = SERVICE if c.kind != "adjustment" else "Корректировка"
        if c.kind in ("average", "norm"):
            service += f" ({ChargeKind.label(c.kind).lower()})"
        if c.note and c.kind == "adjustment":
            service += f": {c.note}"
        data.charges.append(ChargeLine(
            service, zone, RANGE_NAMES.get(c.range_no or 0, ""),
            c.kwh if c.kind != "adjustment" or c.kwh else None, c.rate, c.amount, c.kind))
    data.payments = [PaymentLine(_local(p.at, tz), PaymentMethod.label(p.method), p.amount)
                     for p in payments]
    return data


# ---------------------------------------------------------------------------------------------
# The QR code


def purpose(account: PersonalAccount, period: dt.date | None = None) -> str:
    text = f"Оплата электроэнергии по л/с {account.number}"
    return text + (f" за {MONTHS[period.month - 1]} {period.year}" if period else "")


def payer_fields(account: PersonalAccount) -> dict[str, Any]:
    return {"PersAcc": account.number, "PayerAddress": account.premises.address,
            "TechCode": payment_qr.TECH_CODE_UTILITIES}


def _issued(invoice: Invoice, tz: str) -> dt.date:
    return _local(invoice.issued_at or dt.datetime.now(dt.timezone.utc), tz).date()


def bill_qr_fields(data: BillData, supplier: Mapping[str, str],
                   tz: str = DEFAULT_TZ) -> dict[str, Any]:
    """The requisites of a bill's QR code; the sum is the amount due (none when nothing is
    due: the payer types it in the bank's app)."""
    invoice = data.invoice
    due = invoice.amount_due
    fields = {
        **payment_qr.payee_fields(supplier),
        "Sum": payment_qr.kopecks(due) if due > 0 else None,
        "Purpose": purpose(data.account, invoice.period),
        **payer_fields(data.account),
        "PaymPeriod": payment_qr.period_value(invoice.period),
        "QuittId": invoice.number,
        "QuittDate": f"{_issued(invoice, tz):%d.%m.%Y}",
    }
    if data.counter:
        fields["CounterId"], fields["CounterVal"] = data.counter
    return fields


def receipt_qr_fields(account: PersonalAccount, amount: Decimal,
                      supplier: Mapping[str, str]) -> dict[str, Any]:
    return {
        **payment_qr.payee_fields(supplier),
        "Sum": payment_qr.kopecks(amount),
        "Purpose": purpose(account),
        **payer_fields(account),
    }


# ---------------------------------------------------------------------------------------------
# PDF

INK = (20, 20, 20)
MUTED = (95, 105, 115)
ACCENT = (29, 79, 145)
HEAD_FILL = (226, 233, 243)
ROW_FILL = (246, 248, 251)
LINE = (120, 130, 140)


class _Pdf(FPDF):
    def footer(self):
        self.set_y(-10)
        self.set_font("DejaVu", "", 7)
        self.set_text_color(*MUTED)
        self.cell(0, 4, f"Стр. {self.page_no()} из {{nb}}", align="R")
        self.set_text_color(*INK)


def _document(title: str) -> FPDF:
    pdf = _Pdf(format="A4")
    pdf.set_margins(12, 10, 12)
    pdf.set_auto_page_break(True, margin=14)
    pdf.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.add_font("DejaVuMono", "", str(FONTS / "DejaVuSansMono.ttf"))
    pdf.set_title(title)
    pdf.set_author("Личный кабинет")
    pdf.set_creator("lk-portal")
    pdf.set_lang("ru")
    pdf.alias_nb_pages()
    pdf.add_page()
    pdf.set_draw_color(*LINE)
    pdf.set_text_color(*INK)
    return pdf


def _header(pdf: FPDF, supplier: Mapping[str, str], title: str, lines: list[str]) -> None:
    """The supplier's requisites on the left, the document's title box on the right."""
    top = pdf.get_y()
    left_w = pdf.epw * 0.58
    pdf.set_font("DejaVu", "B", 12)
    pdf.set_text_color(*ACCENT)
    pdf.multi_cell(left_w, 6, supplier["name"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*INK)
    pdf.set_font("DejaVu", "", 7.5)
    pdf.multi_cell(
        left_w, 3.8,
        f"ИНН {supplier['inn']}  КПП {supplier['kpp']}\n"
        f"Р/с {supplier['bank_account']} в {supplier['bank_name']}\n"
        f"БИК {supplier['bic']}  К/с {supplier['corr_account']}\n"
        f"Контактный центр: {supplier['phone']} (круглосуточно), {supplier['email']}",
        new_x="LMARGIN", new_y="NEXT")
    bottom_left = pdf.get_y()
    box_x, box_w = pdf.l_margin + left_w + 4, pdf.epw - left_w - 4
    pdf.set_xy(box_x, top)
    pdf.set_fill_color(*HEAD_FILL)
    pdf.set_font("DejaVu", "B", 12)
    pdf.cell(box_w, 8, title, align="C", fill=True, new_x="LEFT", new_y="NEXT")
    pdf.set_font("DejaVu", "", 8.5)
    for line in lines:
        pdf.cell(box_w, 4.6, line, align="C", new_x="LEFT", new_y="NEXT")
    box_bottom = pdf.get_y() + 1
    pdf.rect(box_x, top, box_w, box_bottom - top)
    pdf.set_y(max(bottom_left, box_bottom) + 2)
    pdf.set_draw_color(*ACCENT)
    pdf.set_line_width(0.6)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
    pdf.set_line_width(0.2)
    pdf.set_draw_color(*LINE)
    pdf.ln(3)


def _section(pdf: FPDF, caption: str) -> None:
    pdf.ln(1.2)
    pdf.set_font("DejaVu", "B", 9)
    pdf.set_text_color(*ACCENT)
    pdf.cell(0, 5, caption, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*INK)


def _table(pdf: FPDF, headings: list[str], rows: list[list[str]], widths: tuple,
           align: tuple, total: list[str] | None = None, size: float = 8) -> None:
    pdf.set_font("DejaVu", "", size)
    pdf.set_fill_color(255, 255, 255)  # the table's cells take the current fill colour
    style = FontFace(emphasis="BOLD", fill_color=HEAD_FILL, size_pt=size)
    with pdf.table(col_widths=widths, text_align=align, headings_style=style,
                   line_height=size * 0.45, padding=(0.7, 1.2), width=pdf.epw,
                   cell_fill_color=ROW_FILL, cell_fill_mode=TableCellFillMode.NONE,
                   borders_layout="ALL", first_row_as_headings=True) as table:
        head = table.row()
        for text in headings:
            head.cell(text, align="C")
        for values in rows:
            row = table.row()
            for text in values:
                row.cell(text)
        if total:
            row = table.row(style=FontFace(emphasis="BOLD", fill_color=HEAD_FILL))
            for text in total:
                row.cell(text)


def _pairs(pdf: FPDF, pairs: list[tuple[str, str]], label_w: float = 40,
           size: float = 8.5) -> None:
    for label, value in pairs:
        pdf.set_font("DejaVu", "", size)
        pdf.set_text_color(*MUTED)
        pdf.cell(label_w, 4.5, label)
        pdf.set_text_color(*INK)
        pdf.set_font("DejaVu", "B", size)
        pdf.multi_cell(0, 4.5, value, new_x="LMARGIN", new_y="NEXT")


def _qr_image(pdf: FPDF, payload: str, x: float, y: float, size: float) -> None:
    pdf.image(io.BytesIO(payment_qr.qr_png(payload)), x=x, y=y, w=size, h=size)


def _slip(pdf: FPDF, supplier: Mapping[str, str], account: PersonalAccount, amount: Decimal,
          payment_purpose: str, payload: str, period: dt.date | None = None,
          caption: str = "Сумма к оплате") -> None:
    """The tear-off payment slip (like form ПД-4): requisites, payer, sum in digits and in
    words, and the QR code on the right; a page break first if it does not fit."""
    height = 80
    if pdf.get_y() + height + 6 > pdf.h - pdf.b_margin:
        pdf.add_page()
    else:
        pdf.ln(3)
        pdf.set_font("DejaVu", "", 7)
        pdf.set_text_color(*MUTED)
        pdf.set_dash_pattern(dash=1.5, gap=1.2)
        y = pdf.get_y() + 2
        pdf.line(pdf.l_margin, y, pdf.l_margin + pdf.epw, y)
        pdf.set_dash_pattern()
        pdf.set_fill_color(255, 255, 255)
        pdf.set_xy(pdf.l_margin + pdf.epw / 2 - 18, y - 2)
        pdf.cell(36, 4, "✂ линия отреза", align="C", fill=True)
        pdf.set_text_color(*INK)
        pdf.set_y(y + 4)
    top = pdf.get_y()
    left_w, qr_w = 30, 50
    mid_x = pdf.l_margin + left_w
    mid_w = pdf.epw - left_w - qr_w
    pdf.set_line_width(0.3)
    pdf.rect(pdf.l_margin, top, pdf.epw, height)
    pdf.line(mid_x, top, mid_x, top + height)
    pdf.line(mid_x + mid_w, top, mid_x + mid_w, top + height)
    pdf.set_line_width(0.2)
    # Left column: the kind of the document and the cashier.
    pdf.set_xy(pdf.l_margin, top + 6)
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(left_w, 6, "КВИТАНЦИЯ", align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font("DejaVu", "", 7)
    pdf.multi_cell(left_w, 3.5, "на оплату\nэлектроэнергии", align="C", new_x="LEFT",
                   new_y="NEXT")
    pdf.set_xy(pdf.l_margin, top + height - 10)
    pdf.cell(left_w, 5, "Кассир", align="C")
    # Middle: requisites, payer and the sum.
    pdf.set_xy(mid_x + 2, top + 2)
    rows = [
        ("Получатель", supplier["name"]),
        ("ИНН / КПП", f"{supplier['inn']} / {supplier['kpp']}"),
        ("Р/с", supplier["bank_account"]),
        ("Банк", supplier["bank_name"]),
        ("БИК / К/с", f"{supplier['bic']} / {supplier['corr_account']}"),
        ("Плательщик", account.holder_name),
        ("Адрес", account.premises.address),
        ("Лицевой счёт", account.number),
        ("Назначение", payment_purpose),
    ]
    if period:
        rows.append(("Период оплаты", f"{period.month:02d}.{period.year}"))
    for label, value in rows:
        pdf.set_x(mid_x + 2)
        pdf.set_font("DejaVu", "", 7)
        pdf.set_text_color(*MUTED)
        pdf.cell(22, 4.2, label)
        pdf.set_text_color(*INK)
        pdf.set_font("DejaVu", "B" if label in ("Лицевой счёт", "Получатель") else "", 7.5)
        pdf.multi_cell(mid_w - 26, 4.2, value, align="L", new_x="LEFT", new_y="NEXT")
    pdf.ln(1)
    pdf.set_x(mid_x + 2)
    pdf.set_font("DejaVu", "", 8)
    pdf.cell(30, 7, f"{caption}:")
    pdf.set_font("DejaVu", "B", 13)
    pdf.cell(mid_w - 34, 7, f"{money(amount)} руб.", border="B", new_x="LEFT", new_y="NEXT")
    pdf.set_x(mid_x + 2)
    pdf.set_font("DejaVu", "", 7)
    pdf.set_text_color(*MUTED)
    pdf.cell(24, 4.5, "Сумма прописью:")
    pdf.set_text_color(*INK)
    pdf.multi_cell(mid_w - 28, 4.5, amount_in_words(amount) if amount > 0 else "—",
                   new_x="LEFT", new_y="NEXT")
    pdf.set_xy(mid_x + 2, top + height - 9)
    pdf.set_font("DejaVu", "", 7)
    pdf.cell(mid_w - 4, 5, "Подпись плательщика ______________    Дата «___» __________ 20___ г.")
    # Right: the QR code.
    size = qr_w - 6
    _qr_image(pdf, payload, mid_x + mid_w + 3, top + 4, size)
    pdf.set_xy(mid_x + mid_w + 1, top + 5 + size)
    pdf.set_font("DejaVu", "B", 7.5)
    pdf.multi_cell(qr_w - 2, 3.6, "Оплата по QR-коду", align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font("DejaVu", "", 6.5)
    pdf.multi_cell(qr_w - 2, 3.2,
                   "Отсканируйте код в приложении банка: реквизиты и сумма заполнятся сами. "
                   "ГОСТ Р 56042-2014.", align="C")
    pdf.set_y(top + height + 2)


def _payer_pairs(account: PersonalAccount) -> list[tuple[str, str]]:
    pairs = [("Лицевой счёт", account.number), ("Плательщик", account.holder_name),
             ("Адрес", account.premises.address)]
    if account.tariff_group is not None:
        pairs.append(("Тарифная группа", account.tariff_group.name))
    if account.branch is not None:
        pairs.append(("Филиал", account.branch.name))
    return pairs


def render_bill(data: BillData, supplier: Mapping[str, str], tz: str = DEFAULT_TZ) -> bytes:
    invoice, account = data.invoice, data.account
    payload = payment_qr.build_payload(bill_qr_fields(data, supplier, tz))
    issued = _issued(invoice, tz)
    pdf = _document(f"Счёт № {invoice.number} за {month_name(invoice.period)}")
    _header(pdf, supplier, f"СЧЁТ № {invoice.number}", [
        f"за электроэнергию, {month_name(invoice.period)}",
        f"дата выставления: {issued:%d.%m.%Y}",
        f"оплатить до: {invoice.due_date:%d.%m.%Y}",
    ])
    _pairs(pdf, _payer_pairs(account), label_w=32)

    _section(pdf, "Показания приборов учёта")
    if data.readings:
        _table(pdf, ["Счётчик №", "Зона суток", "Предыдущие показания", "Текущие показания",
                     "Расход, кВт·ч"],
               [[r.meter, r.zone,
                 (f"{kwh(r.previous)} ({r.previous_period:%m.%Y})" if r.previous is not None
                  else "—"),
                 kwh(r.current) if r.current is not None else "не переданы",
                 kwh(r.kwh) if r.kwh is not None else "—"] for r in data.readings],
               (26, 30, 38, 34, 24), ("LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT"))
    else:
        pdf.set_font("DejaVu", "", 8)
        pdf.cell(0, 5, "Приборов учёта нет: начисление по нормативу потребления.",
                 new_x="LMARGIN", new_y="NEXT")

    _section(pdf, f"Начисления за {month_name(invoice.period)}")
    rows = [[c.service, c.zone, c.range_name, kwh(c.kwh), number(c.rate, 2) if c.rate else "",
             money(c.amount)] for c in data.charges]
    if not rows:
        rows = [["Начислений за период нет", "", "", "", "", money(ZERO)]]
    _table(pdf, ["Услуга", "Зона суток", "Диапазон", "Объём, кВт·ч", "Тариф, руб./кВт·ч",
                 "Начислено, руб."], rows, (50, 28, 20, 24, 26, 26),
           ("LEFT", "LEFT", "CENTER", "RIGHT", "RIGHT", "RIGHT"),
           total=["Итого начислено", "", "", kwh(data.kwh_total), "", money(invoice.charged)])
    pdf.set_font("DejaVu", "", 6.5)
    pdf.set_text_color(*MUTED)
    pdf.multi_cell(0, 3.3, "Тарифы указаны с НДС, утверждены органом регулирования тарифов "
                   "субъекта РФ. Диапазон — диапазон объёмов потребления (социальная норма).",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*INK)

    if data.payments:
        _section(pdf, f"Платежи, поступившие за {month_name(invoice.period)}")
        _table(pdf, ["Дата", "Способ оплаты", "Сумма, руб."],
               [[f"{p.at:%d.%m.%Y}", p.method, money(p.amount)] for p in data.payments],
               (40, 80, 40), ("LEFT", "LEFT", "RIGHT"),
               total=["Итого", "", money(sum((p.amount for p in data.payments), ZERO))])

    _section(pdf, "Расчёт суммы к оплате")
    opening = invoice.opening_balance
    due = invoice.amount_due
    summary = [
        ["Задолженность (+) / переплата (−) на начало периода", money(opening)],
        [f"Начислено за {month_name(invoice.period)}", money(invoice.charged)],
        ["Оплачено", money(invoice.paid)],
    ]
    _table(pdf, ["Показатель", "Сумма, руб."], summary, (136, 42), ("LEFT", "RIGHT"),
           total=["ИТОГО К ОПЛАТЕ" if due > 0 else "Переплата на конец периода",
                  money(due if due > 0 else -due)], size=8.5)
    pdf.ln(1)
    pdf.set_font("DejaVu", "", 8.5)
    pdf.cell(32, 5, "Сумма прописью:")
    pdf.set_font("DejaVu", "B", 8.5)
    pdf.multi_cell(0, 5, amount_in_words(due) if due > 0 else "Ноль рублей 00 копеек",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 7)
    pdf.set_text_color(*MUTED)
    pdf.multi_cell(0, 3.5,
                   f"Оплатите до {invoice.due_date:%d.%m.%Y}. Показания принимаются с 15 по 25 "
                   f"число в личном кабинете и по телефону {supplier['phone']}. При оплате по "
                   "QR-коду реквизиты, лицевой счёт и сумма заполняются в приложении банка сами.",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*INK)
    _slip(pdf, supplier, account, due if due > 0 else ZERO, purpose(account, invoice.period),
          payload, period=invoice.period)
    return bytes(pdf.output())


def bill_pdf(session: Session, invoice: Invoice, config: Mapping[str, Any]) -> bytes:
    """The invoice as a printable bill with the payment QR code of the amount due."""
    tz = config.get("BABEL_DEFAULT_TIMEZONE", DEFAULT_TZ)
    return render_bill(bill_data(session, invoice, tz), requisites(config), tz)


def receipt_pdf(session: Session, account: PersonalAccount, amount: Decimal,
                config: Mapping[str, Any], today: dt.date | None = None) -> bytes:
    """The «квитанция на нужную сумму»: the payment slip of the account for ``amount``."""
    amount = parse_amount(f"{Decimal(amount):f}")  # the same limits as the form's
    supplier = requisites(config)
    today = today or dt.date.today()
    payload = payment_qr.build_payload(receipt_qr_fields(account, amount, supplier))
    pdf = _document(f"Квитанция на оплату по лицевому счёту {account.number}")
    _header(pdf, supplier, "КВИТАНЦИЯ НА ОПЛАТУ", [
        f"лицевой счёт {account.number}",
        f"сформирована {today:%d.%m.%Y}",
        "сумма указана плательщиком",
    ])
    _pairs(pdf, _payer_pairs(account), label_w=32)
    pdf.ln(2)
    pdf.set_font("DejaVu", "", 8.5)
    pdf.multi_cell(0, 4.5,
                   "Квитанция сформирована в личном кабинете на сумму, указанную плательщиком. "
                   "Платёж будет зачислен на лицевой счёт в счёт оплаты электроэнергии: "
                   "сначала погашается задолженность прошлых периодов, остаток учитывается как "
                   "аванс.", new_x="LMARGIN", new_y="NEXT")
    _slip(pdf, supplier, account, amount, purpose(account), payload, caption="Сумма")
    return bytes(pdf.output())


# ---------------------------------------------------------------------------------------------
# The payment report


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
    start, end = _utc_bounds(date_from, date_to + dt.timedelta(days=1), tz)
    paid_at = func.coalesce(Payment.paid_at, Payment.created_at)
    rows = session.execute(
        select(Payment.amount, Payment.method, paid_at.label("at"))
        .where(Payment.account_id == account.id, Payment.status == "succeeded",
               paid_at >= start, paid_at < end)
        .order_by(paid_at, Payment.id)).all()
    return PaymentReport(account, date_from, date_to,
                         [ReportRow(_local(r.at, tz), PaymentMethod.label(r.method), r.amount)
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
    header = ["№", "Дата и время", "Способ оплаты", "Сумма, руб."]
    ws.append([])
    ws.append(header)
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
    pdf = _document(_report_title(report))
    _header(pdf, supplier, "ОТЧЁТ О ПЛАТЕЖАХ", [
        f"лицевой счёт {report.account.number}",
        f"с {report.date_from:%d.%m.%Y} по {report.date_to:%d.%m.%Y}",
        f"сформирован {today:%d.%m.%Y}",
    ])
    _pairs(pdf, _payer_pairs(report.account)[:3], label_w=32)
    _section(pdf, "Платежи за период")
    rows = [[str(n), f"{r.at:%d.%m.%Y %H:%M}", r.method, money(r.amount)]
            for n, r in enumerate(report.rows, start=1)]
    if not rows:
        rows = [["", "Платежей за период нет", "", ""]]
    _table(pdf, ["№", "Дата и время", "Способ оплаты", "Сумма, руб."], rows,
           (12, 50, 76, 40), ("CENTER", "LEFT", "LEFT", "RIGHT"),
           total=["", "Итого", f"платежей: {report.count}", money(report.total)])
    if report.by_method:
        _section(pdf, "По способам оплаты")
        _table(pdf, ["Способ оплаты", "Сумма, руб."],
               [[method, money(amount)] for method, amount in report.by_method.items()],
               (138, 40), ("LEFT", "RIGHT"))
    pdf.ln(3)
    pdf.set_font("DejaVu", "", 8.5)
    pdf.multi_cell(0, 5, f"Всего оплачено за период: {money(report.total)} руб. "
                   f"({amount_in_words(report.total)}).", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
