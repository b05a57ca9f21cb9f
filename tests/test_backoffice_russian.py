"""The back office's access pages read in Russian: roles with their permissions by name
(«Начисления — просмотр списка»), a policy role's permissions as its rules grant them, the
lists of permissions and sections, groups, login statistics, the password and own-data forms
and the sign-in page."""
from __future__ import annotations

import html
import json
import re

import pytest
from flask import g
from flask_appbuilder.security.sqla.models import Permission, PermissionView, Role, ViewMenu
from sqlalchemy import select

from app.services import permission_names as names
from app.views.access import ADMIN, FINANCE, STAFF
from app.views.roles import permission_names

CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)
#: How FAB shows a permission: "can list on ChargeView", "can_list", "menu access on Billing".
FAB_WORDING = re.compile(r"\bcan[ _]\w+|\bmenu[ _]access\b|\bon [A-Z]\w+|\b[A-Z]\w*View\b|"
                         r"\b[A-Z]\w*Api\b|\^\(")


@pytest.fixture
def admin(client, make_user_fn, login):
    user = make_user_fn("admin", ADMIN)
    g.pop("_login_user", None)
    assert login(user.username).status_code == 302
    return user


def page(client, url: str, status: int = 200) -> str:
    g.pop("_login_user", None)
    response = client.get(url)
    assert response.status_code == status, url
    return response.get_data(as_text=True)


def search_form(body: str) -> str:
    """The search form's labels and fields, which FAB passes to its script as JSON."""
    arguments = " ".join(re.findall(r"new AdminFilters\((.*?)\);", body, re.S))
    return " ".join(json.loads(f'"{part}"')
                    for part in re.findall(r'"((?:[^"\\]|\\.)*)"', arguments))


def visible(body: str) -> str:
    """The page's text as read on screen, the search form's included, without markup."""
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", text + " " + search_form(body)))


def table_of(body: str) -> str:
    found = re.search(r'<table class="table table-bordered[^"]*">(.*?)</table>', body, re.S)
    assert found, "no table"
    return html.unescape(re.sub(r"<[^>]+>", " ", found.group(1)))


def options_of(body: str, name: str) -> dict[str, tuple[str, bool]]:
    """A form select's options: value -> (text, selected)."""
    select_html = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', body, re.S)
    assert select_html, name
    return {value: (html.unescape(text), "selected" in attrs)
            for attrs, value, text in re.findall(
                r'<option([^>]*?)value="([^"]*)"[^>]*>(.*?)</option>', select_html.group(1))}


def role_id(session, name: str) -> int:
    return session.scalar(select(Role.id).filter_by(name=name))


def permission_view(session, permission: str, view: str) -> PermissionView:
    return session.scalar(select(PermissionView).join(Permission).join(ViewMenu).where(
        Permission.name == permission, ViewMenu.name == view))


def granted_labels(app, session, role: str) -> set[str]:
    """What FAB's own check lets a policy role do, by name."""
    sm, named = app.appbuilder.sm, permission_names()
    return {named.of(pv) for pv in session.scalars(select(PermissionView))
            if sm._has_access_builtin_roles(Role(name=role), pv.permission.name,
                                            pv.view_menu.name)}


# The names ------------------------------------------------------------------------------------


def test_every_action_and_section_has_a_russian_name(app, session):
    """Every synced permission and section: a view or menu item added without a Russian
    title, or a new action, fails here until it has one."""
    named = permission_names()
    for permission in session.scalars(select(Permission.name)):
        assert CYRILLIC.search(names.action_name(permission)), permission
    for view in session.scalars(select(ViewMenu.name)):
        assert CYRILLIC.search(named.view(view)), view
        assert not FAB_WORDING.search(named.view(view)), view
    labels = [named.of(pv) for pv in session.scalars(select(PermissionView))]
    assert len(labels) == len(set(labels)), "two permissions read alike"


def test_sections_are_named_as_the_menu_and_the_lists_name_them(app):
    named = permission_names()
    assert named.view("ChargeView") == "Начисления"  # the menu's label
    assert named.view("PaymentReconciliationView") == "Сверка платежей"  # menu, not title
    assert named.view("ResidentChargeView") == "Личный кабинет: начисления"
    assert named.view("Billing") == "Раздел меню «Расчёты»"
    assert named.view("List Users") == "Пользователи"  # FAB's own item, translated
    assert named.view("Security") == "Раздел меню «Доступ»"


# Roles ------------------------------------------------------------------------------------------


