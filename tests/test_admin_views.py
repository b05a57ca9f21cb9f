"""The staff back office: who sees which list, branch isolation of rows, forms and
drop-downs, the subscribers' admin, read-only ledgers and journal, Russian display, home page."""
from __future__ import annotations

import ast
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from flask import g
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.sqla.models import Role, assoc_user_group
from sqlalchemy import func, select
from werkzeug.security import check_password_hash

from app import models as m
from app.services.dashboard import StaffCounters, staff_counters
from app.views import MENU
from app.views.access import ADMIN, BUSINESS, FINANCE, RESIDENT, ROLE_POLICY, STAFF
from app.views.admin_metering import MeterView
from app.views.base import OutOfScope, PortalViewMixin
from app.views.filters import TypedFilterConverter
from app.views.resident import RESIDENT_VIEWS
from tests.factories import PASSWORD, move_roles_to_a_group
from tests.signins import session_user_id

ALL_VIEWS = [view.__name__ for view, *_ in MENU] + ["SubscriberView"]
#: Menu views that are pages rather than model lists (no columns to label).
PAGE_VIEWS = {"PaymentReconciliationView", "BillingRunView"}
CYRILLIC = re.compile("[а-яА-ЯёЁ]")

#: Views whose rows belong to a branch, with the model of their rows.
SCOPED_VIEWS = {
    "OrganizationView": "Organization",
    "ContractView": "Contract",
    "PremisesView": "Premises",
    "PersonalAccountView": "PersonalAccount",
    "MeterView": "Meter",
    "ReadingView": "Reading",
    "ChargeView": "Charge",
    "InvoiceView": "Invoice",
    "PaymentView": "Payment",
    "ContractApplicationView": "ContractApplication",
    "FeedbackView": "Feedback",
    "MailingView": "Mailing",
    "ReconciliationActView": "ReconciliationAct",
}


def url(view: str, action: str = "list", pk: int | None = None) -> str:
    base = "/users" if view == "SubscriberView" else "/" + view.lower()
    path = f"{base}/{action}/" if action == "list" else f"{base}/{action}"
    return f"{path}/{pk}" if pk is not None else path


def readable_views(role: str) -> set[str]:
    if role == ADMIN:
        return set(ALL_VIEWS)
    policy = ROLE_POLICY[role]
    return set(policy["crud"] + policy["read"])


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def refused(response) -> bool:
    return response.status_code == 403 or (
        response.status_code == 302 and "/login/" in response.headers["Location"])


@pytest.fixture
def sign_in(client, make_user_fn, login):
    """Create a user of ``role`` and sign the client in as them. Back-office users use the
    /login/ form; residents and organizations (refused there) get a session directly."""

    def _sign_in(role: str, username: str | None = None, branch_id: int | None = None,
                 kind: str = "staff"):
        user = make_user_fn(username or role.lower(), role, branch_id=branch_id, kind=kind)
        g.pop("_login_user", None)
        if kind == "staff":
            assert login(user.username).status_code == 302
        else:
            with client.session_transaction() as session:
                session["_user_id"] = session_user_id(user)
                session["_fresh"] = True
        return user

    return _sign_in


def rows_of(response) -> str:
    """The table of a list page (not its search form, which lists every choice)."""
    found = re.search(r'<table class="table table-bordered table-hover">(.*?)</table>',
                      response.get_data(as_text=True), re.S)
    return found.group(1) if found else ""


def search_fields(response) -> dict[str, str]:
    """The HTML of the search form's value inputs, which FAB passes to its script as JSON."""
    body = response.get_data(as_text=True)
    script = body[body.index("new AdminFilters("):]
    objects = [json.loads(line.strip().rstrip(",")) for line in script.splitlines()[2:5]]
    return objects[1]


def view_instance(app, name: str):
    return next(v for v in app.appbuilder.baseviews if type(v).__name__ == name)


# Who sees which list ---------------------------------------------------------------------


@pytest.mark.parametrize("role, kind", [(ADMIN, "staff"), (STAFF, "staff"),
                                        (FINANCE, "staff"), (RESIDENT, "resident"),
                                        (BUSINESS, "business")])
def test_list_pages_follow_the_role_policy(app, client, two_branches, sign_in, role, kind):
    krd, _ = two_branches
    sign_in(role, branch_id=krd.branch_id if role == STAFF else None, kind=kind)
    allowed = readable_views(role)
    for view in ALL_VIEWS:
        response = client.get(url(view))
        if view in allowed:
            assert response.status_code == 200, view
            title = str(view_instance(app, view).list_title)
            assert title in response.get_data(as_text=True), view
        else:
            assert refused(response), (view, response.status_code)


def test_anonymous_visitors_see_no_list(client, two_branches):
    for view in ALL_VIEWS:
        assert refused(client.get(url(view))), view


# Branch isolation ----------------------------------------------------------------------------


