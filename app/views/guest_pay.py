"""Paying without signing in (/pay/): ``start`` (the account number, the amount, an e-mail or
phone for the receipt) -> ``check`` (the address masked, the amount, the debt; «Оплатить»)
-> the gateway's page -> ``result``. The gateway's notification comes to the cabinet's
PayView.notify like any payment's. The rules are app.services.guest_payments."""
from __future__ import annotations

from decimal import Decimal

from flask import abort, flash, redirect, request, session, url_for
from flask_appbuilder import BaseView, expose

from app.extensions import db
from app.models import PaymentMethod, PaymentStatus
from app.services import guest_payments, payment_states
from app.views.payments import RESULT_TEXT

DRAFT_KEY = "guest_pay"
#: The cabinet's wording of each status, for the one account a guest pays.
GUEST_TEXT = {**RESULT_TEXT, "succeeded": "Платёж прошёл, деньги зачислены на лицевой счёт."}


class GuestPayView(BaseView):
    """Public: no @has_access. What a visitor may learn is limited by the service (a masked
    address, a counted look-up), not by a role."""

    route_base = "/pay"
    default_view = "start"

    @expose("/", methods=["GET", "POST"])
    def start(self):
        methods = payment_states.offered_methods()
        draft = guest_payments.Draft.from_session(session.get(DRAFT_KEY))
        values = {"account": draft.number, "amount": _plain(draft.amount),
                  "contact": draft.contact_text} if draft else {}
        errors: dict[str, str] = {}
        if request.method == "POST" and methods:
            values = {"account": request.form.get("account", ""),
                      "amount": request.form.get("amount", ""),
                      "contact": request.form.get("contact", "")}
            try:
                draft = guest_payments.look_up(db.session, values["account"], values["amount"],
                                               values["contact"], request.remote_addr)
            except guest_payments.InvalidForm as exc:
                errors = exc.errors
            else:
                session[DRAFT_KEY] = draft.to_session()
                return redirect(url_for(".check"))
        return self.render_template("payments/guest_start.html", values=values, errors=errors,
                                    methods=methods, title="Оплата электроэнергии")

    @expose("/check", methods=["GET", "POST"])
    def check(self):
        draft = guest_payments.Draft.from_session(session.get(DRAFT_KEY))
        facts = guest_payments.check(db.session, draft) if draft else None
        if facts is None:
            session.pop(DRAFT_KEY, None)
            return redirect(url_for(".start"))
        methods = payment_states.offered_methods()
        method = methods[0] if methods else None
        if request.method == "POST":
            method = request.form.get("method") or method
            try:
                state = guest_payments.start(
                    db.session, draft, ip=request.remote_addr, method=method,
                    return_url=lambda key: url_for(".result", order_key=key, _external=True))
            except payment_states.PaymentError as exc:
                flash(str(exc), "danger")
            else:
                session.pop(DRAFT_KEY, None)
                return redirect(state.order.confirmation_url
                                or url_for(".result", order_key=state.order.order_key))
        return self.render_template(
            "payments/guest_check.html", draft=draft, facts=facts, methods=methods,
            method=method, method_labels=PaymentMethod.labels, title="Проверьте платёж")

    @expose("/result/<order_key>")
    def result(self, order_key: str):
        try:
            state, addresses = guest_payments.result(db.session, order_key,
                                                     request.remote_addr)
        except payment_states.NotFound:
            abort(404)
        return self.render_template(
            "payments/guest_result.html", state=state, addresses=addresses,
            text=GUEST_TEXT.get(state.status, ""), labels=PaymentStatus.labels,
            title="Результат оплаты")


def _plain(value: Decimal) -> str:
    return f"{value:.2f}".replace(".", ",")
