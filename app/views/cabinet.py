"""The resident's cabinet (/cabinet/): the bound personal accounts, binding more of them by the
data on a paper bill, and unbinding. Every query is limited to the signed-in user's own
bindings in the service layer; ids from the URL never reach another user's rows."""
from __future__ import annotations

from functools import wraps

from flask import current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_login import current_user

from app.extensions import db, reads_only
from app.services import accounts, binding, verification
from app.services.readings import Rules
from app.services.throttle import Throttled
from app.views import readings as readings_views
from app.views.formats import local_today


def entrance(endpoint: str):
    """Send an anonymous visitor to the sign-in page of their audience, not FAB's /login/."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not current_user.is_authenticated:
                return redirect(url_for(endpoint, next=request.full_path))
            return view(*args, **kwargs)

        return wrapper

    return decorator


def _pairs_from_form(form) -> list[tuple[str, str]]:
    numbers, serials = form.getlist("account"), form.getlist("serial")
    return [(n, s) for n, s in zip(numbers, serials) if n.strip() or s.strip()]


class CabinetView(BaseView):
    route_base = "/cabinet"
    default_view = "home"

    @expose("/")
    @entrance("ResidentAuthView.signin")
    @has_access
    @reads_only
    def home(self):
        rules = Rules.from_config(current_app.config)
        today = local_today()
        summaries = accounts.cabinet_overview(db.session, current_user.id, today, rules.window)
        days = verification.warn_days(current_app.config)
        dues = {a.id: verification.warnings(a.meters, today, days) for a in summaries}
        return self.render_template("cabinet/home.html", accounts=summaries, rules=rules,
                                    verification=dues, title="Мои лицевые счета")

    @expose("/readings/<int:account_id>", methods=["GET", "POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def readings(self, account_id: int):
        return readings_views.cabinet_readings(account_id)

    @expose("/bind", methods=["GET", "POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def bind(self):
        pairs: list[tuple[str, str]] = []
        organization: dict[str, str] = {}
        if request.method == "POST":
            pairs = _pairs_from_form(request.form)
            try:
                result = binding.bind_accounts(db.session, current_user.id, pairs,
                                               request.remote_addr)
            except (binding.BindingError, Throttled) as exc:
                flash(str(exc), "danger")
            else:
                if result.bound:
                    flash("Привязаны лицевые счета: " + ", ".join(result.bound) + ".", "success")
                if result.already:
                    flash("Уже привязаны: " + ", ".join(result.already) + ".", "info")
                for number, contract in result.organization.items():
                    flash(binding.organization_refusal(number, contract), "warning")
                organization = result.organization
                if result.refused:
                    flash(binding.NOT_FOUND + " Счета: " + ", ".join(result.refused) + ".",
                          "danger")
                    pairs = [p for p in pairs if binding.clean_number(p[0]) in result.refused]
                elif not organization:
                    return redirect(url_for(".home"))
        return self.render_template("cabinet/bind.html", pairs=pairs or [("", "")],
                                    organization=organization,
                                    business_login=url_for("BusinessAuthView.signin"),
                                    title="Привязать лицевой счёт")

    @expose("/unbind/<int:account_id>", methods=["POST"])
    @entrance("ResidentAuthView.signin")
    @has_access
    def unbind(self, account_id: int):
        if binding.unbind_account(db.session, current_user.id, account_id, request.remote_addr):
            flash("Лицевой счёт отвязан от кабинета. История начислений и платежей сохранена.",
                  "success")
            return redirect(url_for(".home"))
        return ("Не найдено", 404)