def test_staff_cannot_reach_other_branch_rows(app, client, session, two_branches, sign_in):
    krd, nvr = two_branches
    sign_in(STAFF, branch_id=krd.branch_id)
    for view, model in SCOPED_VIEWS.items():
        own, other = krd.ids[model], nvr.ids[model]
        if view not in readable_views(STAFF):
            assert refused(client.get(url(view, "show", own))), view
            continue
        assert client.get(url(view, "show", own)).status_code == 200, view
        assert client.get(url(view, "show", other)).status_code == 404, view
        permissions = view_instance(app, view).base_permissions
        edit = client.get(url(view, "edit", other))
        assert edit.status_code == 404 if "can_edit" in permissions else refused(edit), view
        before = count(session, getattr(m, model))
        delete = client.post(url(view, "delete", other))
        assert delete.status_code == 404 if "can_delete" in permissions else refused(delete)
        assert count(session, getattr(m, model)) == before, view


def test_staff_lists_show_only_own_branch(client, two_branches, sign_in):
    krd, _ = two_branches
    sign_in(STAFF, branch_id=krd.branch_id)
    body = client.get(url("PersonalAccountView")).get_data(as_text=True)
    assert "230000000001" in body and "230000000002" not in body
    body = client.get(url("MailingView")).get_data(as_text=True)
    assert "Новости Краснодар" in body and "Новости Новороссийск" not in body


def _account(world, n):
    return {"number": f"23200000000{n}", "holder_name": "Сидоров С. С.",
            "premises": world.ids["Premises"], "branch": world.branch_id,
            "tariff_group": world.ids["TariffGroup"], "status": "active",
            "opened_on": "2026-11-01"}


def _meter(world, n):
    return {"serial": f"NEW-{n}", "account": world.ids["PersonalAccount"], "zones": "1",
            "digit_capacity": "6", "active": "y"}


def _reading(world, n):
    return {"meter": world.ids["Meter"], "period": f"2026-0{n}-01", "t1": "1500",
            "source": "staff", "status": "accepted"}


def _premises(world, n):
    return {"locality": "Краснодар", "locality_type": "urban", "street": "ул. Северная",
            "house": str(10 + n), "residents": "2", "branch": world.branch_id}


def _organization(world, n):
    return {"name": f"ИП Новиков {n}", "inn": f"23100000{n:04d}", "branch": world.branch_id}


def _contract(world, n):
    return {"number": f"Д-новый-{n}", "organization": world.ids["Organization"],
            "branch": world.branch_id, "signed_on": "2026-11-01", "valid_from": "2026-11-01",
            "status": "active"}


def _application(world, n):
    return {"applicant_name": f"Заявитель {n}", "address": "ул. Мира, 5",
            "branch": world.branch_id}


def _feedback(world, n):
    return {"topic": f"Звонок {n}", "message": "Просит перезвонить",
            "account": world.ids["PersonalAccount"], "branch": world.branch_id}


def _mailing(world, n):
    return {"subject": f"Отключения {n}", "body": "Плановые работы", "branch": world.branch_id}


@pytest.mark.parametrize("view, model, form, field, value, message", [
    ("OrganizationView", m.Organization, _organization, "inn", "٢٣١٠٠٠٠٠٠١",
     "ИНН — 10 цифр"),
    ("OrganizationView", m.Organization, _organization, "kpp", "２３１００１００１",
     "КПП — 9 цифр."),
    ("PremisesView", m.Premises, _premises, "postcode", "٣٥٠٠٠٠", "Почтовый индекс — 6 цифр."),
    ("PersonalAccountView", m.PersonalAccount, _account, "number", "２３１００００００００９",
     "Номер лицевого счёта — от 10 до 13 цифр."),
])
def test_requisites_take_only_ascii_digits(client, session, two_branches, sign_in, view, model,
                                           form, field, value, message):
    """Other scripts' digits (Arabic-Indic, full-width) pass Python's \\d but would reach
    bills, QR codes and acts as such: refused like letters."""
    krd, _ = two_branches
    sign_in(ADMIN)
    before = count(session, model)
    response = client.post(url(view, "add"), data={**form(krd, 7), field: value})
    assert response.status_code == 200 and message in response.get_data(as_text=True)
    assert count(session, model) == before


@pytest.mark.parametrize("view, model, form", [
    ("PersonalAccountView", m.PersonalAccount, _account),
    ("MeterView", m.Meter, _meter),
    ("ReadingView", m.Reading, _reading),
    ("PremisesView", m.Premises, _premises),
    ("OrganizationView", m.Organization, _organization),
    ("ContractView", m.Contract, _contract),
    ("ContractApplicationView", m.ContractApplication, _application),
    ("FeedbackView", m.Feedback, _feedback),
    ("MailingView", m.Mailing, _mailing),
])
def test_staff_add_into_other_branch_changes_nothing(client, session, two_branches, sign_in,
                                                     view, model, form):
    krd, nvr = two_branches
    sign_in(STAFF, branch_id=krd.branch_id)
    before = count(session, model)
    client.post(url(view, "add"), data=form(nvr, 1))
    assert count(session, model) == before
    response = client.post(url(view, "add"), data=form(krd, 2))
    assert response.status_code == 302
    assert count(session, model) == before + 1


