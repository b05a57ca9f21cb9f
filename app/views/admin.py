"""Back-office views over the domain tables (staff, finance and administrators).

Declarative on purpose: columns, Russian labels, searches and permission sets. Branch scope,
value display, selects of status values, the search-as-you-type relation fields and filters
(accounts, meters, users, organizations, contracts, premises) and the .xlsx export come from
app.views.base.
Rows that carry history (accounts, meters, readings, the ledger) are never deleted: they are
closed, deactivated or corrected by a new row.
"""
from __future__ import annotations

import base64
import re
from decimal import Decimal

from flask import abort, current_app, flash, make_response, redirect, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional, Regexp

from app import models as m
from app.extensions import db
from app.security import current_branch_scope
from app.services import (
    acts,
    applications,
    billing,
    credentials,
    letters,
    payment_states,
    readings,
    supplier,
)
from app.views.acts import ActDocumentsMixin
from app.views.applications import attachment_response
from app.views.base import (
    CAN_APPEND,
    CAN_KEEP,
    CAN_READ,
    DirectoryModelView,
    PortalModelView,
    choice_field,
    current_user_id,
)
from app.views.formats import local_today
from app.views.guards import FitsColumn

#: Labels of the columns many tables share.
COMMON_LABELS = {
    "branch": "Филиал",
    "account": "Лицевой счёт",
    "organization": "Организация",
    "contract": "Договор",
    "tariff_group": "Тарифная группа",
    "meter": "Прибор учёта",
    "user": "Учётная запись",
    "period": "Период",
    "status": "Статус",
    "phone": "Телефон",
    "email": "Электронная почта",
    "address": "Адрес",
    "zones": "Тарифность",
    "zone": "Тарифная зона",
    "range_no": "Диапазон потребления",
    "effective_from": "Действует с",
    "effective_to": "Действует по",
    "created_at": "Создано",
    "updated_at": "Изменено",
}

#: Display labels of values that have no Choices class in the models.
ZONE_SCHEMES = {1: "Однотарифный", 2: "Двухзонный (день/ночь)",
                3: "Трёхзонный (пик/полупик/ночь)"}
ZONES = {"T1": "T1 — день (пик)", "T2": "T2 — ночь", "T3": "T3 — полупик"}
RANGES = {1: "1-й диапазон", 2: "2-й диапазон", 3: "3-й диапазон"}
BINDING_METHODS = {"meter_serial": "По номеру прибора учёта", "staff": "Сотрудником филиала"}
AUDIT_ACTIONS = {
    "login.success": "Вход в систему",
    "login.failure": "Неудачная попытка входа",
    "login.throttled": "Вход временно заблокирован",
    "login.by_code": "Вход по одноразовому коду",
    "otp.requested": "Запрошен одноразовый код",
    "password.changed": "Смена пароля",
    "password.reset": "Восстановление пароля",
    "user.created": "Создан пользователь",
    "user.registered": "Регистрация в личном кабинете",
    "user.contacts_released": "Контакты закрытого кабинета отданы новой регистрации",
    "password.change_refused": "Отказ в смене пароля: неверный текущий пароль",
    "profile.name_changed": "Изменены имя и фамилия",
    "profile.contact_changed": "Изменены телефон или e-mail",
    "profile.contact_refused": "Отказ в смене телефона или e-mail",
    "profile.notifications_changed": "Изменены настройки уведомлений",
    "pd.exported": "Выгрузка своих персональных данных",
    "pd_consent.withdrawn": "Отзыв согласия на обработку персональных данных",
    "credentials.issued": "Выданы логин и пароль",
    "account.bound": "Привязка лицевого счёта",
    "account.unbound": "Отвязка лицевого счёта",
    "account.bind_refused": "Отказ в привязке лицевого счёта",
    "reading.submitted": "Переданы показания",
    "reading.replaced": "Показания заменены",
    "reading.guest_refused": "Отказ в приёме показаний без входа",
    "payment.guest_not_found": "Оплата без входа: лицевой счёт не найден",
    "push.subscribed": "Включены push-уведомления на устройстве",
    "push.unsubscribed": "Отключены push-уведомления на устройстве",
    "session.ended": "Завершён вход на другом устройстве",
    "session.ended_others": "Выход на всех устройствах, кроме текущего",
    "export.pdf": "Выгрузка документа в PDF",
    "billing.run": "Расчёт периода",
    "job.queued": "Поставлена фоновая задача",
    "export.xlsx": "Выгрузка списка в Excel",
    "act.requested": "Запрошен акт сверки",
    "act.ready": "Акт сверки сформирован",
    "act.rejected": "Отказ в акте сверки",
    "act.downloaded": "Скачан акт сверки",
    "export.zip": "Выгрузка актов сверки филиала (.zip)",
    "demo.seed": "Загрузка демонстрационных данных",
}
AUDIT_OBJECTS = {"user": "Пользователь", "account": "Лицевой счёт", "meter": "Прибор учёта",
                 "reading": "Показания", "payment": "Платёж", "period": "Расчётный период",
                 "act": "Акт сверки", "job": "Фоновая задача", "mailing": "Рассылка",
                 "demo": "Демонстрационные данные", "push": "Устройство для push-уведомлений"}

