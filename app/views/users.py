"""The subscribers view: FAB's user administration with the portal's fields, branch-scoped.

A branch operator sees and edits the users of their branch (and those bound to its accounts),
and may grant only roles that keep a user inside a branch operator's reach: never Admin, never
Finance (whose lists span every branch).
"""
from __future__ import annotations

from flask import g
from flask_appbuilder.fields import QuerySelectMultipleField
from flask_appbuilder.fieldwidgets import Select2ManyWidget
from flask_appbuilder.security.sqla.models import Role
from flask_appbuilder.security.views import UserDBModelView
from sqlalchemy import inspect
from wtforms.validators import DataRequired, Optional

from app import models as m
from app.extensions import db
from app.services.phones import normalize_phone
from app.views.access import ADMIN, BUSINESS, FINANCE, RESIDENT, STAFF, role_names
from app.views.base import BranchScopeFilter, PortalViewMixin
from app.views.related import LookupViewMixin

#: The roles a user other than an administrator may grant or take away.
ROLES_STAFF_MAY_GRANT = frozenset({STAFF, RESIDENT, BUSINESS})

#: How the roles read in the back office (their names are identifiers in the policy).
ROLE_LABELS = {
    ADMIN: "Администратор",
    STAFF: "Сотрудник филиала",
    FINANCE: "Финансист",
    RESIDENT: "Физическое лицо",
    BUSINESS: "Организация",
    "Public": "Гость",
}


class UserRefused(Exception):
    """A change of a user account the back office refuses; the message is shown."""


def signed_in_as_admin() -> bool:
    user = getattr(g, "user", None)
    return bool(user and user.is_authenticated and ADMIN in role_names(user))


def role_label(role: Role) -> str:
    return ROLE_LABELS.get(role.name, role.name)


def grantable_roles() -> list[Role]:
    """The roles the signed-in user may offer in a form: all of them for an administrator."""
    query = db.session.query(Role).order_by(Role.name)
    if not signed_in_as_admin():
        query = query.filter(Role.name.in_(ROLES_STAFF_MAY_GRANT))
    return query.all()


def roles_field(required: bool) -> QuerySelectMultipleField:
    return QuerySelectMultipleField(
        "Роли",
        query_func=grantable_roles,
        get_pk_func=lambda role: role.id,
        get_label=role_label,
        validators=[DataRequired("Выберите хотя бы одну роль.")] if required else [Optional()],
        widget=Select2ManyWidget(),
        description="Что пользователю разрешено в системе",
    )


class SubscriberView(LookupViewMixin, PortalViewMixin, UserDBModelView):
    """Users of every kind (residents, organizations, staff); operators see their branch.
    The organization is chosen by typing its name or INN (app.views.related)."""

    base_filters = [["id", BranchScopeFilter, lambda: None]]
    base_permissions = ["can_list", "can_show", "can_add", "can_edit", "can_userinfo",
                        "can_export_xlsx"]
    list_title, show_title = "Пользователи", "Пользователь"
    add_title, edit_title = "Новый пользователь", "Изменение пользователя"
    user_info_title = "Мои данные"

    label_columns = {
        "username": "Логин",
        "first_name": "Имя",
        "last_name": "Фамилия",
        "email": "Электронная почта",
        "email_is_placeholder": "Адрес почты — заглушка",
        "phone": "Телефон",
        "kind": "Тип пользователя",
        "branch": "Филиал",
        "organization": "Организация",
        "roles": "Роли",
        "active": "Активен",
        "must_change_password": "Сменить пароль при входе",
        "notify_email": "Уведомления по почте",
        "notify_sms": "Уведомления по СМС",
        "paperless": "Без бумажных квитанций",
        "mailing_opt_out": "Отказ от рассылок",
        "pd_consent_at": "Согласие на обработку ПДн",
        "pd_consent_version": "Версия согласия",
        "last_login": "Последний вход",
        "login_count": "Входов",
        "fail_login_count": "Неудачных входов подряд",
        "created_on": "Создан",
        "changed_on": "Изменён",
        "password": "Пароль",
        "conf_password": "Пароль ещё раз",
    }
    description_columns = {
        "username": "Для входа сотрудников и организаций; жители входят по телефону",
        "phone": "Любой привычный формат: 8 918 123-45-67, +7 918 1234567",
        "kind": "Физическое лицо, организация или сотрудник",
        "branch": "Филиал, к которому относится пользователь",
        "roles": "Что пользователю разрешено в системе",
        "active": "Неактивный пользователь не может войти; удалять пользователей не нужно",
        "must_change_password": "При следующем входе система попросит задать новый пароль",
        "password": "Временный пароль; сообщите его пользователю безопасным способом",
        "conf_password": "Повторите пароль",
    }

    list_columns = ["username", "last_name", "first_name", "kind", "phone", "email", "branch",
                    "roles", "active", "last_login"]
    show_fieldsets = [
        ("Учётная запись", {"fields": ["username", "kind", "roles", "active",
                                       "must_change_password"]}),
        ("Личные данные", {"fields": ["last_name", "first_name", "phone", "email",
                                      "email_is_placeholder"]}),
        ("Филиал и организация", {"fields": ["branch", "organization"]}),
        ("Уведомления", {"fields": ["notify_email", "notify_sms", "paperless",
                                    "mailing_opt_out", "pd_consent_at",
                                    "pd_consent_version"]}),
        ("Входы в систему", {"fields": ["last_login", "login_count", "fail_login_count",
                                        "created_on", "changed_on"], "expanded": False}),
    ]
    user_show_fieldsets = [
        ("Учётная запись", {"fields": ["username", "roles", "branch"]}),
        ("Личные данные", {"fields": ["last_name", "first_name", "phone", "email"]}),
    ]
    edit_columns = ["last_name", "first_name", "username", "kind", "phone", "email", "branch",
                    "organization", "roles", "active", "must_change_password", "notify_email",
                    "notify_sms", "paperless", "mailing_opt_out"]
    add_columns = [*edit_columns, "password", "conf_password"]
    search_columns = ["username", "last_name", "first_name", "email", "phone", "kind",
                      "branch", "organization", "roles", "active", "last_login"]
    order_columns = ["username", "last_name", "first_name", "kind", "phone", "email", "active",
                     "last_login"]
    base_order = ("last_name", "asc")
    choices_columns = {"kind": m.UserKind.labels}
    formatters_columns = {"roles": lambda roles: ", ".join(role_label(r) for r in roles or [])}
    add_form_extra_fields = {**UserDBModelView.add_form_extra_fields,
                             "roles": roles_field(required=True)}
    edit_form_extra_fields = {"roles": roles_field(required=True)}
    search_form_extra_fields = {"roles": roles_field(required=False)}
    validators_columns = {}

    def clean_row(self, item):
        self._check_roles(item)
        self._normalize_phone(item)

    @staticmethod
    def _check_roles(item) -> None:
        if signed_in_as_admin():
            return
        history = inspect(item).attrs.roles.history
        before = {r.name for r in [*history.unchanged, *history.deleted]}
        after = {r.name for r in item.roles}
        if not (before | after) <= ROLES_STAFF_MAY_GRANT:
            raise UserRefused("Роли администратора и финансиста выдаёт и снимает "
                              "только администратор.")

    @staticmethod
    def _normalize_phone(item) -> None:
        if not item.phone:
            item.phone = None
            return
        phone = normalize_phone(item.phone)
        if phone is None:
            raise UserRefused("Телефон указан неверно: нужен российский номер, "
                              "например 8 918 123-45-67.")
        item.phone = phone
