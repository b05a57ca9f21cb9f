"""The readings form, in two places: the cabinet (/cabinet/readings/<account>) for every meter
of a bound account, and without signing in (/readings/) for the one meter whose serial the
visitor typed from the bill. Both go: values -> check (consumption and estimated charge shown)
-> confirm. The rules are app.services.readings; the prices app.services.tariffs.

A signed-in user's form also answers in JSON (``Accept: application/json``): the app's queue of
readings typed without a network (static/js/app.js) sends them there when the network returns,
so that they pass exactly the check a typed form passes."""
from __future__ import annotations

from flask import (
    abort,
    current_app,
    flash,
    jsonify,
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
from app.services import accounts, binding, readings, tariffs, verification
from app.services.throttle import Throttled
from app.views.formats import energy, local_today, rubles

GUEST_METER_KEY = "guest_reading_meter"
#: Why a reading must be confirmed: shown on the check step and in the app's queue.
CONFIRM_TEXT = {
    "rollover": "Новое показание меньше предыдущего. Если счётчик «перешёл через ноль» (на табло "
                "снова маленькие числа), подтвердите — иначе исправьте цифры.",
    "held": "Показания выглядят неправдоподобно. Проверьте цифры и, если ошиблись, исправьте. "
            "Если всё верно, подтвердите: показания сохраним со статусом «На проверке», и в "
            "счёт они попадут только после проверки специалистом.",
}
#: This month's reading on the form, by its status: (the state, what it means for the bill).
STATUS_TEXT = {
    "accepted": ("приняты", "Показания будут учтены в счёте."),
    "flagged": ("на проверке", "Специалист проверит показания; до проверки они не попадут в "
                               "счёт. Если вы ошиблись в цифрах, передайте показания заново."),
    "rejected": ("отклонены", "Показания отклонены после проверки. Передайте показания "
                              "заново."),
}


def raw_values(form, meters: list[Meter]) -> dict[int, dict[str, str]]:
    """Form fields ``m<meter id>_<zone>`` -> {meter id: {zone: text}}."""
    return {m.id: {zone: form.get(f"m{m.id}_{zone}", "") for zone in readings.ZONES}
            for m in meters}


def readings_flow(account: PersonalAccount, meters: list[Meter], *, template: str,
                  source: str, user_id: int | None, done_url: str, **context):
    """GET: the form. POST action=check: the assessment with the estimate. POST
    action=confirm: assess again (never trust the page) and save. A signed-in user's POST
    asking for JSON is the app's queue: assessed and saved at once (queued_answer). Each
    step warns of a meter whose verification is near or past (``apply_link`` in the context:
    with a link to the resident's application)."""
    rules = readings.Rules.from_config(current_app.config)
    today = local_today()
    context["verification"] = {d.meter_id: d for d in verification.warnings(
        meters, today, verification.warn_days(current_app.config))}
    values = raw_values(request.form, meters) if request.method == "POST" else {}
    if request.method == "POST" and user_id is not None and wants_json():
        return queued_answer(account, meters, values, today, rules, source=source,
                             user_id=user_id)
    entries = readings.form_entries(db.session, meters, today)
    action = request.form.get("action")
    if request.method == "POST" and action in ("check", "confirm"):
        try:
            assessments = readings.assess_meters(db.session, meters, values, today, rules)
            if action == "confirm":
                readings.submit_all(db.session, meters, assessments,
                                    confirmed=bool(request.form.get("confirmed")),
                                    source=source, user_id=user_id, ip=request.remote_addr)
                flash(accepted_message(assessments, meters),
                      "warning" if any(a.held or a.verification_note for a in assessments)
                      else "success")
                return redirect(done_url)
        except readings.ReadingError as error:
            flash(str(error), "danger")
        else:
            by_meter = {e.meter.id: e for e in entries}
            checks = [(by_meter[a.meter_id], a, estimate)
                      for a, estimate in estimates(account, meters, assessments)]
            return render_template(
                template, step="confirm", account=account, entries=entries, values=values,
                checks=checks, rules=rules, today=today, **_base(context, user_id))
    return render_template(
        template, step="form", account=account, entries=entries, values=values, rules=rules,
        today=today, **_base(context, user_id))


def wants_json() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) \
        == "application/json"


def estimates(account: PersonalAccount, meters: list[Meter], assessments):
    """(assessment, estimated charge or None) of each meter, priced as the billing run
    would; none for a meter past its verification, whose reading is not billed."""
    zones = {m.id: m.zones for m in meters}
    return [(a, None if a.verification_note else tariffs.estimate(
        db.session, account, zones[a.meter_id], a.consumption, a.period)) for a in assessments]


