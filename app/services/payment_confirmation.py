"""The printable confirmation of a succeeded card payment (PDF), one line per account."""
from __future__ import annotations

from app.models import PaymentMethod
from app.services.payment_states import OrderState
from app.services.russian import money


def confirmation_pdf(state: OrderState, supplier: dict, paid_at_text: str) -> bytes:
    """A printable confirmation of a succeeded payment, each account's part on its own line."""
    from fpdf import FPDF

    from app.services.letters import FONTS

    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    pdf.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_title("Подтверждение оплаты")
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 12)
    pdf.cell(0, 7, supplier["name"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    pdf.cell(0, 5, f"ИНН {supplier['inn']}, КПП {supplier['kpp']} · контактный центр "
             f"{supplier['phone']}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font("DejaVu", "B", 14)
    pdf.cell(0, 8, "Подтверждение онлайн-оплаты", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("DejaVu", "", 10)
    order = state.order
    for caption, value in (("Дата и время оплаты", paid_at_text),
                           ("Способ оплаты", PaymentMethod.label(state.method)),
                           ("Номер операции", order.external_id or ""),
                           ("Номер заказа", order.order_key)):
        pdf.cell(55, 7, caption, border=1)
        pdf.cell(0, 7, value, border=1, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(45, 8, "Лицевой счёт", border=1)
    pdf.cell(95, 8, "Адрес", border=1)
    pdf.cell(0, 8, "Сумма, руб.", border=1, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    for part in state.parts:
        note = " (возвращено)" if part.status == "refunded" else ""
        pdf.cell(45, 8, part.account_number, border=1)
        pdf.cell(95, 8, (part.address[:58] + note), border=1)
        pdf.cell(0, 8, money(part.amount), border=1, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "B", 10)
    pdf.cell(140, 8, "Итого", border=1)
    pdf.cell(0, 8, money(state.amount), border=1, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("DejaVu", "", 9)
    pdf.multi_cell(0, 5, "Оплата электроэнергии. Кассовый чек по 54-ФЗ с разбивкой по лицевым "
                   "счетам направлен платёжной системой на указанные в личном кабинете "
                   "электронную почту или телефон. Платёж зачислен на лицевые счета в момент "
                   "оплаты.", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