def test_roles_list_names_roles_and_permissions_in_russian(app, client, session, admin):
    body = page(client, "/roles/list/")
    rows = table_of(body)
    for label in ("Администратор", "Сотрудник филиала", "Финансист", "Физическое лицо",
                  "Организация", "Гость"):
        assert label in rows, label
    assert "Начисления — просмотр списка" in rows
    assert "Раздел меню «Расчёты» — пункт меню" in rows
    assert not FAB_WORDING.search(visible(body)), FAB_WORDING.search(visible(body))
    assert "Копировать роль" in body and "Скопировать выбранные роли?" in body


@pytest.mark.parametrize("role, shown, not_shown", [
    (STAFF, "Начисления — просмотр списка", "Начисления — добавление"),
    (FINANCE, "Начисления — добавление", "Роли — просмотр списка"),
], ids=["staff", "finance"])
def test_a_policy_role_shows_what_its_rules_grant(app, client, session, admin, role, shown,
                                                   not_shown):
    body = page(client, f"/roles/show/{role_id(session, role)}")
    text = visible(body)
    assert "политика ролей портала" in text
    assert not FAB_WORDING.search(text), FAB_WORDING.search(text)
    listed = {html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", body)}
    granted = granted_labels(app, session, role)
    assert granted and granted <= listed
    assert shown in granted and not_shown not in listed


def test_the_admin_role_page_lists_its_database_permissions(client, session, admin):
    admin_role = session.get(Role, role_id(session, ADMIN))
    body = page(client, f"/roles/show/{admin_role.id}")
    named = permission_names()
    for pv in admin_role.permissions:
        assert f"<li>{html.escape(named.of(pv), quote=False)}</li>" in body, named.of(pv)
    assert "Роли — просмотр списка" in body and "Администратор" in body
    assert not FAB_WORDING.search(visible(body))


def test_role_form_offers_permissions_by_name(client, session, admin):
    admin_role = session.get(Role, role_id(session, ADMIN))
    body = page(client, f"/roles/edit/{admin_role.id}")
    options = options_of(body, "permissions")
    assert len(options) == session.query(PermissionView).count()
    assert {value for value, (_text, selected) in options.items() if selected} == \
        {str(pv.id) for pv in admin_role.permissions}
    for text, _selected in options.values():
        assert " — " in text and CYRILLIC.search(text) and not FAB_WORDING.search(text), text
    charge_list = permission_view(session, "can_list", "ChargeView")
    assert options[str(charge_list.id)][0] == "Начисления — просмотр списка"
    assert "Изменение роли" in body and not FAB_WORDING.search(visible(body))


def test_a_new_role_gets_the_permissions_chosen_by_name(client, session, admin):
    charge_list = permission_view(session, "can_list", "ChargeView")
    menu = permission_view(session, "menu_access", "ChargeView")
    g.pop("_login_user", None)
    response = client.post("/roles/add", data={"name": "Контролёр",
                                                "permissions": [charge_list.id, menu.id]})
    assert response.status_code == 302
    role = session.scalar(select(Role).filter_by(name="Контролёр"))
    assert {pv.id for pv in role.permissions} == {charge_list.id, menu.id}
    listed = re.findall(r"<li>(.*?)</li>", page(client, f"/roles/show/{role.id}"))
    assert [html.unescape(item) for item in listed if "Начисления" in item] == [
        "Начисления — просмотр списка", "Начисления — пункт меню"]
    g.pop("_login_user", None)
    edited = client.post(f"/roles/edit/{role.id}", data={"name": "Контролёр",
                                                         "permissions": [charge_list.id]})
    assert edited.status_code == 302
    session.expire_all()
    assert [pv.id for pv in session.get(Role, role.id).permissions] == [charge_list.id]


def test_a_role_with_an_unknown_permission_is_refused(client, session, admin):
    before = session.query(Role).count()
    g.pop("_login_user", None)
    response = client.post("/roles/add", data={"name": "Контролёр", "permissions": ["999999"]})
    assert response.status_code == 200
    assert "Недопустимое значение" in response.get_data(as_text=True)
    assert session.query(Role).count() == before


def test_copying_a_policy_role_copies_what_it_grants(app, client, session, admin):
    g.pop("_login_user", None)
    response = client.post("/roles/action_post", data={"action": "copyrole",
                                                        "rowid": [role_id(session, STAFF)]})
    assert response.status_code == 302
    session.expire_all()
    copy = session.scalar(select(Role).filter_by(name="Сотрудник филиала (копия)"))
    assert copy is not None
    named = permission_names()
    assert {named.of(pv) for pv in copy.permissions} == granted_labels(app, session, STAFF)


def test_roles_are_searched_by_a_permission_named_in_russian(client, session, admin):
    body = page(client, "/roles/list/")
    text = visible(body)
    assert "Начисления — просмотр списка" in text and not FAB_WORDING.search(text)
    admin_only = permission_view(session, "can_list", "RoleModelView")
    rows = table_of(page(client, f"/roles/list/?_flt_0_permissions={admin_only.id}"))
    assert "Администратор" in rows and "Сотрудник филиала" not in rows


# Permissions and sections -------------------------------------------------------------------


@pytest.mark.parametrize("url, title, shown", [
    ("/permissions/list/?psize_PermissionModelView=100", "Виды прав",
     ["просмотр списка", "пункт меню", "экспорт в Excel"]),
    ("/viewmenus/list/?psize_ViewMenuModelView=100", "Разделы и меню",
     ["Начисления", "Раздел меню «Расчёты»", "Личный кабинет: начисления", "API: счета"]),
    ("/permissionviews/list/?psize_PermissionViewModelView=100", "Права на разделы",
     ["Начисления", "просмотр списка", "Раздел или пункт меню", "Действие"]),
], ids=["actions", "sections", "permissions"])
def test_permission_lists_name_actions_and_sections(client, admin, url, title, shown):
    body = page(client, url)
    rows = table_of(body)
    assert title in body
    for text in shown:
        assert text in rows, text
    assert not FAB_WORDING.search(visible(body)), FAB_WORDING.search(visible(body))


def test_permissions_are_searched_by_section_and_action_named_in_russian(client, session,
                                                                        admin):
    body = page(client, "/permissionviews/list/")
    sections = {text for text, _selected in options_of(search_form(body), "view_menu").values()}
    assert "Начисления" in sections and "ChargeView" not in sections
    charge = session.scalar(select(ViewMenu.id).filter_by(name="ChargeView"))
    rows = table_of(page(client, f"/permissionviews/list/?_flt_0_view_menu={charge}"))
    assert "экспорт в Excel" in rows and "Платежи" not in rows


# Groups, statistics, own data, passwords, sign-in -----------------------------------------------


def test_groups_pages_are_russian(client, admin):
    for url in ("/groups/list/", "/groups/add"):
        text = visible(page(client, url))
        assert "Название" in text and "Роли" in text, url
        for english in ("Name", "Label", "Description", "Users", "Roles"):
            assert not re.search(rf"\b{english}\b", text), (url, english)
    options = options_of(page(client, "/groups/add"), "roles")
    assert "Сотрудник филиала" in {text for text, _selected in options.values()}


def test_login_statistics_are_russian(client, admin):
    body = page(client, "/userstatschartview/chart/")
    text = visible(body)
    assert "Статистика входов" in text and "Логин" in text
    assert "Входы" in text and "Неудачные входы подряд" in text
    chart = json.loads(re.search(r"var jsonData\w+ = (\{.*\})", body).group(1))
    assert [col["label"] for col in chart["cols"]] == ["Логин", "Входов"]
    for english in ("Login Count", "Failed Login Count", "First Name", "Last Name"):
        assert english not in text, english


def test_own_data_and_password_forms_are_russian(client, admin):
    info = visible(page(client, "/users/userinfo/"))
    assert "Сменить пароль" in info and "Изменить мои данные" in info
    edit = visible(page(client, "/userinfoeditview/form"))
    assert "Как вас зовут" in edit and "Ваша фамилия" in edit and "Выводить" not in edit
    for url in ("/resetmypassword/form", f"/resetpassword/form?pk={admin.id}"):
        form = visible(page(client, url))
        assert "Смена пароля" in form and "Придумайте надёжный пароль" in form, url
        assert "Сбросить форму" not in form, url
    g.pop("_login_user", None)
    changed = client.post("/resetmypassword/form", follow_redirects=True,
                          data={"password": "Новый-пароль-2026",
                                "conf_password": "Новый-пароль-2026"})
    assert "Пароль изменён" in changed.get_data(as_text=True)


def test_sign_in_page_asks_for_a_login(client):
    text = visible(page(client, "/login/"))
    assert "Логин" in text and "Пароль" in text
    assert "Имя пользователя" not in text


@pytest.mark.parametrize("request_kind", ["edit", "delete"])
def test_a_policy_role_is_not_changed_here(client, session, admin, request_kind):
    staff = session.get(Role, role_id(session, STAFF))
    charge_list = permission_view(session, "can_list", "ChargeView")
    g.pop("_login_user", None)
    if request_kind == "edit":
        response = client.post(f"/roles/edit/{staff.id}", follow_redirects=True,
                               data={"name": "Операторы", "permissions": [charge_list.id]})
    else:
        response = client.post(f"/roles/delete/{staff.id}", follow_redirects=True)
    assert "Роль «Сотрудник филиала» задаёт политика ролей портала" in \
        response.get_data(as_text=True)
    session.expire_all()
    staff = session.get(Role, staff.id)
    assert staff is not None and staff.name == STAFF and staff.permissions == []