#: Requisites are ASCII digits: Python's \d also takes other scripts' digits (٣, ３), which
#: would reach bills, QR codes and acts as such.
INN = Regexp(r"^(\d{10}|\d{12})$", re.ASCII,
             message="ИНН — 10 цифр (организация) или 12 цифр (ИП).")
KPP = Regexp(r"^\d{9}$", re.ASCII, message="КПП — 9 цифр.")
OGRN = Regexp(r"^(\d{13}|\d{15})$", re.ASCII, message="ОГРН — 13 цифр, ОГРНИП — 15 цифр.")
POSTCODE = Regexp(r"^\d{6}$", re.ASCII, message="Почтовый индекс — 6 цифр.")
ACCOUNT_NUMBER = Regexp(applications.ACCOUNT_NUMBER,
                        message="Номер лицевого счёта — от 10 до 13 цифр.")
POSITIVE = NumberRange(min=Decimal("0.0001"), message="Значение должно быть больше нуля.")
NOT_NEGATIVE = NumberRange(min=0, message="Значение не может быть отрицательным.")


def labels(**own: str) -> dict[str, str]:
    return {**COMMON_LABELS, **own}


def audit_object(code: str | None) -> str:
    """An object type of the journal in Russian; for a list export, the list's title."""
    if code in AUDIT_OBJECTS:
        return AUDIT_OBJECTS[code]
    views = {type(v).__name__: v for v in current_app.appbuilder.baseviews}
    view = views.get(code or "")
    return f"Список «{view.list_title}»" if view is not None else (code or "")


class RowRefused(Exception):
    """A change the back office refuses; the message is shown to the user."""


# Directories ---------------------------------------------------------------------------------


class BranchView(DirectoryModelView):
    """The supplier's branches: every role sees the directory, administrators edit it."""

    datamodel = SQLAInterface(m.Branch)
    list_title, show_title = "Филиалы", "Филиал"
    add_title, edit_title = "Новый филиал", "Изменение филиала"
    label_columns = labels(code="Код филиала", name="Наименование", city="Город")
    list_columns = ["name", "code", "city", "phone"]
    show_columns = add_columns = edit_columns = ["name", "code", "city", "address", "phone"]
    search_columns = ["name", "code", "city"]
    order_columns = ["name", "code", "city"]
    base_order = ("name", "asc")
    description_columns = {"code": "Латиницей, без пробелов: используется в номерах документов"}


class TariffGroupView(DirectoryModelView):
    """Tariff groups of consumers (городское, сельское население...)."""

    datamodel = SQLAInterface(m.TariffGroup)
    list_title, show_title = "Тарифные группы", "Тарифная группа"
    add_title, edit_title = "Новая тарифная группа", "Изменение тарифной группы"
    label_columns = labels(code="Код группы", name="Наименование")
    list_columns = show_columns = add_columns = edit_columns = ["name", "code"]
    search_columns = order_columns = ["name", "code"]
    base_order = ("name", "asc")


