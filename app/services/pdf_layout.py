"""The printed look every PDF of the portal shares: A4 with the Cyrillic font embedded, the
supplier's header, section captions, tables and label/value pairs, a page-count footer."""
from __future__ import annotations

from collections.abc import Mapping

from fpdf import FPDF, FontFace
from fpdf.enums import TableCellFillMode

from app.models import PersonalAccount
from app.services.letters import FONTS

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


def document(title: str) -> FPDF:
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


def header(pdf: FPDF, supplier: Mapping[str, str], title: str, lines: list[str]) -> None:
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


def section(pdf: FPDF, caption: str) -> None:
    pdf.ln(1.2)
    pdf.set_font("DejaVu", "B", 9)
    pdf.set_text_color(*ACCENT)
    pdf.cell(0, 5, caption, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*INK)


def table(pdf: FPDF, headings: list[str], rows: list[list[str]], widths: tuple,
           align: tuple, total: list[str] | None = None, size: float = 8) -> None:
    pdf.set_font("DejaVu", "", size)
    pdf.set_fill_color(255, 255, 255)  # the table's cells take the current fill colour
    style = FontFace(emphasis="BOLD", fill_color=HEAD_FILL, size_pt=size)
    with pdf.table(col_widths=widths, text_align=align, headings_style=style,
                   line_height=size * 0.45, padding=(0.7, 1.2), width=pdf.epw,
                   cell_fill_color=ROW_FILL, cell_fill_mode=TableCellFillMode.NONE,
                   borders_layout="ALL", first_row_as_headings=True) as grid:
        head = grid.row()
        for text in headings:
            head.cell(text, align="C")
        for values in rows:
            row = grid.row()
            for text in values:
                row.cell(text)
        if total:
            row = grid.row(style=FontFace(emphasis="BOLD", fill_color=HEAD_FILL))
            for text in total:
                row.cell(text)


def pairs(pdf: FPDF, pairs: list[tuple[str, str]], label_w: float = 40,
           size: float = 8.5) -> None:
    for label, value in pairs:
        pdf.set_font("DejaVu", "", size)
        pdf.set_text_color(*MUTED)
        pdf.cell(label_w, 4.5, label)
        pdf.set_text_color(*INK)
        pdf.set_font("DejaVu", "B", size)
        pdf.multi_cell(0, 4.5, value, new_x="LMARGIN", new_y="NEXT")


def payer_pairs(account: PersonalAccount) -> list[tuple[str, str]]:
    """Who pays, as a document's heading lists it: account, holder, address, group, branch."""
    rows = [("Лицевой счёт", account.number), ("Плательщик", account.holder_name),
            ("Адрес", account.premises.address)]
    if account.tariff_group is not None:
        rows.append(("Тарифная группа", account.tariff_group.name))
    if account.branch is not None:
        rows.append(("Филиал", account.branch.name))
    return rows
