"""Back-office metering: meters and their readings, the staff's entry checked by the
cabinet's rules (app.services.readings)."""
from __future__ import annotations

from flask import current_app, flash, redirect, request, url_for
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.interface import SQLAInterface
from wtforms.validators import NumberRange

from app import models as m
from app.extensions import db
from app.services import readings
from app.views.access import current_branch_scope
from app.views.admin_common import NOT_NEGATIVE, ZONE_SCHEMES, RowRefused, labels
from app.views.base import CAN_KEEP, PortalModelView, choice_field, current_user_id
from app.views.formats import local_today
from app.views.guards import FitsColumn


class ReadingView(PortalModelView):
    """Meter readings: entered by staff, reviewed when flagged."""

    datamodel = SQLAInterface(m.Reading)
    base_permissions = CAN_KEEP
    list_title, show_title = "Показания", "Показания прибора учёта"
    add_title, edit_title = "Ввод показаний", "Проверка показаний"
    label_columns = labels(
        t1="T1 (день), кВт·ч", t2="T2 (ночь), кВт·ч", t3="T3 (полупик), кВт·ч",
        source="Источник", submitted_by="Кем переданы", submitted_at="Дата передачи",
        review_note="Комментарий проверки")
    list_columns = ["meter", "period", "t1", "t2", "t3", "source", "status", "submitted_at"]
    show_columns = ["meter", "period", "t1", "t2", "t3", "source", "status", "submitted_by",
                    "submitted_at", "review_note"]
    add_columns = ["meter", "period", "t1", "t2", "t3", "source", "status", "review_note"]
    edit_columns = ["t1", "t2", "t3", "status", "review_note"]
    search_columns = ["meter", "period", "status", "source", "submitted_at"]
    order_columns = ["period", "t1", "source", "status", "submitted_at"]
    base_order = ("submitted_at", "desc")
    choices_columns = {"source": m.ReadingSource.labels, "status": m.ReadingStatus.labels}
    add_form_extra_fields = {"source": choice_field("Источник", m.ReadingSource.labels,
                                                    default="staff")}
    validators_columns = {zone: [FitsColumn(getattr(m.Reading, zone)), NOT_NEGATIVE]
                          for zone in ("t1", "t2", "t3")}
    description_columns = {
        "period": "Месяц, за который переданы показания (первое число месяца)",
        "t2": "Только для двух- и трёхзонных приборов учёта",
        "t3": "Только для трёхзонных приборов учёта",
        "status": "Неправдоподобные показания (больше разрядов счётчика, расход намного выше "
                  "обычного или выше возможного при подключённой мощности) сохраняются «На "
                  "проверке» и не попадают в счёт, пока их не примут в списке",
    }

    #: Accepting or rejecting a flagged reading is an edit.
    method_permission_name = {"accept_flagged": "edit", "reject_flagged": "edit"}

    @action("accept_flagged", "Принять показания",
            "Принять выбранные показания, ожидающие проверки?", "fa-check")
    def accept_flagged(self, items):
        return self._review(items, "accepted")

    @action("reject_flagged", "Отклонить показания",
            "Отклонить выбранные показания, ожидающие проверки?", "fa-times")
    def reject_flagged(self, items):
        return self._review(items, "rejected")

    def _review(self, items, status: str):
        rows = items if isinstance(items, list) else [items]
        done = readings.review(db.session, [r.id for r in rows if r is not None], status,
                               current_user_id(), current_branch_scope(), request.remote_addr)
        verb = "Приняты" if status == "accepted" else "Отклонены"
        flash(f"{verb} показания: {done}. Остальные выбранные не ожидали проверки или "
              "относятся к другому филиалу." if done < len(rows) else
              f"{verb} показания: {done}.", "success" if done else "warning")
        return redirect(url_for(".list"))

    def pre_add(self, item):
        super().pre_add(item)
        item.submitted_by_id = current_user_id()

    def pre_update(self, item):
        with db.session.no_autoflush:  # the checks' queries keep the edit's history unflushed
            super().pre_update(item)

    def clean_row(self, item):
        """The cabinet's rules (app.services.readings), the window aside: whole kWh, one value
        for each register of the meter and none for the others, not below the previous one but
        by a rollover. A new or changed value the rules find implausible is saved «на
        проверке» whatever status was chosen, with a warning: billing skips it until it is
        accepted in the list («Принять показания»), a deliberate second look."""
        labels = readings.ZONE_LABELS[item.meter.zones]
        changed = readings.values_changed(item)
        raw = {}
        for zone in readings.ZONES:
            value = getattr(item, zone)
            if zone in labels:
                raw[zone] = None if value is None else str(value)
            elif value is not None:
                scheme = ZONE_SCHEMES[item.meter.zones].lower()
                raise RowRefused(f"Прибор учёта {scheme}: {zone.upper()} не заполняется.")
        rules = readings.Rules.from_config(current_app.config)
        assessment = readings.assess(db.session, item.meter, raw, local_today(), rules,
                                     period=item.period)
        for zone, value in assessment.values.items():
            setattr(item, zone, value)
        if not changed or item.status != "accepted":
            return
        if assessment.held:
            item.status, item.review_note = readings.held_status(assessment)
            flash("Показания сохранены со статусом «На проверке» и не попадут в счёт до "
                  "проверки: " + " ".join(d.text for d in assessment.doubts) + " Если цифры "
                  "верны, отметьте показания в списке и выберите «Принять показания».",
                  "warning")
        elif assessment.rollover_zones and not item.review_note:
            item.review_note = readings.ROLLOVER_NOTE


class MeterView(PortalModelView):
    """Electricity meters; a replaced meter is deactivated, never deleted."""

    datamodel = SQLAInterface(m.Meter)
    base_permissions = CAN_KEEP
    related_views = [ReadingView]
    list_title, show_title = "Приборы учёта", "Прибор учёта"
    add_title, edit_title = "Новый прибор учёта", "Изменение прибора учёта"
    label_columns = labels(
        serial="Заводской номер", model="Модель", digit_capacity="Разрядность",
        installed_on="Дата установки", verification_due="Срок поверки", active="Действует")
    list_columns = ["serial", "account", "model", "zones", "verification_due", "active"]
    show_columns = add_columns = edit_columns = [
        "serial", "account", "model", "zones", "digit_capacity", "installed_on",
        "verification_due", "active"]
    search_columns = ["serial", "account", "model", "zones", "verification_due", "active"]
    order_columns = ["serial", "model", "zones", "verification_due", "active"]
    base_order = ("serial", "asc")
    choices_columns = {"zones": ZONE_SCHEMES}
    choices_coerce = {"zones": int}
    validators_columns = {"digit_capacity": [
        NumberRange(min=4, max=9, message="Разрядность — от 4 до 9 знаков.")]}
    description_columns = {
        "digit_capacity": "Сколько цифр до запятой на счётном механизме",
        "verification_due": "Дата, до которой нужно провести очередную поверку",
    }
