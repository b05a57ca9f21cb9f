"""FAB's access pages in Russian: roles, groups, permissions, sections and login statistics.

FAB shows a permission as "can list on ChargeView" and a policy role's permissions as its
regular expressions; here a permission reads «Начисления — просмотр списка»
(app.services.permission_names) and a policy role lists what its rules grant. Each class
keeps the name of FAB's class it replaces: that name is the section of its own permissions
and of its endpoints, so the synced permissions and the menu stay as they are.
PortalSecurityManager installs them (SECURITY_VIEWS).
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, redirect
from flask_appbuilder.actions import action
from flask_appbuilder.fields import QuerySelectField, QuerySelectMultipleField
from flask_appbuilder.fieldwidgets import Select2ManyWidget, Select2Widget
from flask_appbuilder.security import views as fab
from flask_appbuilder.security.sqla.models import Permission, Role, ViewMenu
from sqlalchemy import inspect
from wtforms.validators import Optional

from app.extensions import db
from app.services import permission_names as names
from app.views.base import EagerInterface
from app.views.users import ROLE_LABELS, SubscriberView, roles_field


def permission_names() -> names.PermissionNames:
    """This application's section names, gathered on first use, when every view and menu
    item is registered."""
    known = current_app.extensions.get("permission_names")
    if known is None:
        appbuilder = current_app.appbuilder
        known = names.PermissionNames(
            names.section_names(appbuilder.baseviews, appbuilder.menu.get_list()))
        current_app.extensions["permission_names"] = known
    return known


def role_label(name: str) -> str:
    return ROLE_LABELS.get(name, name)


def ordered_permission_views() -> list:
    return sorted(names.every_permission_view(db.session), key=permission_names().sort_key)


class PolicyRoleRefused(Exception):
    """A change of a role the policy sets (app.security.ROLE_POLICY); the message is shown."""


class ChoicesField(QuerySelectMultipleField):
    """FAB's multiple select, refusing an id it does not offer: FAB's own looks for such ids
    before it has read the submitted ones, and so drops them without a word."""

    def pre_validate(self, form):
        self._get_data()
        super().pre_validate(form)


def permissions_field(description: str = "") -> QuerySelectMultipleField:
    """The role's permissions as «Раздел — действие», by section (FAB labels them with
    str() of the row, "can list on ChargeView")."""
    return ChoicesField(
        "Права",
        query_func=ordered_permission_views,
        get_pk_func=lambda permission_view: permission_view.id,
        get_label=lambda permission_view: permission_names().of(permission_view),
        validators=[Optional()],
        widget=Select2ManyWidget(),
        description=description,
    )


def choice_of(label: str, model, name_of) -> QuerySelectField:
    """A search select of a small table's rows by their Russian names."""
    return QuerySelectField(
        label,
        query_func=lambda: sorted(db.session.query(model).all(),
                                  key=lambda row: name_of(row.name).casefold()),
        get_pk_func=lambda row: row.id,
        get_label=lambda row: name_of(row.name),
        allow_blank=True,
        blank_text="—",
        validators=[Optional()],
        widget=Select2Widget(),
    )


@dataclass(frozen=True)
class RoleRights:
    """A role as the pages show it: its label, whether the policy sets its permissions, and
    those permissions by name."""

    label: str
    builtin: bool
    rights: list[str]


class RoleListWidget(fab.RoleListWidget):
    template = "roles/list.html"


class RoleShowWidget(fab.RoleShowWidget):
    template = "roles/show.html"