def test_staff_binds_accounts_of_own_branch_only(client, session, two_branches, make_user_fn,
                                                sign_in):
    krd, nvr = two_branches
    resident = make_user_fn("sidorov", RESIDENT, kind="resident", branch_id=krd.branch_id)
    sign_in(STAFF, branch_id=krd.branch_id)
    client.post(url("AccountBindingView", "add"),
                data={"user": resident.id, "account": nvr.ids["PersonalAccount"]})
    assert count(session, m.AccountBinding) == 0
    response = client.post(url("AccountBindingView", "add"),
                           data={"user": resident.id, "account": krd.ids["PersonalAccount"]})
    assert response.status_code == 302
    binding = session.scalars(select(m.AccountBinding)).one()
    assert (binding.user_id, binding.method) == (resident.id, "staff")
    assert "Сотрудником филиала" in rows_of(client.get(url("AccountBindingView")))


def test_staff_add_form_offers_only_own_branch_rows(client, two_branches, sign_in):
    krd, _ = two_branches
    sign_in(STAFF, branch_id=krd.branch_id)
    body = client.get(url("PersonalAccountView", "add")).get_data(as_text=True)
    assert "Краснодарэнергосбыт" in body and "Новороссийскэнергосбыт" not in body
    found = client.get("/personalaccountview/lookup/add/premises?q=ул. Красная").get_json()
    assert [r["text"] for r in found["results"]] == ["Краснодар, ул. Красная, д. 1, кв. 1"]
    found = client.get("/readingview/lookup/add/meter?q=SN-").get_json()["results"]
    assert [r["text"] for r in found] == ["SN-krd-1 (л/с 230000000001)"]


def test_scope_check_refuses_a_row_that_bypasses_the_form(app, session, two_branches,
                                                         make_user_fn):
    krd, nvr = two_branches
    staff = make_user_fn("oper", STAFF, branch_id=krd.branch_id)
    view = view_instance(app, MeterView.__name__)
    with app.test_request_context():
        g.user = staff
        with pytest.raises(OutOfScope):
            view.pre_add(m.Meter(serial="X-1", account_id=nvr.ids["PersonalAccount"]))
        view.pre_add(m.Meter(serial="X-2", account_id=krd.ids["PersonalAccount"]))


# Subscribers -------------------------------------------------------------------------------


def test_staff_sees_and_edits_only_own_branch_subscribers(app, client, session, two_branches,
                                                          make_user_fn, sign_in):
    krd, nvr = two_branches
    ours = make_user_fn("ivanova", RESIDENT, kind="resident", branch_id=krd.branch_id)
    theirs = make_user_fn("petrova", RESIDENT, kind="resident", branch_id=nvr.branch_id)
    sign_in(STAFF, branch_id=krd.branch_id)
    rows = rows_of(client.get(url("SubscriberView")))
    assert "ivanova" in rows and "petrova" not in rows
    assert client.get(url("SubscriberView", "show", theirs.id)).status_code == 404
    assert client.get(url("SubscriberView", "edit", theirs.id)).status_code == 404
    role_id = _role_id(app, RESIDENT)
    form = {"last_name": "Иванова", "first_name": "Мария", "username": "ivanova",
            "kind": "resident", "email": "ivanova@example.test", "phone": "8 918 123-45-67",
            "branch": krd.branch_id, "roles": role_id, "active": "y"}
    assert client.post(url("SubscriberView", "edit", ours.id), data=form).status_code == 302
    session.expire_all()
    assert session.get(m.PortalUser, ours.id).first_name == "Мария"
    assert session.get(m.PortalUser, ours.id).phone == "+79181234567"
    form.update(username="petrova", email="petrova@example.test", phone="")
    assert client.post(url("SubscriberView", "edit", theirs.id), data=form).status_code == 404
    session.expire_all()
    assert session.get(m.PortalUser, theirs.id).first_name == "Тест"


def _role_id(app, name: str) -> int:
    return app.appbuilder.sm.find_role(name).id