class TariffView(DirectoryModelView):
    """Rates by group, zone scheme, zone and consumption range; finance maintains them."""

    datamodel = SQLAInterface(m.Tariff)
    list_title, show_title = "Тарифы", "Тариф"
    add_title, edit_title = "Новый тариф", "Изменение тарифа"
    label_columns = labels(zones="Тарифность прибора учёта", rate="Ставка, руб./кВт·ч")
    list_columns = ["tariff_group", "zones", "zone", "range_no", "rate", "effective_from",
                    "effective_to"]
    show_columns = add_columns = edit_columns = list_columns
    search_columns = ["tariff_group", "zones", "zone", "range_no", "effective_from",
                      "effective_to"]
    order_columns = ["zones", "zone", "range_no", "rate", "effective_from", "effective_to"]
    base_order = ("effective_from", "desc")
    choices_columns = {"zones": ZONE_SCHEMES, "zone": ZONES, "range_no": RANGES}
    choices_coerce = {"zones": int, "range_no": int}
    validators_columns = {"rate": [FitsColumn(m.Tariff.rate), POSITIVE]}
    description_columns = {
        "rate": "Рублей за кВт·ч, с НДС",
        "effective_to": "Пусто — тариф действует до отмены",
    }


class ConsumptionRangeView(DirectoryModelView):
    """Monthly upper limits of the consumption ranges, by tariff group and season."""

    datamodel = SQLAInterface(m.ConsumptionRange)
    list_title, show_title = "Диапазоны потребления", "Диапазон потребления"
    add_title, edit_title = "Новый диапазон потребления", "Изменение диапазона потребления"
    label_columns = labels(season="Сезон", range_no="Диапазон",
                           upper_kwh="Верхняя граница, кВт·ч в месяц")
    list_columns = ["tariff_group", "season", "range_no", "upper_kwh", "effective_from",
                    "effective_to"]
    show_columns = add_columns = edit_columns = list_columns
    search_columns = ["tariff_group", "season", "range_no", "effective_from"]
    order_columns = ["season", "range_no", "upper_kwh", "effective_from", "effective_to"]
    base_order = ("effective_from", "desc")
    choices_columns = {"season": m.Season.labels, "range_no": RANGES}
    choices_coerce = {"range_no": int}
    validators_columns = {"upper_kwh": [FitsColumn(m.ConsumptionRange.upper_kwh), NOT_NEGATIVE]}
    description_columns = {
        "upper_kwh": "Пусто — последний диапазон, без верхней границы",
        "effective_to": "Пусто — действует до отмены",
    }


# Customers -----------------------------------------------------------------------------------


class ContractView(PortalModelView):
    """Supply contracts with organizations and with people."""

    datamodel = SQLAInterface(m.Contract)
    base_permissions = CAN_KEEP
    list_title, show_title = "Договоры", "Договор"
    add_title, edit_title = "Новый договор", "Изменение договора"
    label_columns = labels(number="Номер договора", person_name="Потребитель — физическое лицо",
                           signed_on="Дата заключения", valid_from="Действует с",
                           valid_to="Действует по")
    list_columns = ["number", "organization", "person_name", "branch", "valid_from", "status"]
    show_columns = add_columns = edit_columns = [
        "number", "organization", "person_name", "branch", "signed_on", "valid_from",
        "valid_to", "status"]
    search_columns = ["number", "organization", "person_name", "branch", "status", "signed_on",
                      "valid_from"]
    order_columns = ["number", "person_name", "signed_on", "valid_from", "status"]
    base_order = ("number", "asc")
    choices_columns = {"status": m.ContractStatus.labels}
    description_columns = {
        "person_name": "Заполняется, если договор заключён с физическим лицом",
        "valid_to": "Пусто — бессрочный договор",
    }


