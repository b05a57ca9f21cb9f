"""The daily reconciliation of card payments (finance): per day, what the payment gateways
confirmed as paid against what the portal credited to personal accounts. A difference means
a payment the ledger did not take (an amount mismatch, say) or the reverse: look it up in the
payments list and the audit journal."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask import current_app, request
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access

from app.extensions import db
from app.services import payments
from app.views.admin import AUDIT_ACTIONS
from app.views.formats import local_today

#: Days shown when no period is asked for.
DEFAULT_DAYS = 14
#: Longest period of one page.
MAX_DAYS = 366

AUDIT_ACTIONS.update({
    "payment.created": "Создан платёж картой",
    "payment.succeeded": "Платёж картой зачислен",
    "payment.canceled": "Платёж картой отменён",
    "payment.refunded": "Возврат платежа картой",
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
        today = local_today()
        date_to = _date(request.args.get("date_to"), today)
        date_from = _date(request.args.get("date_from"),
                          date_to - dt.timedelta(days=DEFAULT_DAYS - 1))
        if date_from > date_to:
            date_from, date_to = date_to, date_from
        date_from = max(date_from, date_to - dt.timedelta(days=MAX_DAYS - 1))
        days = payments.reconciliation(
            db.session, date_from, date_to,
            current_app.config.get("BABEL_DEFAULT_TIMEZONE", "Europe/Moscow"))
        totals = {
            "gateway_count": sum(d.gateway_count for d in days),
            "gateway_total": sum((d.gateway_total for d in days), Decimal("0.00")),
            "credited_count": sum(d.credited_count for d in days),
            "credited_total": sum((d.credited_total for d in days), Decimal("0.00")),
            "refunded_total": sum((d.refunded_total for d in days), Decimal("0.00")),
        }
        totals["difference"] = totals["gateway_total"] - totals["credited_total"]
        return self.render_template(
            "payments/reconciliation.html", days=days, totals=totals, date_from=date_from,
            date_to=date_to, title=self.list_title)