def test_staff_cannot_grant_admin_or_finance(app, client, session, two_branches,
                                             make_user_fn, sign_in):
    krd, _ = two_branches
    colleague = make_user_fn("colleague", STAFF, branch_id=krd.branch_id)
    sign_in(STAFF, branch_id=krd.branch_id)
    body = client.get(url("SubscriberView", "add")).get_data(as_text=True)
    assert "Сотрудник филиала" in body
    assert "Администратор" not in body and "Финансист" not in body
    new_user = {"last_name": "Новиков", "first_name": "Пётр", "username": "novikov",
                "kind": "staff", "email": "novikov@example.test", "branch": krd.branch_id,
                "active": "y", "password": PASSWORD, "conf_password": PASSWORD}
    before = count(session, m.PortalUser)
    for forbidden in (ADMIN, FINANCE):
        client.post(url("SubscriberView", "add"),
                    data={**new_user, "roles": _role_id(app, forbidden)})
        assert count(session, m.PortalUser) == before, forbidden
    edit = {"last_name": "Коллегов", "first_name": "Тест", "username": "colleague",
            "kind": "staff", "email": "colleague@example.test", "branch": krd.branch_id,
            "active": "y", "roles": _role_id(app, ADMIN)}
    client.post(url("SubscriberView", "edit", colleague.id), data=edit)
    session.expire_all()
    assert [r.name for r in session.get(m.PortalUser, colleague.id).roles] == [STAFF]

    response = client.post(url("SubscriberView", "add"),
                           data={**new_user, "roles": _role_id(app, STAFF)})
    assert response.status_code == 302
    created = session.scalar(select(m.PortalUser).where(m.PortalUser.username == "novikov"))
    assert created.branch_id == krd.branch_id and created.password != PASSWORD
    assert check_password_hash(created.password, PASSWORD)


def test_admin_may_grant_any_role(app, client, session, sign_in):
    sign_in(ADMIN)
    body = client.get(url("SubscriberView", "add")).get_data(as_text=True)
    assert "Администратор" in body and "Финансист" in body
    response = client.post(url("SubscriberView", "add"), data={
        "last_name": "Счетова", "first_name": "Ольга", "username": "schetova", "kind": "staff",
        "email": "schetova@example.test", "active": "y", "roles": _role_id(app, FINANCE),
        "password": PASSWORD, "conf_password": PASSWORD})
    assert response.status_code == 302
    created = session.scalar(select(m.PortalUser).where(m.PortalUser.username == "schetova"))
    assert [r.name for r in created.roles] == [FINANCE]


# Finance, ledgers, journal ---------------------------------------------------------------------


def test_finance_reads_both_branches_but_cannot_change_customer_data(
        client, session, two_branches, sign_in):
    krd, nvr = two_branches
    sign_in(FINANCE)
    body = client.get(url("PersonalAccountView")).get_data(as_text=True)
    assert "230000000001" in body and "230000000002" in body
    assert client.get(url("PersonalAccountView", "show", nvr.ids["PersonalAccount"])
                      ).status_code == 200
    for view, model, form in [("PersonalAccountView", m.PersonalAccount, _account),
                              ("MeterView", m.Meter, _meter),
                              ("OrganizationView", m.Organization, _organization)]:
        assert refused(client.get(url(view, "add"))), view
        assert refused(client.get(url(view, "edit", krd.ids[model.__name__]))), view
        before = count(session, model)
        assert refused(client.post(url(view, "add"), data=form(krd, 3))), view
        assert count(session, model) == before, view
    for subscriber_action in ("add", "edit"):
        pk = None if subscriber_action == "add" else 1
        assert refused(client.get(url("SubscriberView", subscriber_action, pk)))


def test_finance_registers_a_payment_in_russian(client, session, two_branches, sign_in):
    krd, _ = two_branches
    sign_in(FINANCE)
    form = client.get(url("PaymentView", "add")).get_data(as_text=True)
    assert "Банковская карта" in form and "Касса" in form and "Оплачен" in form
    before = count(session, m.Payment)
    response = client.post(url("PaymentView", "add"), data={
        "account": krd.ids["PersonalAccount"], "amount": "1234567.5", "method": "cash",
        "status": "succeeded", "paid_at": "2026-11-20 10:00:00"})
    assert response.status_code == 302
    assert count(session, m.Payment) == before + 1
    rows = rows_of(client.get(url("PaymentView")))
    assert "1\u00a0234\u00a0567,50" in rows and "Касса" in rows and "Оплачен" in rows
    assert "succeeded" not in rows and "cash" not in rows


@pytest.mark.parametrize("view, model", [("ChargeView", "Charge"), ("InvoiceView", "Invoice"),
                                         ("PaymentView", "Payment")])
def test_ledger_rows_are_never_edited_or_deleted(app, client, session, two_branches, sign_in,
                                                 view, model):
    krd, _ = two_branches
    sign_in(ADMIN)
    permissions = view_instance(app, view).base_permissions
    assert "can_delete" not in permissions and "can_edit" not in permissions
    pk = krd.ids[model]
    before = count(session, getattr(m, model))
    assert refused(client.post(url(view, "delete", pk)))
    assert refused(client.get(url(view, "edit", pk)))
    assert count(session, getattr(m, model)) == before
    body = client.get(url(view)).get_data(as_text=True)
    assert f"/{view.lower()}/delete/" not in body