def accepted_message(assessments, meters: list[Meter]) -> str:
    """What happened to the saved readings: accepted, or held «на проверке» (which meters);
    and which of them are not billed, their meter's verification having expired."""
    held = [a for a in assessments if a.held]
    notes = [a.verification_note for a in assessments if a.verification_note]
    if not held:
        return " ".join(["Показания приняты.", *notes])
    which = ""
    if len(assessments) > 1:
        serials = {m.id: m.serial for m in meters}
        which = " счётчика № " + ", № ".join(serials[a.meter_id] for a in held)
    return " ".join([f"Показания{which} сохранены со статусом «На проверке»: в счёт они "
                     "попадут после проверки специалистом.", *notes])


def held_reasons(assessments, meters: list[Meter]) -> list[str]:
    """The reasons to hold, each named by its meter when there are several."""
    serials = {m.id: m.serial for m in meters}
    return [(f"Счётчик № {serials[a.meter_id]}: " if len(assessments) > 1 else "") + d.text
            for a in assessments for d in a.doubts]


def queued_answer(account: PersonalAccount, meters: list[Meter], values, today, rules, *,
                  source: str, user_id: int):
    """A queued reading, sent when the network returned: the form's check and save in one
    step. JSON ``status``: "accepted" (saved; ``held`` true when saved «на проверке»),
    "confirm" (a rollover or an implausible value: the person must confirm, then it is sent
    again with ``confirmed``) or "refused"; ``message`` is the Russian reason, ``details`` the
    consumption and estimate per meter."""
    serials = {m.id: m.serial for m in meters}
    try:
        assessments = readings.assess_meters(db.session, meters, values, today, rules)
    except readings.ReadingError as error:
        return jsonify(status="refused", message=str(error)), 422
    details = [
        f"Счётчик № {serials[a.meter_id]}: расход {energy(a.total)}"
        + (f", ориентировочно {rubles(estimate.total)}" if estimate and estimate.lines else "")
        for a, estimate in estimates(account, meters, assessments)]
    confirmed = bool(request.form.get("confirmed"))
    if not confirmed and any(a.needs_confirmation for a in assessments):
        reasons = [CONFIRM_TEXT[kind] for kind, needed in (
            ("rollover", any(a.rollover_zones for a in assessments)),
            ("held", any(a.held for a in assessments))) if needed]
        notes = [a.verification_note for a in assessments if a.verification_note]
        return jsonify(status="confirm",
                       message=" ".join(reasons + held_reasons(assessments, meters) + notes),
                       details=details), 409
    try:
        readings.submit_all(db.session, meters, assessments, confirmed=confirmed,
                            source=source, user_id=user_id, ip=request.remote_addr)
    except readings.ReadingError as error:
        return jsonify(status="refused", message=str(error), details=details), 422
    return jsonify(status="accepted", message=accepted_message(assessments, meters),
                   held=any(a.held for a in assessments), details=details)


def _base(context: dict, user_id: int | None) -> dict:
    """The template's context; a signed-in user's form may queue readings offline."""
    appbuilder = current_app.appbuilder
    return {"appbuilder": appbuilder, "base_template": appbuilder.base_template,
            "confirm_text": CONFIRM_TEXT, "status_text": STATUS_TEXT,
            "queue": user_id is not None, **context}


class GuestReadingView(BaseView):
    """Readings without signing in: the bill's account number and meter serial, then the
    form for that meter. Only the street of the address is shown."""

    route_base = "/readings"
    default_view = "start"

    @expose("/", methods=["GET", "POST"])
    def start(self):
        if request.method == "POST":
            try:
                meter = binding.guest_meter(db.session, request.form.get("account", ""),
                                            request.form.get("serial", ""), request.remote_addr)
            except (binding.BindingError, Throttled) as error:
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
                             title="Передать показания", street=meter.account.premises.street,
                             apply_link=True)

    @expose("/done")
    def done(self):
        meter = db.session.get(Meter, session.pop(GUEST_METER_KEY, None) or 0)
        current = readings.form_entries(db.session, [meter], local_today())[0].current \
            if meter is not None else None
        return self.render_template("readings/guest_done.html", title="Показания переданы",
                                    held=current is not None and current.status == "flagged")


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
                         title=f"Показания по лицевому счёту {account.number}",
                         apply_link=True)
