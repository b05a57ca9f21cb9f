"""Autopay in the resident's cabinet (/cabinet/autopay/): per account, switching it on (the
first payment with the consent to save the card), the cap, switching it off and removing the
card. Thin: the rules are app.services.autopay; ids of another user's accounts, settings or
cards are 404 and change nothing."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_login import current_user

from app.extensions import db
from app.services import autopay, payment_states
from app.services.histories import Status
from app.services.russian import plural
from app.views.cabinet import entrance
from app.views.formats import local_today

#: What the resident reads when back from the first payment, by its outcome.
SETUP_TEXT = {
    "active": ("Автоплатёж включён: карта сохранена, счета будут оплачиваться сами.",
               "success"),
    "no_card": ("Платёж прошёл, но карта не сохранена: отметьте «Сохранить карту для "
                "автоплатежа» на странице оплаты, чтобы включить автоплатёж.", "warning"),
    "failed": ("Платёж не прошёл, автоплатёж не включён. Деньги не списаны.", "danger"),
    "pending": ("Ждём подтверждения платежа от банка: автоплатёж включится, как только оно "
                "придёт.", "info"),
}

#: The status chip of each account's autopay.
STATUS_CHIPS = {"none": Status("Выключен", "info"), "off": Status("Выключен", "info"),
                "pending": Status("Ждём первый платёж", "warn"),
                "active": Status("Включён", "ok")}


class AutopayView(BaseView):
    route_base = "/cabinet/autopay"
    default_view = "index"

    def _page(self, items, title: str):
        days = autopay.Rules.from_config(current_app.config).days_before
        return self.render_template(
            "autopay/index.html", items=items, available=autopay.available(),
            status_chips=STATUS_CHIPS, title=title,
            days_phrase="в день" if days == 0 else "за день" if days == 1
            else f"за {days} {plural(days, 'день', 'дня', 'дней')}")

    @expose("/")
    @entrance("ResidentAuthView.signin")
    @has_access
    def index(self):
        items = autopay.overview(db.session, current_user.id, local_today())
        return self._page(items, "Автоплатёж")

    @expose("/<int:account_id>")
    @entrance("ResidentAuthView.signin")
    @has_access
    def account(self, account_id: int):
        try:
            item = autopay.account_autopay(db.session, current_user.id, account_id,
                                           local_today())
        except autopay.NotFound:
            abort(404)
        return self._page([item], f"Автоплатёж по счёту {item.number}")

    @expose("/<int:account_id>/on", methods=["POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def turn_on(self, account_id: int):
        back = redirect(url_for(".account", account_id=account_id))
        if not request.form.get("consent"):
            flash("Чтобы включить автоплатёж, подтвердите согласие на списания с карты.",
                  "danger")
            return back
        try:
            cap = autopay.parse_cap(request.form.get("cap"))
            state = autopay.turn_on(
                db.session, current_user, account_id, cap,
                lambda key: url_for(".setup_return", order_key=key, _external=True),
                local_today(), request.remote_addr)
        except (autopay.NotFound, payment_states.NotFound):
            abort(404)
        except (autopay.AutopayError, payment_states.PaymentError) as exc:
            flash(str(exc), "danger")
            return back
        if state is None:
            flash("Автоплатёж снова включён с сохранённой картой.", "success")
            return back
        return redirect(state.order.confirmation_url
                        or url_for(".setup_return", order_key=state.order.order_key))

    @expose("/return/<order_key>")
    @entrance("ResidentAuthView.signin")
    @has_access
    def setup_return(self, order_key: str):
        """Back from the first payment: ask the gateway (never the URL), then say how it went."""
        try:
            state = payment_states.confirm_return(db.session, current_user.id, order_key,
                                                  request.remote_addr)
        except payment_states.NotFound:
            abort(404)
        outcome = autopay.setup_outcome(db.session, current_user.id, order_key)
        if outcome == "none":
            abort(404)
        text, category = SETUP_TEXT[outcome]
        flash(text, category)
        return redirect(url_for(".account", account_id=state.parts[0].account_id))

    @expose("/<int:account_id>/cap", methods=["POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def cap(self, account_id: int):
        try:
            cap = autopay.parse_cap(request.form.get("cap"))
            autopay.set_cap(db.session, current_user.id, account_id, cap, request.remote_addr)
        except autopay.NotFound:
            abort(404)
        except autopay.AutopayError as exc:
            flash(str(exc), "danger")
        else:
            flash("Предел суммы автоплатежа сохранён." if cap else
                  "Предел снят: автоплатёж оплачивает всю сумму к оплате.", "success")
        return redirect(url_for(".account", account_id=account_id))

    @expose("/<int:account_id>/off", methods=["POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def switch_off(self, account_id: int):
        try:
            autopay.switch_off(db.session, current_user.id, account_id, request.remote_addr)
        except autopay.NotFound:
            abort(404)
        flash("Автоплатёж выключен. Карта сохранена: её можно удалить.", "success")
        return redirect(url_for(".account", account_id=account_id))

    @expose("/card/<int:method_id>/remove", methods=["POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def remove_card(self, method_id: int):
        try:
            autopay.remove_card(db.session, current_user.id, method_id, request.remote_addr)
        except autopay.NotFound:
            abort(404)
        flash("Карта удалена, автоплатёж с неё выключен.", "success")
        account = request.form.get("account", "")
        if account.isascii() and account.isdigit():
            return redirect(url_for(".account", account_id=int(account)))
        return redirect(url_for(".index"))