class RoleModelView(fab.RoleModelView):
    """Roles by their Russian labels (app.views.users.ROLE_LABELS) with their permissions by
    name; a policy role's permissions as its rules grant them (its rows in the database,
    empty, are not what FAB checks)."""

    list_title, show_title = "Роли", "Роль"
    add_title, edit_title = "Новая роль", "Изменение роли"
    list_widget, show_widget = RoleListWidget, RoleShowWidget
    label_columns = {"name": "Название", "permissions": "Права", "user": "Пользователи",
                     "groups": "Группы"}
    description_columns = {
        "name": "Роли политики портала (Admin, Staff, Finance, Resident, Business, Public) "
                "называются так в коде: их не переименовывают",
        "permissions": "Что разрешено пользователям с этой ролью",
    }
    search_columns = ["name", "permissions"]
    add_form_extra_fields = {"permissions": permissions_field(
        description_columns["permissions"])}
    edit_form_extra_fields = add_form_extra_fields
    search_form_extra_fields = {"permissions": permissions_field()}

    def __init__(self, **kwargs):
        self.datamodel = EagerInterface(self.datamodel.obj)
        self.datamodel.eager_relations = ("permissions",)
        super().__init__(**kwargs)

    def _get_list_widget(self, filters, *args, **kwargs):
        widgets = super()._get_list_widget(filters, *args, **kwargs)
        rows = widgets["list"].template_args["value_columns"]
        widgets["list"].template_args["roles"] = self.rights_of(
            [(row["name"], row["permissions"]) for row in rows])
        return widgets

    def _get_show_widget(self, pk, item, *args, **kwargs):
        widgets = super()._get_show_widget(pk, item, *args, **kwargs)
        widgets["show"].template_args["role"] = self.rights_of(
            [(item.name, item.permissions)])[0]
        return widgets

    def granted(self, roles: list[tuple[str, list]]) -> list[list]:
        """The permissions of each (name, database permissions): a policy role's as its
        rules grant them, every permission read once, only when a policy role is listed."""
        rules_of = self.appbuilder.sm.builtin_roles
        every = names.every_permission_view(db.session) \
            if any(name in rules_of for name, _permissions in roles) else []
        return [names.granted_by_rules(rules_of[name], every) if name in rules_of
                else list(permissions) for name, permissions in roles]

    def rights_of(self, roles: list[tuple[str, list]]) -> list[RoleRights]:
        named, rules_of = permission_names(), self.appbuilder.sm.builtin_roles
        return [RoleRights(role_label(name), name in rules_of, named.listed(permissions))
                for (name, _rows), permissions in zip(roles, self.granted(roles))]

    def pre_update(self, item):
        """A policy role's rows in the database are not what FAB checks: changing them would
        change nothing but what the page says."""
        history = inspect(item).attrs.name.history
        self._refuse_policy_role([*history.deleted, *history.unchanged, item.name][0])
        super().pre_update(item)

    def pre_delete(self, item):
        self._refuse_policy_role(item.name)
        super().pre_delete(item)

    def _refuse_policy_role(self, name: str) -> None:
        if name in self.appbuilder.sm.builtin_roles:
            db.session.rollback()
            raise PolicyRoleRefused(
                f"Роль «{role_label(name)}» задаёт политика ролей портала: здесь её не "
                "изменить и не удалить. Скопируйте её в списке ролей и измените копию.")

    @action("copyrole", "Копировать роль", "Скопировать выбранные роли?", icon="fa-copy",
            single=False)
    def copy_role(self, items):
        """A copy named «… (копия)» with the permissions the role has, a policy role's
        included (FAB would copy its empty database rows and name it "… copy")."""
        self.update_redirect()
        granted = self.granted([(item.name, item.permissions) for item in items])
        for item, permissions in zip(items, granted):
            self.datamodel.add(Role(name=f"{role_label(item.name)} (копия)",
                                    permissions=permissions))
        return redirect(self.get_redirect())


class PermissionModelView(fab.PermissionModelView):
    """The actions a permission can grant, by their Russian names."""

    list_title = show_title = "Виды прав"
    label_columns = {"name": "Действие"}
    formatters_columns = {"name": names.action_name}


class ViewMenuModelView(fab.ViewMenuModelView):
    """The sections and menu items permissions are given on, by their Russian names."""

    list_title = show_title = "Разделы и меню"
    label_columns = {"name": "Раздел или пункт меню"}
    formatters_columns = {"name": lambda name: permission_names().view(name)}


class PermissionViewModelView(fab.PermissionViewModelView):
    """Every permission: a section with an action. Searched by either; not by role, which
    would miss the policy roles (their permissions are rules, not rows)."""

    list_title = show_title = "Права на разделы"
    label_columns = {"permission": "Действие", "view_menu": "Раздел или пункт меню",
                     "role": "Роли"}
    list_columns = ["view_menu", "permission"]
    search_columns = ["view_menu", "permission"]
    formatters_columns = {
        "permission": lambda permission: names.action_name(permission.name),
        "view_menu": lambda view_menu: permission_names().view(view_menu.name),
    }
    search_form_extra_fields = {
        "view_menu": choice_of("Раздел или пункт меню", ViewMenu,
                               lambda name: permission_names().view(name)),
        "permission": choice_of("Действие", Permission, names.action_name),
    }


class UserGroupModelView(fab.UserGroupModelView):
    """Groups of users that share roles, with Russian labels and roles by their labels."""

    label_columns = {"name": "Название", "label": "Подпись", "description": "Описание",
                     "users": "Пользователи", "roles": "Роли"}
    search_columns = ["name", "label", "roles"]
    formatters_columns = {"roles": lambda roles: ", ".join(role_label(r.name)
                                                            for r in roles or [])}
    add_form_extra_fields = {"roles": roles_field(required=False)}
    edit_form_extra_fields = add_form_extra_fields
    search_form_extra_fields = add_form_extra_fields


class UserStatsChartView(fab.UserStatsChartView):
    """Sign-ins per user, labelled and searched like the users' list."""

    chart_title = "Статистика входов"
    label_columns = dict(SubscriberView.label_columns)
    search_columns = ["username", "last_name", "first_name", "email", "active", "last_login"]
    definitions = [
        {"label": "Входы", "group": "username", "series": ["login_count"]},
        {"label": "Неудачные входы подряд", "group": "username",
         "series": ["fail_login_count"]},
    ]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # FAB labels a chart's group column with the chart's label and its series by the
        # column's name, in the dict its search form already holds.
        self.label_columns.update({column: SubscriberView.label_columns[column] for column in
                                   ("username", "login_count", "fail_login_count")})


#: The security manager's attributes these views replace (PortalSecurityManager).
SECURITY_VIEWS = {
    "rolemodelview": RoleModelView,
    "permissionmodelview": PermissionModelView,
    "viewmenumodelview": ViewMenuModelView,
    "permissionviewmodelview": PermissionViewModelView,
    "groupmodelview": UserGroupModelView,
    "userstatschartview": UserStatsChartView,
}