class OrganizationView(PortalModelView):
    """Business customers (юридические лица и ИП)."""

    datamodel = SQLAInterface(m.Organization)
    base_permissions = CAN_KEEP
    related_views = [ContractView]
    list_title, show_title = "Организации", "Организация"
    add_title, edit_title = "Новая организация", "Изменение организации"
    label_columns = labels(name="Наименование", inn="ИНН", kpp="КПП", ogrn="ОГРН / ОГРНИП",
                           address="Юридический адрес", director="Руководитель")
    list_columns = ["name", "inn", "kpp", "branch", "phone"]
    show_columns = add_columns = edit_columns = [
        "name", "inn", "kpp", "ogrn", "address", "director", "phone", "email", "branch"]
    search_columns = ["name", "inn", "kpp", "ogrn", "branch", "director"]
    order_columns = ["name", "inn", "kpp"]
    base_order = ("name", "asc")
    validators_columns = {"inn": [INN], "kpp": [KPP], "ogrn": [OGRN]}
    description_columns = {"kpp": "У индивидуальных предпринимателей КПП нет"}
    show_template = "portal/organization_show.html"

    @expose("/credentials/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("add")
    def issue_credentials(self, pk: int):
        """Create the organization's sign-in: the password is shown on this page once and
        printed in the cover letter, then exists only as a hash."""
        organization = self.datamodel.get(pk, self._base_filters)
        if organization is None:
            abort(404)
        form = CredentialsForm()
        if form.validate_on_submit():
            try:
                issued = credentials.issue_credentials(
                    db.session, self.appbuilder.sm, organization, form.full_name.data,
                    form.email.data or None, issued_by=current_user_id(),
                    ip=request.remote_addr)
            except ValueError as error:
                flash(str(error), "danger")
            else:
                letter = letters.credentials_letter(
                    supplier=supplier.requisites(current_app.config),
                    organization={"name": organization.name, "inn": organization.inn,
                                  "address": organization.address},
                    branch_name=organization.branch.name, login=issued.login,
                    password=issued.password,
                    portal_url=url_for("BusinessAuthView.signin", _external=True))
                page = self.render_template(
                    "portal/credentials_issued.html", organization=organization,
                    issued=issued, letter=base64.b64encode(letter).decode())
                response = make_response(page)
                response.headers["Cache-Control"] = "no-store"
                return response
        return self.render_template("portal/credentials_form.html", form=form,
                                    organization=organization)


class CredentialsForm(FlaskForm):
    full_name = StringField("Представитель организации (ФИО)",
                            validators=[DataRequired("Укажите ФИО представителя."),
                                        Length(max=128)])
    email = StringField("Электронная почта для уведомлений",
                        validators=[Optional(), Email("Неверный адрес электронной почты.")],
                        description="Необязательно. Пароль на почту не отправляется.")


class PremisesView(PortalModelView):
    """Supplied addresses (помещения): flats, houses, shops."""

    datamodel = SQLAInterface(m.Premises)
    base_permissions = CAN_KEEP
    list_title, show_title = "Помещения и адреса", "Помещение"
    add_title, edit_title = "Новое помещение", "Изменение помещения"
    label_columns = labels(
        locality="Населённый пункт", locality_type="Тип населённого пункта", street="Улица",
        house="Дом", flat="Квартира / помещение", postcode="Почтовый индекс",
        electric_stove="Электроплита", residents="Проживает, чел.", address="Адрес")
    list_columns = ["locality", "street", "house", "flat", "locality_type", "residents",
                    "branch"]
    show_columns = ["address", "locality_type", "electric_stove", "residents", "branch"]
    add_columns = edit_columns = ["postcode", "locality", "locality_type", "street", "house",
                                  "flat", "electric_stove", "residents", "branch"]
    search_columns = ["locality", "street", "house", "flat", "postcode", "locality_type",
                      "electric_stove", "branch"]
    order_columns = ["locality", "street", "house", "flat", "locality_type", "residents"]
    base_order = ("locality", "asc")
    choices_columns = {"locality_type": m.LocalityType.labels}
    validators_columns = {"postcode": [POSTCODE],
                          "residents": [FitsColumn(m.Premises.residents), NOT_NEGATIVE]}
    description_columns = {
        "electric_stove": "Дома с электроплитами оплачивают электроэнергию по своей "
                          "тарифной группе",
        "residents": "Используется при начислении по нормативу",
    }


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


class ChargeView(PortalModelView):
    """The ledger's debit side: corrections are added as new rows, never edited or deleted."""

    datamodel = SQLAInterface(m.Charge)
    base_permissions = CAN_APPEND
    list_title, show_title = "Начисления", "Начисление"
    add_title, edit_title = "Корректировка начисления", "Начисление"
    label_columns = labels(
        kwh="Объём, кВт·ч", rate="Тариф, руб./кВт·ч", amount="Сумма, руб.",
        kind="Вид начисления", note="Основание", created_at="Дата записи")
    list_columns = ["account", "period", "kind", "zone", "range_no", "kwh", "rate", "amount"]
    show_columns = ["account", "period", "kind", "meter", "zone", "range_no", "kwh", "rate",
                    "amount", "note", "created_at"]
    add_columns = ["account", "period", "kind", "meter", "zone", "range_no", "kwh", "rate",
                   "amount", "note"]
    search_columns = ["account", "period", "kind", "zone", "created_at"]
    order_columns = ["period", "kind", "zone", "range_no", "kwh", "rate", "amount",
                     "created_at"]
    base_order = ("period", "desc")
    choices_columns = {"kind": m.ChargeKind.labels, "zone": ZONES, "range_no": RANGES}
    choices_coerce = {"range_no": int}
    validators_columns = {column: [FitsColumn(getattr(m.Charge, column))]
                          for column in ("kwh", "rate", "amount")}
    description_columns = {
        "amount": "Положительная сумма увеличивает долг, отрицательная уменьшает",
        "note": "Почему сделана корректировка: номер обращения, акта, служебной записки",
        "period": "Открытый период: месяц, за который счёт по лицевому счёту ещё не выставлен",
    }

    def clean_row(self, item):
        try:
            billing.check_correction(db.session, item.account_id, item.period)
        except billing.BillingError as error:
            raise RowRefused(str(error)) from error


class InvoiceView(PortalModelView):
    """Monthly bills, derived from the ledger by the billing run: read-only here."""

    datamodel = SQLAInterface(m.Invoice)
    base_permissions = CAN_READ
    list_title, show_title = "Счета", "Счёт"
    add_title, edit_title = "Новый счёт", "Счёт"
    label_columns = labels(
        number="Номер счёта", opening_balance="Входящее сальдо, руб.", charged="Начислено, руб.",
        paid="Оплачено, руб.", amount_due="К оплате, руб.", due_date="Оплатить до",
        issued_at="Дата выставления")
    list_columns = ["number", "account", "period", "opening_balance", "charged", "paid",
                    "amount_due", "due_date"]
    show_columns = [*list_columns, "issued_at"]
    search_columns = ["number", "account", "period", "due_date", "amount_due"]
    order_columns = ["number", "period", "opening_balance", "charged", "paid", "amount_due",
                     "due_date"]
    base_order = ("period", "desc")


class PaymentView(PortalModelView):
    """Payments: gateway payments arrive by themselves; finance registers bank and cash ones."""

    datamodel = SQLAInterface(m.Payment)
    base_permissions = CAN_APPEND
    list_title, show_title = "Платежи", "Платёж"
    add_title, edit_title = "Регистрация платежа", "Платёж"
    label_columns = labels(
        amount="Сумма, руб.", method="Способ оплаты", gateway="Платёжный шлюз",
        external_id="Номер операции в платёжной системе", order_key="Ключ заказа",
        user="Плательщик", created_at="Создан", paid_at="Дата оплаты", updated_at="Изменён")
    list_columns = ["account", "amount", "method", "status", "paid_at", "created_at"]
    show_fieldsets = [
        ("Платёж", {"fields": ["account", "amount", "method", "status", "paid_at"]}),
        ("Платёжная система", {"fields": ["gateway", "external_id", "order_key", "user"]}),
        ("Служебные отметки", {"fields": ["created_at", "updated_at"], "expanded": False}),
    ]
    add_columns = ["account", "amount", "method", "status", "paid_at", "external_id"]
    search_columns = ["account", "amount", "method", "status", "gateway", "external_id",
                      "paid_at", "created_at"]
    order_columns = ["amount", "method", "status", "paid_at", "created_at"]
    base_order = ("created_at", "desc")
    choices_columns = {"status": m.PaymentStatus.labels, "method": m.PaymentMethod.labels}
    validators_columns = {"amount": [FitsColumn(m.Payment.amount), POSITIVE]}
    description_columns = {
        "external_id": "Номер платёжного поручения или операции банка, если есть",
        "paid_at": "Когда деньги поступили (для банковских и кассовых платежей)",
    }

    #: A refund appends to the ledger like registering a payment: finance may, staff may not.
    method_permission_name = {"refund": "add"}

    @action("refund", "Вернуть онлайн-оплату",
            "Вернуть деньги плательщику за выбранные онлайн-платежи? Сумма снова станет "
            "задолженностью по лицевому счёту.", "fa-undo")
    def refund(self, items):
        rows = items if isinstance(items, list) else [items]
        result = payment_states.refund(db.session, [r.id for r in rows if r is not None],
                                       current_user_id(), request.remote_addr)
        if result.done:
            flash(f"Возвращено платежей: {len(result.done)}.", "success")
        if result.refused:
            flash(f"Не возвращено платежей: {len(result.refused)}. Вернуть можно только "
                  "оплаченный онлайн платёж, один раз.", "warning")
        return redirect(url_for(".list"))


class PersonalAccountView(PortalModelView):
    """Personal accounts (лицевые счета): closed by status, never deleted."""

    datamodel = SQLAInterface(m.PersonalAccount)
    base_permissions = CAN_KEEP
    related_views = [MeterView, InvoiceView, PaymentView]
    list_title, show_title = "Лицевые счета", "Лицевой счёт"
    add_title, edit_title = "Новый лицевой счёт", "Изменение лицевого счёта"
    label_columns = labels(
        number="Номер лицевого счёта", holder_name="Владелец", premises="Адрес помещения",
        large_family="Многодетная семья", opened_on="Дата открытия", closed_on="Дата закрытия")
    list_columns = ["number", "holder_name", "premises", "branch", "tariff_group", "status"]
    show_fieldsets = [
        ("Лицевой счёт", {"fields": ["number", "holder_name", "status", "opened_on",
                                     "closed_on"]}),
        ("Помещение и расчёты", {"fields": ["premises", "branch", "tariff_group", "contract",
                                            "large_family"]}),
    ]
    add_columns = edit_columns = ["number", "holder_name", "premises", "branch", "tariff_group",
                                  "contract", "large_family", "status", "opened_on",
                                  "closed_on"]
    search_columns = ["number", "holder_name", "status", "branch", "tariff_group", "contract",
                      "opened_on"]
    order_columns = ["number", "holder_name", "status"]
    base_order = ("number", "asc")
    choices_columns = {"status": m.AccountStatus.labels}
    validators_columns = {"number": [ACCOUNT_NUMBER]}
    description_columns = {
        "number": "Номер, который печатается в квитанции",
        "holder_name": "Фамилия, имя и отчество владельца (или наименование организации)",
        "closed_on": "Заполняется при закрытии лицевого счёта",
    }


class AccountBindingView(PortalModelView):
    """Which portal users may see which personal accounts; unbinding deletes the link."""

    datamodel = SQLAInterface(m.AccountBinding)
    base_permissions = ["can_list", "can_show", "can_add", "can_delete", "can_export_xlsx"]
    list_title, show_title = "Привязки лицевых счетов", "Привязка лицевого счёта"
    add_title, edit_title = "Новая привязка лицевого счёта", "Привязка лицевого счёта"
    label_columns = labels(user="Пользователь", bound_at="Дата привязки",
                           method="Способ привязки")
    list_columns = show_columns = ["user", "account", "bound_at", "method"]
    add_columns = ["user", "account"]
    search_columns = ["user", "account", "bound_at"]
    order_columns = ["bound_at", "method"]
    base_order = ("bound_at", "desc")
    formatters_columns = {"method": lambda v: BINDING_METHODS.get(v, v or "")}

    def pre_add(self, item):
        super().pre_add(item)
        item.method = "staff"


# Requests ------------------------------------------------------------------------------------


class ContractApplicationView(PortalModelView):
    """Applications for a supply contract, reviewed by the branch: the status moves only by the
    buttons of the card (new -> in review -> approved or rejected with a reason, each change
    told to the applicant); an approved application gets its personal account opened and
    bound to the applicant. Rows are kept, not deleted: the scans belong to them."""

    datamodel = SQLAInterface(m.ContractApplication)
    base_permissions = CAN_KEEP
    list_title, show_title = "Заявки на договор", "Заявка на договор"
    add_title, edit_title = "Новая заявка на договор", "Изменение заявки"
    label_columns = labels(
        applicant_name="Заявитель", address="Адрес объекта", comment="Комментарий заявителя",
        staff_comment="Комментарий сотрудника (причина отказа)",
        user="Учётная запись заявителя", created_at="Дата подачи", updated_at="Изменена",
        kind="Вид заявки", cadastral_number="Кадастровый номер",
        account="Открытый лицевой счёт")
    list_columns = ["created_at", "applicant_name", "kind", "address", "branch", "status"]
    show_fieldsets = [
        ("Заявка", {"fields": ["kind", "applicant_name", "phone", "email", "address",
                               "cadastral_number", "comment", "user", "created_at"]}),
        ("Рассмотрение", {"fields": ["branch", "status", "staff_comment", "account",
                                     "updated_at"]}),
    ]
    add_columns = ["applicant_name", "phone", "email", "address", "cadastral_number",
                   "comment", "branch"]
    edit_columns = ["kind", "applicant_name", "phone", "email", "address", "cadastral_number",
                    "comment", "branch", "staff_comment"]
    search_columns = ["applicant_name", "phone", "email", "address", "cadastral_number",
                      "kind", "status", "branch", "created_at"]
    order_columns = ["created_at", "applicant_name", "address", "status"]
    base_order = ("created_at", "desc")
    choices_columns = {"status": m.ApplicationStatus.labels, "kind": m.ApplicationKind.labels}
    description_columns = {
        "cadastral_number": "Например 23:43:0123456:789",
        "staff_comment": "Статус меняется кнопками в карточке заявки",
    }
    show_template = "portal/application_show.html"

    def _application(self, pk) -> m.ContractApplication:
        """The row within the user's branch scope, else 404."""
        application = self.datamodel.get(pk, self._base_filters)
        if application is None:
            abort(404)
        return application

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        widgets = self._show(pk)
        application = self._application(pk)
        return self.render_template(
            self.show_template, pk=pk, title=self.show_title, widgets=widgets,
            related_views=self._related_views, application=application,
            transitions=[(status, APPLICATION_ACTIONS[status])
                         for status in applications.allowed_transitions(application)])

    @expose("/status/<int:pk>", methods=["POST"])
    @has_access
    @permission_name("edit")
    def change_status(self, pk: int):
        application = self._application(pk)
        try:
            applications.change_status(
                db.session, application.id, request.form.get("status", ""),
                actor_id=current_user_id(), reason=request.form.get("reason"),
                ip=request.remote_addr, branch_id=current_branch_scope())
        except applications.ApplicationError as error:
            flash(str(error), "danger")
        else:
            flash(f"Статус заявки: «{m.ApplicationStatus.label(application.status)}». "
                  "Заявителю отправлено уведомление.", "success")
        return redirect(url_for(".show", pk=pk))

    @expose("/files/<int:pk>/<int:file_id>")
    @has_access
    @permission_name("show")
    def download(self, pk: int, file_id: int):
        try:
            attachment = applications.attachment_of(self._application(pk), file_id)
        except applications.NotFound:
            abort(404)
        return attachment_response(attachment)

    @expose("/account/<int:pk>", methods=["GET", "POST"])
    @has_access
    @permission_name("edit")
    def open_account(self, pk: int):
        """Open the personal account of an approved application and bind it to the
        applicant's cabinet."""
        application = self._application(pk)
        if application.status != "approved" or application.account_id is not None:
            flash("Лицевой счёт открывается один раз и только по одобренной заявке.", "danger")
            return redirect(url_for(".show", pk=pk))
        values = {"number": applications.suggest_account_number(db.session),
                  "holder_name": application.applicant_name, "locality_type": "urban",
                  "locality": application.branch.city, "tariff_group_id": ""}
        errors: dict[str, str] = {}
        if request.method == "POST":
            values = {name: request.form.get(name, "") for name in ACCOUNT_FIELDS}
            try:
                account = applications.open_account_for(
                    db.session, application.id, actor_id=current_user_id(),
                    ip=request.remote_addr, branch_id=current_branch_scope(), **values)
            except applications.ApplicationError as error:
                errors = error.errors
                if "" in errors:
                    flash(errors[""], "danger")
            else:
                bound = " и привязан к кабинету заявителя" if application.user_id else ""
                flash(f"Открыт лицевой счёт {account.number}{bound}.", "success")
                return redirect(url_for(".show", pk=pk))
        groups = db.session.execute(select(m.TariffGroup.id, m.TariffGroup.name)
                                    .order_by(m.TariffGroup.name)).all()
        return self.render_template(
            "portal/application_account.html", application=application, values=values,
            errors=errors, groups=groups, locality_types=m.LocalityType.labels,
            title="Открытие лицевого счёта по заявке")


#: The buttons that move an application: target status -> (button text, style).
APPLICATION_ACTIONS = {
    "in_review": ("Взять на рассмотрение", "btn-primary"),
    "approved": ("Одобрить", "btn-success"),
    "rejected": ("Отклонить", "btn-danger"),
}
ACCOUNT_FIELDS = ("number", "holder_name", "tariff_group_id", "locality_type", "locality",
                  "street", "house", "flat")
AUDIT_ACTIONS.update({
    "application.submitted": "Подана заявка на договор",
    "application.status": "Изменён статус заявки на договор",
    "application.account_opened": "Открыт лицевой счёт по заявке",
})
AUDIT_OBJECTS["application"] = "Заявка на договор"


class ReconciliationActView(ActDocumentsMixin, PortalModelView):
    """Reconciliation acts requested by organizations. Finance downloads the act generated
    from the ledger, then marks it ready or rejects it with a reason (app.views.acts); the
    status changes only that way, so the act has no edit form."""

    datamodel = SQLAInterface(m.ReconciliationAct)
    base_permissions = [*CAN_APPEND, "can_prepare"]
    list_title, show_title = "Акты сверки", "Акт сверки"
    add_title, edit_title = "Запрос акта сверки", "Изменение акта сверки"
    label_columns = labels(date_from="Период с", date_to="Период по", requested_by="Запросил",
                           requested_at="Дата запроса", ready_at="Дата формирования",
                           decided_by="Решение принял", decided_at="Дата решения",
                           note="Причина отказа")
    list_columns = ["organization", "contract", "date_from", "date_to", "status",
                    "requested_at"]
    show_columns = ["organization", "contract", "date_from", "date_to", "status",
                    "requested_by", "requested_at", "ready_at", "decided_by", "decided_at",
                    "note"]
    add_columns = ["organization", "contract", "date_from", "date_to"]
    edit_columns = add_columns
    search_columns = ["organization", "contract", "status", "date_from", "date_to",
                      "requested_at"]
    order_columns = ["date_from", "date_to", "status", "requested_at"]
    base_order = ("requested_at", "desc")
    choices_columns = {"status": m.ActStatus.labels}
    description_columns = {"date_to": "Не позже сегодняшнего дня; период — не более трёх лет"}

    def pre_add(self, item):
        super().pre_add(item)
        item.requested_by_id = current_user_id()

    def clean_row(self, item):
        acts.check_period(item.date_from, item.date_to, today=local_today())
        if item.contract and item.organization and (
                item.contract.organization_id != item.organization.id):
            raise RowRefused("Договор заключён с другой организацией.")


# Journal -------------------------------------------------------------------------------------


class AuditEventView(DirectoryModelView):
    """The audit journal: append-only, so read-only for everyone."""

    datamodel = SQLAInterface(m.AuditEvent)
    base_permissions = ["can_list", "can_show"]
    list_title, show_title = "Журнал аудита", "Событие журнала аудита"
    add_title, edit_title = "Событие журнала аудита", "Событие журнала аудита"
    label_columns = labels(at="Время", action="Событие", actor="Пользователь",
                           object_type="Тип объекта", object_id="Код объекта", ip="IP-адрес",
                           details="Подробности")
    list_columns = ["at", "action", "actor", "object_type", "object_id", "ip"]
    show_columns = [*list_columns, "details"]
    search_columns = ["action", "actor", "object_type", "object_id", "ip", "at"]
    order_columns = ["at", "action", "object_type", "object_id", "ip"]
    base_order = ("at", "desc")
    formatters_columns = {
        "action": lambda code: AUDIT_ACTIONS.get(code, code),
        "object_type": audit_object,
    }
    description_columns = {"action": "Код события, например login.failure"}
