"""The daily reconciliation of card payments (finance): per day, what the payment gateways
confirmed as paid against what the portal credited to personal accounts. A difference means
a payment the ledger did not take (an amount mismatch, say) or the reverse: look it up in the
payments list and the audit journal."""
from __future__ import annotations

import datetime as dt
import io

from flask import current_app, make_response, request
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access

from app.extensions import db
from app.services import payment_reconciliation
from app.views.admin_journal import AUDIT_ACTIONS
from app.views.base import XLSX_MIMETYPE, content_disposition
from app.views.formats import local_today

#: Days shown when no period is asked for.
DEFAULT_DAYS = 14
#: Longest period of one page.
MAX_DAYS = 366

AUDIT_ACTIONS.update({
    "payment.created": "Создан онлайн-платёж",
    "payment.succeeded": "Онлайн-платёж зачислен",
    "payment.canceled": "Онлайн-платёж отменён",
    "payment.refunded": "Возврат онлайн-платежа",
    "payment.refund_failed": "Возврат платежа не выполнен",
    "payment.gateway_error": "Платёжная система не ответила",
    "payment.amount_mismatch": "Сумма в платёжной системе не совпала с платежом",
    "payment.notification_rejected": "Отклонено уведомление платёжной системы",
})


def _date(raw: str | None, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(raw) if raw else default
    except ValueError:
        return default


class PaymentReconciliationView(BaseView):
    route_base = "/paymentreconciliationview"
    default_view = "list"
    list_title = "Сверка платежей по дням"

    @expose("/list/")
    @has_access
    def list(self):
        date_from, date_to = _period()
        days = _days(date_from, date_to)
        return self.render_template(
            "payments/reconciliation.html", days=days,
            totals=payment_reconciliation.reconciliation_total(days),
            date_from=date_from, date_to=date_to, title=self.list_title)

    @expose("/export.xlsx")
    @has_access
    def export_xlsx(self):
        date_from, date_to = _period()
        stream = io.BytesIO()
        payment_reconciliation.reconciliation_xlsx(_days(date_from, date_to), stream)
        response = make_response(stream.getvalue())
        response.headers["Content-Type"] = XLSX_MIMETYPE
        name = f"{date_from:%d.%m.%Y}-{date_to:%d.%m.%Y}.xlsx"
        response.headers["Content-Disposition"] = content_disposition(
            f"Сверка платежей {name}", fallback=f"payments-reconciliation-{name}")
        return response


def _period() -> tuple[dt.date, dt.date]:
    """The asked days (the last DEFAULT_DAYS by default), in order, at most MAX_DAYS."""
    today = local_today()
    date_to = _date(request.args.get("date_to"), today)
    date_from = _date(request.args.get("date_from"),
                      date_to - dt.timedelta(days=DEFAULT_DAYS - 1))
    if date_from > date_to:
        date_from, date_to = date_to, date_from
    return max(date_from, date_to - dt.timedelta(days=MAX_DAYS - 1)), date_to


def _days(date_from: dt.date, date_to: dt.date) -> list[payment_reconciliation.ReconciliationDay]:
    return payment_reconciliation.reconciliation(db.session, date_from, date_to,
                                                 current_app.config.get("BABEL_DEFAULT_TIMEZONE",
                                                                        "Europe/Moscow"))
