"""The bill and the «квитанция на нужную сумму» as printed PDFs: the bill's tables, the amount
due in digits and in words, and the tear-off slip with the payment QR code of GOST R 56042-2014
(which carries the amount in kopecks)."""
from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from fpdf import FPDF
from sqlalchemy.orm import Session

from app.models import ZERO, Invoice, PersonalAccount
from app.services import payment_qr
from app.services.bill_data import DEFAULT_TZ, BillData, bill_data, issued_on
from app.services.pdf_layout import (
    INK,
    MUTED,
    document,
    header,
    pairs,
    payer_pairs,
    section,
    table,
)
from app.services.russian import amount_in_words, kwh, money, month_name, number
from app.services.supplier import requisites

#: The largest sum of a «квитанция на нужную сумму».
MAX_AMOUNT = Decimal("1000000.00")


class AmountError(ValueError):
    """The amount typed for a receipt is not a payable sum; the message says why."""


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


# ---------------------------------------------------------------------------------------------
# PDF


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


def render_bill(data: BillData, supplier: Mapping[str, str], tz: str = DEFAULT_TZ) -> bytes:
    invoice, account = data.invoice, data.account
    payload = payment_qr.build_payload(payment_qr.bill_qr_fields(data, supplier, tz))
    issued = issued_on(invoice, tz)
    pdf = document(f"Счёт № {invoice.number} за {month_name(invoice.period)}")
    header(pdf, supplier, f"СЧЁТ № {invoice.number}", [
        f"за электроэнергию, {month_name(invoice.period)}",
        f"дата выставления: {issued:%d.%m.%Y}",
        f"оплатить до: {invoice.due_date:%d.%m.%Y}",
    ])
    pairs(pdf, payer_pairs(account), label_w=32)

    section(pdf, "Показания приборов учёта")
    if data.readings:
        table(pdf, ["Счётчик №", "Зона суток", "Предыдущие показания", "Текущие показания",
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

    section(pdf, f"Начисления за {month_name(invoice.period)}")
    rows = [[c.service, c.zone, c.range_name, kwh(c.kwh), number(c.rate, 2) if c.rate else "",
             money(c.amount)] for c in data.charges]
    if not rows:
        rows = [["Начислений за период нет", "", "", "", "", money(ZERO)]]
    table(pdf, ["Услуга", "Зона суток", "Диапазон", "Объём, кВт·ч", "Тариф, руб./кВт·ч",
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
        section(pdf, f"Платежи, поступившие за {month_name(invoice.period)}")
        table(pdf, ["Дата", "Способ оплаты", "Сумма, руб."],
               [[f"{p.at:%d.%m.%Y}", p.method, money(p.amount)] for p in data.payments],
               (40, 80, 40), ("LEFT", "LEFT", "RIGHT"),
               total=["Итого", "", money(sum((p.amount for p in data.payments), ZERO))])

    section(pdf, "Расчёт суммы к оплате")
    opening = invoice.opening_balance
    due = invoice.amount_due
    summary = [
        ["Задолженность (+) / переплата (−) на начало периода", money(opening)],
        [f"Начислено за {month_name(invoice.period)}", money(invoice.charged)],
        ["Оплачено", money(invoice.paid)],
    ]
    table(pdf, ["Показатель", "Сумма, руб."], summary, (136, 42), ("LEFT", "RIGHT"),
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
    _slip(pdf, supplier, account, due if due > 0 else ZERO,
          payment_qr.purpose(account, invoice.period), payload, period=invoice.period)
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
    payload = payment_qr.build_payload(payment_qr.receipt_qr_fields(account, amount, supplier))
    pdf = document(f"Квитанция на оплату по лицевому счёту {account.number}")
    header(pdf, supplier, "КВИТАНЦИЯ НА ОПЛАТУ", [
        f"лицевой счёт {account.number}",
        f"сформирована {today:%d.%m.%Y}",
        "сумма указана плательщиком",
    ])
    pairs(pdf, payer_pairs(account), label_w=32)
    pdf.ln(2)
    pdf.set_font("DejaVu", "", 8.5)
    pdf.multi_cell(0, 4.5,
                   "Квитанция сформирована в личном кабинете на сумму, указанную плательщиком. "
                   "Платёж будет зачислен на лицевой счёт в счёт оплаты электроэнергии: "
                   "сначала погашается задолженность прошлых периодов, остаток учитывается как "
                   "аванс.", new_x="LMARGIN", new_y="NEXT")
    _slip(pdf, supplier, account, amount, payment_qr.purpose(account), payload, caption="Сумма")
    return bytes(pdf.output())
