"""The readings form, in two places: the cabinet (/cabinet/readings/<account>) for every meter
of a bound account, and without signing in (/readings/) for the one meter whose serial the
visitor typed from the bill. Both go: values -> check (consumption and estimated charge shown)
-> confirm. The rules are app.services.readings; the prices app.services.tariffs."""
from __future__ import annotations

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_appbuilder import BaseView, expose
from flask_login import current_user

from app.extensions import db
from app.models import Meter, PersonalAccount
from app.services import accounts, readings, tariffs
from app.services.throttle import Throttled
from app.views.formats import local_today

GUEST_METER_KEY = "guest_reading_meter"


def raw_values(form, meters: list[Meter]) -> dict[int, dict[str, str]]:
    """Form fields ``m<meter id>_<zone>`` -> {meter id: {zone: text}}."""
    return {m.id: {zone: form.get(f"m{m.id}_{zone}", "") for zone in readings.ZONES}
            for m in meters}


def readings_flow(account: PersonalAccount, meters: list[Meter], *, template: str,
                  source: str, user_id: int | None, done_url: str, **context):
    """GET: the form. POST action=check: the assessment with the estimate. POST
    action=confirm: assess again (never trust the page) and save."""
    rules = readings.Rules.from_config(current_app.config)
    today = local_today()
    entries = readings.form_entries(db.session, meters, today)
    values = raw_values(request.form, meters) if request.method == "POST" else {}
    action = request.form.get("action")
    if request.method == "POST" and action in ("check", "confirm"):
        try:
            assessments = readings.assess_meters(db.session, meters, values, today, rules)
            if action == "confirm":
                readings.submit_all(db.session, meters, assessments,
                                    confirmed=bool(request.form.get("confirmed")),
                                    source=source, user_id=user_id, ip=request.remote_addr)
                flagged = any(a.spike for a in assessments)
                flash("Показания приняты." if not flagged else
                      "Показания приняты и переданы на проверку: потребление выше обычного.",
                      "success")
                return redirect(done_url)
        except readings.ReadingError as error:
            flash(str(error), "danger")
        else:
            by_meter = {e.meter.id: e for e in entries}
            checks = [(by_meter[a.meter_id], a,
                       tariffs.estimate(db.session, account, by_meter[a.meter_id].meter.zones,
                                        a.consumption, a.period))
                      for a in assessments]
            return render_template(
                template, step="confirm", account=account, entries=entries, values=values,
                checks=checks, rules=rules, today=today, **_base(context))
    return render_template(
        template, step="form", account=account, entries=entries, values=values, rules=rules,
        today=today, **_base(context))


def _base(context: dict) -> dict:
    appbuilder = current_app.appbuilder
    return {"appbuilder": appbuilder, "base_template": appbuilder.base_template, **context}


class GuestReadingView(BaseView):
    """Readings without signing in: the bill's account number and meter serial, then the
    form for that meter. Only the street of the address is shown."""

    route_base = "/readings"
    default_view = "start"

    @expose("/", methods=["GET", "POST"])
    def start(self):
        if request.method == "POST":
            try:
                meter = readings.meter_for_guest(db.session, request.form.get("account", ""),
                                                 request.form.get("serial", ""),
                                                 request.remote_addr)
            except (readings.ReadingError, Throttled) as error:
                flash(str(error), "danger")
            else:
                session[GUEST_METER_KEY] = meter.id
                return redirect(url_for(".meter"))
        return self.render_template("readings/guest_start.html", title="Передать показания",
                                    form=request.form)

    @expose("/meter", methods=["GET", "POST"])
    def meter(self):
        meter = db.session.get(Meter, session.get(GUEST_METER_KEY) or 0)
        if meter is None:
            return redirect(url_for(".start"))
        return readings_flow(meter.account, [meter], template="readings/guest_form.html",
                             source="web", user_id=None, done_url=url_for(".done"),
                             title="Передать показания", street=meter.account.premises.street)

    @expose("/done")
    def done(self):
        session.pop(GUEST_METER_KEY, None)
        return self.render_template("readings/guest_done.html", title="Показания переданы")


def account_or_404(user_id: int, account_id: int) -> PersonalAccount:
    account = accounts.bound_account(db.session, user_id, account_id)
    if account is None:
        abort(404)
    return account


def cabinet_readings(account_id: int):
    """The cabinet's readings page for one bound account (CabinetView.readings)."""
    account = account_or_404(current_user.id, account_id)
    meters = [m for m in account.meters if m.active]
    return readings_flow(account, sorted(meters, key=lambda m: m.serial),
                         template="cabinet/readings.html", source="web",
                         user_id=current_user.id, done_url=url_for("CabinetView.home"),
                         title=f"Показания по лицевому счёту {account.number}")