@pytest.mark.parametrize("role", [ADMIN, STAFF, FINANCE])
def test_audit_journal_is_read_only(app, client, session, two_branches, sign_in, role):
    krd, _ = two_branches
    sign_in(role, branch_id=krd.branch_id if role == STAFF else None)
    event = session.scalars(select(m.AuditEvent).order_by(m.AuditEvent.id)).first()
    before = count(session, m.AuditEvent)
    assert refused(client.get(url("AuditEventView", "add")))
    assert refused(client.post(url("AuditEventView", "add"), data={"action": "forged"}))
    assert refused(client.get(url("AuditEventView", "edit", event.id)))
    assert refused(client.post(url("AuditEventView", "edit", event.id),
                               data={"action": "forged"}))
    assert refused(client.post(url("AuditEventView", "delete", event.id)))
    assert count(session, m.AuditEvent) == before
    assert session.get(m.AuditEvent, event.id).action == "login.success"
    assert view_instance(app, "AuditEventView").base_permissions == ["can_list", "can_show"]


def test_only_draft_mailings_are_deleted(client, session, two_branches, sign_in):
    krd, _ = two_branches
    sign_in(STAFF, branch_id=krd.branch_id)
    sent = m.Mailing(subject="Уже ушла", body="Текст", branch_id=krd.branch_id, status="done")
    session.add(sent)
    session.commit()
    client.post(url("MailingView", "delete", sent.id))
    assert session.get(m.Mailing, sent.id) is not None
    draft = krd.ids["Mailing"]
    assert client.post(url("MailingView", "delete", draft)).status_code == 302
    session.expire_all()
    assert session.get(m.Mailing, draft) is None


def test_staff_reviews_a_flagged_reading(client, session, two_branches, sign_in):
    krd, _ = two_branches
    reading = session.get(m.Reading, krd.ids["Reading"])
    reading.status = "flagged"
    session.commit()
    sign_in(STAFF, branch_id=krd.branch_id)
    rows = rows_of(client.get(url("ReadingView")))
    assert "На проверке" in rows and "октябрь 2026" in rows and "1\u00a0234,000" in rows
    response = client.post(url("ReadingView", "edit", reading.id), data={
        "t1": "1234", "status": "accepted", "review_note": "Сверено с фото счётчика"})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(m.Reading, reading.id).status == "accepted"


@pytest.mark.parametrize("values, message", [
    ({"t1": "1500.5"}, "целое число"),
    ({"t1": "1500", "t2": "300"}, "Прибор учёта однотарифный: T2 не заполняется."),
])
def test_staff_readings_follow_the_cabinet_rules(client, session, two_branches, sign_in,
                                                 values, message):
    krd, _ = two_branches
    sign_in(STAFF, branch_id=krd.branch_id)
    before = count(session, m.Reading)
    client.post(url("ReadingView", "add"), data={
        "meter": krd.ids["Meter"], "period": "2026-11-01", "source": "staff",
        "status": "accepted", **values})
    assert count(session, m.Reading) == before
    with client.session_transaction() as flask_session:
        assert any(message in text for _, text in flask_session.get("_flashes", []))


def test_unticked_flag_is_saved(client, session, two_branches, sign_in):
    krd, _ = two_branches
    sign_in(STAFF, branch_id=krd.branch_id)
    meter_id = krd.ids["Meter"]
    response = client.post(url("MeterView", "edit", meter_id), data={
        "serial": "SN-krd-1", "account": krd.ids["PersonalAccount"], "zones": "1",
        "digit_capacity": "6"})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(m.Meter, meter_id).active is False


# Russian everywhere ----------------------------------------------------------------------------


def test_every_column_and_title_is_russian(app):
    views = [v for v in app.appbuilder.baseviews if isinstance(v, PortalViewMixin)]
    resident = {view.__name__ for view in RESIDENT_VIEWS}
    assert {type(v).__name__ for v in views} == (set(ALL_VIEWS) - PAGE_VIEWS) | resident
    for view in views:
        name = type(view).__name__
        for title in (view.list_title, view.show_title, view.add_title, view.edit_title):
            assert CYRILLIC.search(str(title)), (name, title)
        columns = {*view.list_columns, *view.show_columns, *view.add_columns,
                   *view.edit_columns, *view.search_columns}
        for column in columns:
            field = (view.add_form_extra_fields.get(column)
                     or view.edit_form_extra_fields.get(column))
            label = field.args[0] if field is not None else view.label_columns.get(column)
            assert label and CYRILLIC.search(str(label)), (name, column, label)
        for column, description in view.description_columns.items():
            assert CYRILLIC.search(str(description)), (name, column)


