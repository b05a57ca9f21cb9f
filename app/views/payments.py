"""Paying by card from the cabinet (/cabinet/pay/): the form (one account, or several bound
accounts in one payment), the page the gateway sends the payer back to, the PDF confirmation,
and the gateway's server-to-server notification URL (/cabinet/pay/notify/<gateway>: public,
exempt from CSRF, trusted only after the gateway's own checks and a status fetch)."""
from __future__ import annotations

from decimal import Decimal

from flask import abort, current_app, flash, make_response, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_login import current_user

from app.extensions import csrf, db
from app.models import PaymentMethod, PaymentStatus
from app.services import accounts, payment_confirmation, payment_states, supplier
from app.views.cabinet import entrance
from app.views.formats import timestamp

#: What the payer reads about each status of their payment.
RESULT_TEXT = {
    "succeeded": "Платёж прошёл, деньги зачислены на лицевые счета.",
    "pending": "Ждём подтверждения от банка. Страница обновится сама.",
    "created": "Ждём подтверждения от банка. Страница обновится сама.",
    "canceled": "Платёж не прошёл: деньги не списаны.",
    "refunded": "Платёж возвращён.",
}


class PayView(BaseView):
    route_base = "/cabinet/pay"
    default_view = "pay"

    def create_blueprint(self, appbuilder, *args, **kwargs):
        """Only the notification endpoint is exempt from CSRF (the gateway was chosen by
        create_app: a misconfigured PAYMENT_GATEWAY stops the start there)."""
        blueprint = super().create_blueprint(appbuilder, *args, **kwargs)
        csrf.exempt(f"{PayView.notify.__module__}.{PayView.notify.__name__}")
        return blueprint

    @expose("/<int:account_id>", methods=["GET", "POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def pay(self, account_id: int):
        if accounts.bound_account(db.session, current_user.id, account_id) is None:
            abort(404)
        summaries = accounts.bound_account_summaries(db.session, current_user.id)
        due = {s.id: s.balance if s.balance > 0 else None for s in summaries}
        chosen = {account_id}
        values = {s.id: _plain(due[s.id]) for s in summaries}
        errors: dict[int, str] = {}
        methods = payment_states.offered_methods()
        method = methods[0] if methods else None
        if request.method == "POST":
            chosen = {int(v) for v in request.form.getlist("account")
                      if v.isascii() and v.isdigit()}
            method = request.form.get("method") or method
            parts: list[tuple[int, Decimal]] = []
            for s in summaries:
                values[s.id] = request.form.get(f"amount_{s.id}", "")
                if s.id in chosen:
                    try:
                        parts.append((s.id, payment_states.parse_amount(values[s.id])))
                    except payment_states.PaymentError as exc:
                        errors[s.id] = str(exc)
            if chosen - {s.id for s in summaries}:
                abort(404)
            if not chosen:
                flash("Выберите хотя бы один лицевой счёт.", "danger")
            elif not errors:
                try:
                    state = payment_states.start_payment(
                        db.session, current_user, parts, ip=request.remote_addr,
                        return_url=lambda key: url_for(".result", order_key=key,
                                                       _external=True), method=method)
                except payment_states.NotFound:
                    abort(404)
                except payment_states.PaymentError as exc:
                    flash(str(exc), "danger")
                else:
                    return redirect(state.order.confirmation_url
                                    or url_for(".result", order_key=state.order.order_key))
        return self.render_template(
            "payments/pay.html", summaries=summaries, chosen=chosen, values=values,
            errors=errors, methods=methods, method=method, method_labels=PaymentMethod.labels,
            title="Оплата онлайн")

    @expose("/result/<order_key>")
    @entrance("ResidentAuthView.signin")
    @has_access
    def result(self, order_key: str):
        try:
            state = payment_states.confirm_return(db.session, current_user.id, order_key,
                                                  request.remote_addr)
        except payment_states.NotFound:
            abort(404)
        balances = {s.id: s for s in accounts.bound_account_summaries(db.session,
                                                                      current_user.id)}
        return self.render_template(
            "payments/result.html", state=state, balances=balances,
            text=RESULT_TEXT.get(state.status, ""), labels=PaymentStatus.labels,
            title="Результат оплаты")

    @expose("/receipt/<order_key>.pdf")
    @entrance("ResidentAuthView.signin")
    @has_access
    def receipt(self, order_key: str):
        try:
            order = payment_states.user_order(db.session, current_user.id, order_key)
        except payment_states.NotFound:
            abort(404)
        state = payment_states.order_state(db.session, order)
        if state.status != "succeeded":
            abort(404)
        pdf = payment_confirmation.confirmation_pdf(state, supplier.requisites(current_app.config),
                                                    timestamp(state.order.paid_at))
        response = make_response(pdf)
        response.headers["Content-Type"] = "application/pdf"
        response.headers["Content-Disposition"] = (
            f'inline; filename="payment-{order.order_key[:8]}.pdf"')
        return response

    @expose("/notify/<gateway>", methods=["POST"])
    def notify(self, gateway: str):
        answer = payment_states.handle_notification(db.session, gateway, request)
        return answer.text, answer.status, {"Content-Type": "text/plain; charset=utf-8"}


def _plain(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}".replace(".", ",")
