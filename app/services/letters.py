"""Printable letters (PDF, Cyrillic font embedded): the cover letter with an organization's
credentials for the registered-mail option."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from fpdf import FPDF

FONTS = Path(__file__).resolve().parent.parent / "data" / "fonts"


def _document() -> FPDF:
    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    pdf.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.add_font("DejaVuMono", "", str(FONTS / "DejaVuSansMono.ttf"))
    pdf.set_title("Учётные данные для личного кабинета")
    pdf.add_page()
    return pdf


def credentials_letter(*, supplier: dict, organization: dict, branch_name: str, login: str,
                       password: str, portal_url: str, today: dt.date | None = None) -> bytes:
    """The cover letter: who it is for, the login, the password, and how to sign in."""
    today = today or dt.date.today()
    pdf = _document()
    pdf.set_font("DejaVu", "B", 12)
    pdf.cell(0, 7, supplier["name"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    pdf.cell(0, 5, f"ИНН {supplier['inn']}, КПП {supplier['kpp']} · филиал {branch_name}",
             new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 5, f"Контактный центр {supplier['phone']}, {supplier['email']}",
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font("DejaVu", "", 11)
    pdf.multi_cell(0, 6, f"{organization['name']}\nИНН {organization['inn']}"
                   + (f"\n{organization['address']}" if organization.get("address") else ""),
                   align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("DejaVu", "B", 13)
    pdf.cell(0, 8, "Сопроводительное письмо", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 10)
    pdf.cell(0, 6, f"к договору энергоснабжения, от {today:%d.%m.%Y}", align="C",
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("DejaVu", "", 11)
    pdf.multi_cell(
        0, 6,
        "По вашему заявлению организация подключена к системе дистанционного обслуживания. "
        "Ниже указаны учётные данные для входа в личный кабинет юридического лица.",
        new_x="LMARGIN", new_y="NEXT",
    )
    pdf.ln(4)
    for caption, value in (("Адрес входа", portal_url), ("Филиал", branch_name),
                           ("Логин", login), ("Пароль", password)):
        pdf.set_font("DejaVu", "", 11)
        pdf.cell(45, 9, caption, border=1)
        pdf.set_font("DejaVuMono" if caption in ("Логин", "Пароль") else "DejaVu", "", 12)
        pdf.cell(0, 9, value, border=1, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    pdf.set_font("DejaVu", "", 10)
    pdf.multi_cell(
        0, 5.5,
        "При первом входе система попросит сменить пароль. Храните письмо в месте, недоступном "
        "посторонним, и не передавайте учётные данные третьим лицам. Сотрудники компании "
        "никогда не спрашивают пароль. Если письмо получено вскрытым или вы не запрашивали "
        f"подключение, позвоните по телефону {supplier['phone']}.",
        new_x="LMARGIN", new_y="NEXT",
    )
    pdf.ln(14)
    pdf.set_font("DejaVu", "", 10)
    pdf.cell(95, 6, "Представитель филиала")
    pdf.cell(0, 6, "_______________ / _______________", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(95, 6, "")
    pdf.cell(0, 6, "М.П.", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