def test_status_values_are_offered_as_russian_selects(client, sign_in):
    sign_in(ADMIN)
    form = client.get(url("ReadingView", "add")).get_data(as_text=True)
    for value, label in m.ReadingStatus.labels.items():
        assert re.search(f'<option[^>]*value="{value}"[^>]*>{label}</option>', form), value
    assert re.search(r'<option selected value="accepted">', form)
    assert re.search(r'<option selected value="staff">Сотрудник</option>', form)
    page = client.get(url("PaymentView"))
    operators = page.get_data(as_text=True)
    assert json.loads(re.search(r'"status": (\[[^\]]*\])', operators[
        operators.index("new AdminFilters("):]).group(1)) == ["Равно", "Не равно"]
    search = search_fields(page)
    assert re.search(r'<option[^>]*value="refunded"[^>]*>Возвращён</option>', search["status"])
    assert 'value=""' in search["created_at"]


def test_menu_and_login_page_are_russian(client, sign_in):
    login_page = client.get("/login/").get_data(as_text=True)
    assert "Вход" in login_page and "Пароль" in login_page
    sign_in(ADMIN)
    home = client.get("/").get_data(as_text=True)
    for english in ("List Users", "Security", "List Roles", "Profile", "Logout", "Welcome"):
        assert f">{english}<" not in home and f" {english}<" not in home, english
    for russian in ("Доступ", "Пользователи", "Роли", "Абоненты", "Расчёты", "Профиль"):
        assert russian in home, russian


def test_only_staff_pages_carry_the_back_office_menu(client, session, sign_in):
    """Visitors, residents and organizations get the portal's own header (the brand, «Войти» or
    «Выйти») and no back-office menu, even a customer's account that was given a back-office
    role by mistake."""
    public = client.get("/auth/").get_data(as_text=True)
    assert 'class="site-header"' in public and 'class="dropdown-toggle"' not in public
    resident = sign_in(RESIDENT, kind="resident")
    resident.roles.append(session.scalar(select(Role).filter_by(name=STAFF)))
    session.commit()
    cabinet = client.get("/cabinet/")
    assert cabinet.status_code == 200
    cabinet = cabinet.get_data(as_text=True)
    assert 'class="dropdown-toggle"' not in cabinet
    assert ">Выйти</span>" in cabinet
    for item in ("Пользователи", "Роли", "Абоненты", "Расчёты"):
        assert item not in cabinet, item


# Home page -------------------------------------------------------------------------------------


def test_landing_page_for_visitors(client):
    body = client.get("/").get_data(as_text=True)
    assert "НЭСК — личный кабинет" in body
    for link in ('href="/auth/"', 'href="/business/login"', 'href="/login/'):
        assert link in body, link
    for text in ("Для физических лиц", "Для юридических лиц и ИП", "Вход для сотрудников",
                 "8-800-600-02-20", "contact@nesk.ru"):
        assert text in body, text


def test_dashboard_counts_within_branch_scope(session, two_branches):
    krd, nvr = two_branches
    session.get(m.Reading, nvr.ids["Reading"]).status = "flagged"
    session.get(m.Feedback, krd.ids["Feedback"]).status = "answered"
    session.commit()
    # Each branch: a household's account and its organization's point of supply.
    assert staff_counters(session, krd.branch_id) == StaffCounters(2, 0, 1, 0)
    assert staff_counters(session, nvr.branch_id) == StaffCounters(2, 1, 1, 1)
    assert staff_counters(session, None) == StaffCounters(4, 1, 2, 1)


def test_dashboard_shows_the_staff_branch_counters(client, session, two_branches, sign_in):
    krd, nvr = two_branches
    session.get(m.Reading, nvr.ids["Reading"]).status = "flagged"
    session.commit()
    sign_in(STAFF, branch_id=krd.branch_id)
    body = client.get("/").get_data(as_text=True)
    assert "Краснодарэнергосбыт" in body
    assert "Показания на проверке" in body and "Новые обращения" in body
    assert "/readingview/list/?_flt_0_status=flagged" in body
    counts = re.findall(r'portal-tile-count">([^<]+)<', body)
    assert counts == ["2", "0", "1", "1"]
    assert "SN-krd-1" not in rows_of(client.get("/readingview/list/?_flt_0_status=flagged"))
    assert "SN-krd-1" in rows_of(client.get("/readingview/list/?_flt_0_status=accepted"))


def test_finance_dashboard_hides_lists_it_cannot_open(client, two_branches, sign_in):
    sign_in(FINANCE)
    body = client.get("/").get_data(as_text=True)
    assert "все филиалы" in body and "Действующие лицевые счета" in body
    assert "Новые заявки на договор" not in body and "Новые обращения" not in body


