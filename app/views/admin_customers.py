"""Back-office customers: organizations (and their sign-in), contracts, premises, personal
accounts and which portal users see them."""
from __future__ import annotations

import base64

from flask import abort, current_app, flash, make_response, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access, permission_name
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Email, Length, Optional

from app import models as m
from app.extensions import db
from app.services import credentials, letters, supplier
from app.views.admin_common import (
    ACCOUNT_NUMBER,
    INN,
    KPP,
    NOT_NEGATIVE,
    OGRN,
    POSTCODE,
    labels,
)
from app.views.admin_ledger import InvoiceView, PaymentView
from app.views.admin_metering import MeterView
from app.views.base import CAN_KEEP, PortalModelView, current_user_id
from app.views.guards import FitsColumn

BINDING_METHODS = {"meter_serial": "По номеру прибора учёта", "staff": "Сотрудником филиала"}


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
