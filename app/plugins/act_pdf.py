"""Built-in plugin: the reconciliation act as PDF (A4 portrait, Cyrillic font embedded).

The document, its fonts, colours and the supplier's header are the bills' own
(app.services.pdf_layout), so every printed paper of the portal looks the same. The table has the
two halves side by side; its two heading rows repeat on every page.
"""
from __future__ import annotations

from typing import IO

from fpdf import FontFace
from fpdf.enums import TableCellFillMode

from app.plugins import hookimpl
from app.services.pdf_layout import HEAD_FILL, INK, MUTED, document, header
from app.services.russian import money

#: Column widths (mm) of one half: № п/п | Дата | Документ | Дебет | Кредит.
HALF = ("№ п/п", "Дата", "Документ", "Дебет", "Кредит")
WIDTHS = (6, 17, 36, 17, 17)
SIZE = 6.5


class PdfActExporter:
    format = "pdf"
    mimetype = "application/pdf"
    extension = "pdf"

    def __repr__(self) -> str:
        return "app.plugins.act_pdf"

    def export(self, act_data, stream: IO[bytes]) -> None:
        stream.write(render_act(act_data))


def _amount(value) -> str:
    return "" if value is None else money(value)


def render_act(data) -> bytes:
    pdf = document(data.title)
    header(pdf, data.supplier, "АКТ СВЕРКИ", [
        "взаимных расчётов",
        data.period_line,
        data.contract_line,
    ])
    pdf.set_font("DejaVu", "B", 10)
    pdf.multi_cell(0, 5, f"{data.heading} {data.period_line}\n{data.parties_line}\n"
                   f"{data.contract_line}", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("DejaVu", "", 8.5)
    pdf.multi_cell(0, 4.4, data.preamble, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    bold = FontFace(emphasis="BOLD", fill_color=HEAD_FILL, size_pt=SIZE)
    total_style = FontFace(emphasis="BOLD", size_pt=SIZE)
    pdf.set_font("DejaVu", "", SIZE)
    pdf.set_fill_color(255, 255, 255)
    align = ("CENTER", "CENTER", "LEFT", "RIGHT", "RIGHT") * 2
    with pdf.table(col_widths=WIDTHS * 2, text_align=align, headings_style=bold,
                   line_height=SIZE * 0.45, padding=(0.6, 0.8), width=pdf.epw,
                   cell_fill_mode=TableCellFillMode.NONE, borders_layout="ALL",
                   num_heading_rows=2, repeat_headings=1) as table:
        sides = table.row()
        sides.cell(data.supplier_side, colspan=5, align="C")
        sides.cell(data.customer_side, colspan=5, align="C")
        head = table.row()
        for text in HALF * 2:
            head.cell(text, align="C")

        def balance(label: str, debit, credit) -> None:
            row = table.row(style=total_style)
            row.cell(label, colspan=3, align="L")
            row.cell(_amount(debit))
            row.cell(_amount(credit))
            row.cell(label, colspan=3, align="L")
            row.cell("")
            row.cell("")

        balance("Сальдо начальное", *data.split(data.opening))
        for n, act_row in enumerate(data.rows, start=1):
            row = table.row()
            for text in (str(n), f"{act_row.date:%d.%m.%Y}", act_row.document,
                         _amount(act_row.debit), _amount(act_row.credit), "", "", "", "", ""):
                row.cell(text)
        balance("Обороты за период", data.debit_total, data.credit_total)
        balance("Сальдо конечное", *data.split(data.closing))

    pdf.ln(3)
    pdf.set_font("DejaVu", "B", 8.5)
    pdf.multi_cell(0, 4.6, data.conclusion, new_x="LMARGIN", new_y="NEXT")
    _signatures(pdf, data)
    return bytes(pdf.output())


def _signatures(pdf, data) -> None:
    """Both parties' blocks side by side: who, position, signature and name, the seal."""
    height = 40
    if pdf.get_y() + height > pdf.h - pdf.b_margin:
        pdf.add_page()
    pdf.ln(6)
    top = pdf.get_y()
    half = pdf.epw / 2
    for index, (party, signer) in enumerate(((data.supplier["name"], ""),
                                             (data.customer, data.customer_signer or ""))):
        x = pdf.l_margin + index * half
        pdf.set_xy(x, top)
        pdf.set_font("DejaVu", "B", 8.5)
        pdf.multi_cell(half - 6, 4.4, f"От {party}", new_x="LEFT", new_y="NEXT")
        pdf.ln(5)
        pdf.set_x(x)
        pdf.set_font("DejaVu", "", 8.5)
        pdf.cell(half - 6, 5, "_" * 30, new_x="LEFT", new_y="NEXT")
        _caption(pdf, x, half, "(должность)")
        pdf.ln(4)
        pdf.set_x(x)
        name = signer or "_" * 22
        pdf.cell(half - 6, 5, f"{'_' * 18} / {name} /", new_x="LEFT", new_y="NEXT")
        _caption(pdf, x, half, "(подпись)                     (Ф. И. О.)")
        pdf.ln(3)
        pdf.set_x(x)
        pdf.set_font("DejaVu", "", 8.5)
        pdf.cell(half - 6, 5, "М.П.")


def _caption(pdf, x: float, half: float, text: str) -> None:
    pdf.set_x(x)
    pdf.set_font("DejaVu", "", 6.5)
    pdf.set_text_color(*MUTED)
    pdf.cell(half - 6, 3, text, new_x="LEFT", new_y="NEXT")
    pdf.set_text_color(*INK)
    pdf.set_font("DejaVu", "", 8.5)


@hookimpl
def register_act_exporters():
    return [PdfActExporter()]