def test_money_and_dates_read_russian(client, session, two_branches, sign_in):
    krd, _ = two_branches
    invoice = session.get(m.Invoice, krd.ids["Invoice"])
    invoice.opening_balance = Decimal("12345.6")
    invoice.due_date = dt.date(2026, 11, 10)
    session.commit()
    sign_in(FINANCE)
    rows = rows_of(client.get(url("InvoiceView")))
    assert "12\u00a0345,60" in rows and "10.11.2026" in rows and "октябрь 2026" in rows
    assert "None" not in rows


def test_a_role_given_through_a_group_opens_the_views_within_the_branch(
        client, session, two_branches, make_user_fn, login):
    """The web reads the roles a user has at each request, direct or through a group, and
    a group's branch-scoped role limits the rows to the user's branch like a direct one."""
    krd, nvr = two_branches
    user = make_user_fn("group-operator", STAFF, branch_id=krd.branch_id)
    move_roles_to_a_group(session, user, "Операторы Краснодара")
    g.pop("_login_user", None)
    assert login("group-operator").status_code == 302
    g.pop("_login_user", None)
    meters = rows_of(client.get(url("MeterView")))
    assert "SN-krd-1" in meters and "SN-nvr-2" not in meters
    session.execute(assoc_user_group.delete().where(assoc_user_group.c.user_id == user.id))
    session.commit()
    g.pop("_login_user", None)
    assert refused(client.get(url("MeterView")))


def test_refusals_and_missing_rows_read_russian(client, two_branches, sign_in):
    krd, nvr = two_branches
    sign_in(STAFF, branch_id=krd.branch_id)
    forbidden = client.get(url("AuditEventView"))
    assert forbidden.status_code == 403
    assert "Доступ запрещён" in forbidden.get_data(as_text=True)
    missing = client.get(url("MeterView", "show", nvr.ids["Meter"]))
    assert missing.status_code == 404
    assert "Страница не найдена" in missing.get_data(as_text=True)
    wrong_method = client.put(url("MeterView", "show", krd.ids["Meter"]))
    assert wrong_method.status_code == 405
    assert "Метод не поддерживается" in wrong_method.get_data(as_text=True)
    assert "Профиль" not in client.get("/").get_data(as_text=True)


def test_audit_journal_reads_russian(client, session, two_branches, sign_in):
    sign_in(ADMIN)
    client.get("/paymentview/export/xlsx")
    rows = rows_of(client.get(url("AuditEventView")))
    assert "Вход в систему" in rows and "Выгрузка списка в Excel" in rows
    assert "Список «Платежи»" in rows and "Пользователь" in rows
    assert "login.success" not in rows and "PaymentView" not in rows


# Malformed input, refused before FAB reads it (app/views/guards.py) -------------------------


@pytest.mark.parametrize("path", [
    "/meterview/edit/99999999999999999999",  # past any id column
    "/meterview/show/2147483648",  # past an integer column: an error on PostgreSQL
    "/meterview/show/abc",
    "/readingview/action/no_such_action/1",  # FAB: 'NoneType' has no attribute 'func'
    "/roles/action/copyrole/1",  # FAB: a list's action given one row, 'Role' not iterable
    "/feedbackview/action/assign/2147483647",  # FAB: the action given None
])
def test_a_malformed_id_or_action_is_a_missing_page(client, two_branches, sign_in, path):
    sign_in(ADMIN)
    response = client.get(path)
    assert response.status_code == 404
    assert "Страница не найдена" in response.get_data(as_text=True)


@pytest.mark.parametrize("data", [
    {"action": "drop_everything", "rowid": ["1"]},
    {"action": "accept_flagged", "rowid": ["1", "99999999999999999999"]},
])
def test_a_malformed_bulk_action_changes_nothing(client, session, two_branches, sign_in, data):
    krd, _ = two_branches
    sign_in(STAFF, branch_id=krd.branch_id)
    reading = session.get(m.Reading, krd.ids["Reading"])
    reading.status = "flagged"
    session.commit()
    response = client.post("/readingview/action_post", data=data)
    assert response.status_code == 400
    assert "Неверный запрос" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(m.Reading, krd.ids["Reading"]).status == "flagged"


def test_a_list_opens_without_arguments_it_cannot_use(client, two_branches, sign_in):
    sign_in(FINANCE)
    response = client.get("/tariffview/list/?_flt_0_range_no=99999&page_TariffView=abc"
                          "&_oc_TariffView=tariff_group&_od_TariffView=asc&_flt_0_zone=T1")
    assert response.status_code == 302
    assert response.location == "/tariffview/list/?_od_TariffView=asc&_flt_0_zone=T1"
    page = client.get(response.location).get_data(as_text=True)
    assert "Фильтр «Диапазон потребления» не применён" in page
    assert "7,35" in rows_of(client.get("/tariffview/list/?_flt_0_range_no=1"))


