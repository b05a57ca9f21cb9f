"""The resident's bills page (/cabinet/bills/<account id>): the account's invoices with their
PDF bills, the «квитанция на нужную сумму» and the payment report (.xlsx or PDF) for a chosen
period. An account or invoice not bound to the signed-in user is a 404 on every route, the same
as a missing one; bad input shows the page again with the reason, never a file."""
from __future__ import annotations

import datetime as dt
import io

from flask import abort, current_app, request, send_file
from flask_appbuilder import BaseView, expose, has_access
from flask_login import current_user
from sqlalchemy import select

from app.extensions import db, reads_only
from app.models import Invoice, PersonalAccount
from app.services import accounts, audit, bill_documents, payment_reports, periods
from app.views import formats
from app.views.base import XLSX_MIMETYPE, content_disposition
from app.views.cabinet import entrance

PDF_MIMETYPE = "application/pdf"
#: Invoices listed on the page, newest first.
INVOICES_SHOWN = 36
REPORT_FORMATS = ("xlsx", "pdf")


def _default_period(today: dt.date) -> tuple[dt.date, dt.date]:
    """The report's default: from the first day of the month a year ago to today."""
    return today.replace(year=today.year - 1, day=1), today


def read_date(text: str | None, what: str,
              error: type[Exception] = payment_reports.PeriodError) -> dt.date:
    """A date from one of our date inputs: «05.12.2026» as it asks, or ISO from an older link
    or a browser's own date input. ``what`` names the field in the reason («с», «начала
    периода»); ``error`` is the caller's refusal, so the page shows it and changes nothing."""
    if not (text or "").strip():
        raise error(f"Укажите дату {what}.")
    day = formats.parse_date(text)
    if day is None:
        raise error(f"Дата {what} указывается в виде ДД.ММ.ГГГГ, например 05.12.2026.")
    return day


def read_period(raw_from: str | None, raw_to: str | None) -> tuple[dt.date, dt.date]:
    """The «с» and «по» of a payments page or report, then the service's rule (in order, at
    most five years); raises payment_reports.PeriodError with the reason."""
    start, end = read_date(raw_from, "«с»"), read_date(raw_to, "«по»")
    return payment_reports.parse_period(start.isoformat(), end.isoformat())


def shown_date(text: str) -> dt.date | str:
    """What a date input shows again: a date people read («01.11.2026», even when an old link
    gave ISO), or the text as typed when it is not one, for the person to correct."""
    return formats.parse_date(text) or text


class BillView(BaseView):
    route_base = "/cabinet/bills"
    default_view = "account"

    def _account(self, account_id: int) -> PersonalAccount:
        account = accounts.bound_account(db.session, current_user.id, account_id)
        if account is None:
            abort(404)
        return account

    def _page(self, account: PersonalAccount, status: int = 200, **form):
        invoices = list(db.session.execute(
            select(Invoice).where(Invoice.account_id == account.id)
            .order_by(Invoice.period.desc()).limit(INVOICES_SHOWN)).scalars())
        start, end = _default_period(formats.local_today())
        values = {"amount": "", "amount_error": None, "date_from": start, "date_to": end,
                  "format": "xlsx", "report_error": None, **form}
        return self.render_template(
            "cabinet/bills.html", account=account, invoices=invoices, form=values,
            max_amount=formats.rubles(bill_documents.MAX_AMOUNT),
            title=f"Счета и квитанции по лицевому счёту {account.number}",
        ), status

    def _download(self, account: PersonalAccount, body: bytes, name: str, russian_name: str,
                  mimetype: str, what: str, **details):
        kind = name.rsplit(".", 1)[-1]
        audit.record(db.session, f"export.{kind}", actor_id=current_user.id,
                     object_type="account", object_id=account.id, ip=request.remote_addr,
                     details={"page": "bills", "document": what, **details})
        response = send_file(io.BytesIO(body), mimetype=mimetype, as_attachment=True,
                             download_name=name)
        response.headers["Content-Disposition"] = content_disposition(russian_name,
                                                                      fallback=name)
        response.headers["Cache-Control"] = "private, no-store"
        return response

    @expose("/<int:account_id>")
    @entrance("ResidentAuthView.signin")
    @has_access
    @reads_only
    def account(self, account_id: int):
        return self._page(self._account(account_id))

    @expose("/invoice/<int:invoice_id>.pdf")
    @entrance("ResidentAuthView.signin")
    @has_access
    def invoice(self, invoice_id: int):
        invoice = db.session.get(Invoice, invoice_id)
        if invoice is None:
            abort(404)
        account = self._account(invoice.account_id)
        body = bill_documents.bill_pdf(db.session, invoice, current_app.config)
        name = f"bill_{account.number}_{invoice.period:%Y-%m}.pdf"
        return self._download(account, body, name,
                              f"Счёт_{account.number}_{invoice.period:%Y-%m}.pdf",
                              PDF_MIMETYPE, "bill", invoice=invoice.number)

    @expose("/<int:account_id>/receipt", methods=["POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def receipt(self, account_id: int):
        account = self._account(account_id)
        text = request.form.get("amount", "")
        try:
            amount = bill_documents.parse_amount(text)
        except bill_documents.AmountError as exc:
            return self._page(account, 400, amount=text[:40], amount_error=str(exc))
        body = bill_documents.receipt_pdf(db.session, account, amount, current_app.config,
                                 today=formats.local_today())
        name = f"receipt_{account.number}_{amount:.2f}.pdf"
        return self._download(account, body, name,
                              f"Квитанция_{account.number}_{amount:.2f}.pdf",
                              PDF_MIMETYPE, "receipt", amount=f"{amount:.2f}")

    @expose("/<int:account_id>/report")
    @entrance("ResidentAuthView.signin")
    @has_access
    def report(self, account_id: int):
        account = self._account(account_id)
        raw_from, raw_to = request.args.get("from", ""), request.args.get("to", "")
        kind = request.args.get("format", "xlsx")
        form = {"date_from": shown_date(raw_from[:20]), "date_to": shown_date(raw_to[:20]),
                "format": kind if kind in REPORT_FORMATS else "xlsx"}
        try:
            if kind not in REPORT_FORMATS:
                raise payment_reports.PeriodError("Выберите формат отчёта: Excel (.xlsx) или PDF.")
            start, end = read_period(raw_from, raw_to)
        except payment_reports.PeriodError as exc:
            return self._page(account, 400, report_error=str(exc), **form)
        tz = current_app.config.get("BABEL_DEFAULT_TIMEZONE", periods.DEFAULT_TZ)
        data = payment_reports.payment_report(db.session, account, start, end, tz)
        stem = f"{account.number}_{start.isoformat()}_{end.isoformat()}"
        if kind == "pdf":
            body = payment_reports.payment_report_pdf(data, current_app.config,
                                            today=formats.local_today())
            mimetype = PDF_MIMETYPE
        else:
            body, mimetype = payment_reports.payment_report_xlsx(data), XLSX_MIMETYPE
        return self._download(account, body, f"payments_{stem}.{kind}",
                              f"Платежи_{stem}.{kind}", mimetype, "payment_report",
                              rows=data.count)
