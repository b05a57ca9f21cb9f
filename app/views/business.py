"""The organization's cabinet (/business/): contracts with their balances, each point of supply
(personal account) with its charges and bills per month and its payments, bill downloads,
meter readings, the organization's payments, and messages to its branch.

Every id from a URL or a form goes through app.services.accounts.organization_account*: a row
of another organization is a 404, the same as a missing one. The screens reuse the resident
cabinet's services (bills, readings, consumption); only the access rule differs."""
from __future__ import annotations

import datetime as dt
import io

from flask import abort, current_app, flash, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_login import current_user

from app.extensions import db, reads_only
from app.models import ZERO, ContractStatus, PersonalAccount
from app.services import accounts, audit, bill_documents, consumption, payment_reports, periods
from app.services import feedback as feedback_service
from app.services.readings import Rules
from app.views import formats
from app.views import readings as readings_views
from app.views.base import content_disposition
from app.views.bills import PDF_MIMETYPE, read_period, shown_date
from app.views.cabinet import entrance

SIGN_IN = "BusinessAuthView.signin"


def _default_period(today: dt.date) -> tuple[dt.date, dt.date]:
    """The payments page's default: from the first day of the month a year ago to today."""
    return today.replace(year=today.year - 1, day=1), today


def _organization_id() -> int | None:
    return current_user.organization_id


def _account(account_id: int) -> PersonalAccount:
    """The organization's account, or a 404 like a missing one."""
    account = accounts.organization_account(db.session, _organization_id(), account_id)
    if account is None:
        abort(404)
    return account


class BusinessView(BaseView):
    route_base = "/business"
    default_view = "home"

    @expose("/")
    @entrance(SIGN_IN)
    @has_access
    @reads_only
    def home(self):
        rules = Rules.from_config(current_app.config)
        overview = accounts.organization_overview(db.session, _organization_id(),
                                                  formats.local_today(), rules.window)
        return self.render_template("business/home.html", overview=overview, rules=rules,
                                    contract_status=ContractStatus.label,
                                    title="Договоры и расчёты")

    @expose("/account/<int:account_id>")
    @entrance(SIGN_IN)
    @has_access
    @reads_only
    def account(self, account_id: int):
        account = _account(account_id)
        today = formats.local_today()
        summary, = accounts.summarize(db.session, [account.id])
        charged, paid = summary.charged, summary.paid
        months = accounts.account_months(db.session, account, today)
        since, _last = consumption.window(today)
        tz = current_app.config.get("BABEL_DEFAULT_TIMEZONE", periods.DEFAULT_TZ)
        payments = payment_reports.payment_report(db.session, account, since, today, tz)
        return self.render_template(
            "business/account.html", account=account, months=months, payments=payments,
            charged=charged, paid=paid, balance=charged - paid,
            has_meters=any(m.active for m in account.meters),
            title=f"Точка поставки {account.number}")

    @expose("/invoice/<int:invoice_id>.pdf")
    @entrance(SIGN_IN)
    @has_access
    def invoice(self, invoice_id: int):
        invoice = accounts.organization_invoice(db.session, _organization_id(), invoice_id)
        if invoice is None:
            abort(404)
        account = invoice.account
        body = bill_documents.bill_pdf(db.session, invoice, current_app.config)
        audit.record(db.session, "export.pdf", actor_id=current_user.id,
                     object_type="account", object_id=account.id, ip=request.remote_addr,
                     details={"page": "business", "document": "bill",
                              "invoice": invoice.number})
        name = f"bill_{account.number}_{invoice.period:%Y-%m}.pdf"
        response = send_file(io.BytesIO(body), mimetype=PDF_MIMETYPE, as_attachment=True,
                             download_name=name)
        response.headers["Content-Disposition"] = content_disposition(
            f"Счёт_{account.number}_{invoice.period:%Y-%m}.pdf", fallback=name)
        response.headers["Cache-Control"] = "private, no-store"
        return response

    @expose("/readings/<int:account_id>", methods=["GET", "POST"])
    @entrance(SIGN_IN)
    @has_access
    def readings(self, account_id: int):
        account = _account(account_id)
        meters = sorted((m for m in account.meters if m.active), key=lambda m: m.serial)
        return readings_views.readings_flow(
            account, meters, template="business/readings.html", source="web",
            user_id=current_user.id,
            done_url=url_for(".account", account_id=account.id),
            title=f"Показания по точке поставки {account.number}")

    @expose("/payments")
    @entrance(SIGN_IN)
    @has_access
    @reads_only
    def payments(self):
        start, end = _default_period(formats.local_today())
        raw_from = request.args.get("from", formats.date(start))[:20]
        raw_to = request.args.get("to", formats.date(end))[:20]
        error, rows = None, []
        try:
            start, end = read_period(raw_from, raw_to)
        except payment_reports.PeriodError as exc:
            error = str(exc)
        else:
            tz = current_app.config.get("BABEL_DEFAULT_TIMEZONE", periods.DEFAULT_TZ)
            rows = accounts.organization_payments(db.session, _organization_id(), start,
                                                  end, tz)
        return self.render_template(
            "business/payments.html", rows=rows, total=sum((r.amount for r in rows), ZERO),
            date_from=shown_date(raw_from), date_to=shown_date(raw_to), error=error,
            title="Платежи организации",
        ), 400 if error else 200

    @expose("/feedback", methods=["GET", "POST"])
    @entrance(SIGN_IN)
    @has_access
    def feedback(self):
        organization = current_user.organization
        form = {"topic": "", "message": "", "account": request.args.get("account", "")}
        errors: dict[str, str] = {}
        if request.method == "POST":
            form = {key: request.form.get(key, "") for key in form}
            if organization is None:
                abort(404)
            try:
                sent = feedback_service.create(
                    db.session, user_id=current_user.id, branch_id=organization.branch_id,
                    topic=form["topic"], message=form["message"], account=form["account"],
                    allowed_accounts=accounts.organization_account_ids(db.session,
                                                                       organization.id),
                    ip=request.remote_addr)
            except feedback_service.FeedbackError as exc:
                errors = exc.errors
                flash("Обращение не отправлено: исправьте отмеченные поля.", "danger")
            else:
                flash(f"Обращение № {sent.id} отправлено в {organization.branch.name}. "
                      "Ответ появится на этой странице.", "success")
                return redirect(url_for(".feedback"))
        contracts = accounts.organization_contracts(db.session, _organization_id())
        return self.render_template(
            "business/feedback.html", form=form, errors=errors,
            choices=[a for c in contracts for a in sorted(c.accounts, key=lambda a: a.number)],
            messages=feedback_service.history(
                db.session, feedback_service.organization_authors(_organization_id())),
            topics=feedback_service.COMMON_TOPICS, status_label=feedback_service.status_label,
            topic_max=feedback_service.TOPIC_MAX, message_max=feedback_service.MESSAGE_MAX,
            organization=organization, title="Обращения в филиал",
        ), 400 if errors else 200