def test_a_related_row_in_the_add_address_must_be_one_id(client, session, two_branches,
                                                          sign_in):
    krd, _ = two_branches
    sign_in(STAFF, branch_id=krd.branch_id)
    before = count(session, m.Contract)
    organization = krd.ids["Organization"]
    response = client.post(
        f"/contractview/add?_flt_0_organization={organization}&_flt_0_organization=2",
        data={"number": "Д-1", "branch": krd.branch_id, "status": "active",
              "signed_on": "2026-01-01", "valid_from": "2026-01-01"})
    assert response.status_code == 400
    assert count(session, m.Contract) == before


def test_a_password_reset_without_its_user_is_a_missing_page(client, sign_in):
    sign_in(ADMIN)
    response = client.post("/resetpassword/form", data={"password": "Новый-пароль-2026",
                                                        "conf_password": "Новый-пароль-2026"})
    assert response.status_code == 404


def test_a_password_reset_by_staff_signs_the_user_out_and_keeps_ones_own_session(
        app, client, sign_in, make_user_fn, login, session):
    """An administrator's new password for someone signs that person's browsers out; a
    staff member's own new password (FAB's «Сбросить мой пароль») keeps their browser in."""
    admin = sign_in(ADMIN)
    customer = make_user_fn("org-user", "Business", kind="business")
    theirs = app.test_client()
    with theirs.session_transaction() as their_session:
        their_session["_user_id"], their_session["_fresh"] = session_user_id(customer), True
    g.pop("_login_user", None)
    assert theirs.get("/business/").status_code == 200
    new = "Новый-пароль-2026"
    g.pop("_login_user", None)
    reset = client.post(f"/resetpassword/form?pk={customer.id}",
                        data={"password": new, "conf_password": new})
    assert reset.status_code == 302
    g.pop("_login_user", None)
    assert theirs.get("/business/").status_code == 302

    g.pop("_login_user", None)
    own = client.post("/resetmypassword/form", data={"password": new, "conf_password": new})
    assert own.status_code == 302
    g.pop("_login_user", None)
    assert client.get(url("PaymentView")).status_code == 200
    g.pop("_login_user", None)
    assert login(admin.username, new).status_code == 302


@pytest.mark.parametrize("rate, message", [
    ("sNaN", "Введите число."),  # WTForms' NumberRange raised on it
    ("Infinity", "Введите число."),
    ("1e308", "Число должно быть меньше 1\u00a0000\u00a0000 по модулю."),
    ("7.123456", "Не больше 4 знаков после запятой."),
])
def test_a_number_the_column_cannot_hold_is_a_form_error(client, session, two_branches,
                                                         sign_in, rate, message):
    krd, _ = two_branches
    sign_in(FINANCE)
    before = count(session, m.Tariff)
    response = client.post(url("TariffView", "add"), data={
        "tariff_group": krd.ids["TariffGroup"], "zones": "1", "zone": "T1", "range_no": "1",
        "rate": rate, "effective_from": "2026-01-01"})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert count(session, m.Tariff) == before


@pytest.mark.parametrize("index, text, amounts", [
    (1, "400,5", ["450.00", "450.00", "500.00", "500.00"]),  # greater than: the comma typed
    (1, "600", []),
    (0, "500", ["500.00", "500.00"]),  # equal to
    (1, "много", ["450.00", "450.00", "500.00", "500.00"]),  # no number: no filter
])
def test_numeric_filters_compare_the_column_with_a_number(session, two_branches, index, text,
                                                          amounts):
    """FAB compares a Numeric column with the filter's text, which PostgreSQL refuses
    ("operator does not exist: numeric > character varying")."""
    datamodel = SQLAInterface(m.Payment, session)
    datamodel.filter_converter_class = TypedFilterConverter
    filters = datamodel.get_filters(["amount"])
    filters.add_filter_index("amount", index, [text])
    _count, rows = datamodel.query(filters)
    assert sorted(str(row.amount) for row in rows) == amounts


def test_every_journalled_action_and_object_has_a_russian_label(app):
    """Every audit.record(...) in the code, by its literal action and object type, reads in
    Russian in «Журнал аудита» (a new event without a label would show its code)."""
    from app.views.admin_journal import AUDIT_ACTIONS, AUDIT_OBJECTS

    actions, objects = set(), set()
    code = [path for path in [*Path("app").rglob("*.py"), *Path("plugins").rglob("*.py")]
            if "tests" not in path.parts]
    for path in code:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "record" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "audit"):
                continue
            action = node.args[1] if len(node.args) > 1 else None
            if isinstance(action, ast.Constant):
                actions.add(action.value)
            objects |= {keyword.value.value for keyword in node.keywords
                        if keyword.arg == "object_type"
                        and isinstance(keyword.value, ast.Constant)}
    assert len(actions) > 40 and "login.success" in actions
    assert sorted(actions - set(AUDIT_ACTIONS)) == []
    assert sorted(objects - set(AUDIT_OBJECTS)) == []
