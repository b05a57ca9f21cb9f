"""The back office at scale: a relation to a table that grows with the customers (accounts,
meters, users, organizations, contracts, premises) is a search-as-you-type field in add and
edit forms and a natural-key text filter in search forms, so no page lists the related table.
The JSON lookups answer a few matches for the form's permission, within the branch scope."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from flask import g
from sqlalchemy import event, func, insert, select

from app import models as m
from app.extensions import db
from app.services import lookup
from app.views.access import ADMIN, FINANCE, STAFF
from tests.factories import PASSWORD

#: Rows seeded per large table: far more than any page may show.
SEEDED = 3000
ACCOUNT_PREFIX = "55"
SEEDED_NUMBER = re.compile(r"\b55\d{8}\b")
SEEDED_SERIAL = re.compile(r"\bMS-\d{5}\b")
SEEDED_LOGIN = re.compile(r"\bbulk\d{5}\b")
SEEDED_INN = re.compile(r"\b77\d{8}\b")
#: A page that lists no related table stays well under this (the list's 25 rows included).
PAGE_BYTES = 120_000


def number(i: int) -> str:
    return f"{ACCOUNT_PREFIX}{i:08d}"


@pytest.fixture
def many(session, two_branches):
    """SEEDED accounts, meters, residents and organizations in Krasnodar, inserted set-based;
    yields (krd, nvr)."""
    krd, nvr = two_branches
    opened = dt.date(2024, 1, 1)
    session.execute(insert(m.PersonalAccount), [
        {"number": number(i), "holder_name": f"Абонент {i:05d}",
         "premises_id": krd.ids["Premises"], "branch_id": krd.branch_id,
         "tariff_group_id": krd.ids["TariffGroup"], "status": "active", "opened_on": opened}
        for i in range(SEEDED)])
    ids = dict(session.execute(select(m.PersonalAccount.number, m.PersonalAccount.id)
                               .where(m.PersonalAccount.number.startswith(ACCOUNT_PREFIX))).all())
    session.execute(insert(m.Meter), [
        {"serial": f"MS-{i:05d}", "account_id": ids[number(i)], "zones": 1,
         "digit_capacity": 6, "active": True} for i in range(SEEDED)])
    session.execute(insert(m.PortalUser), [
        {"username": f"bulk{i:05d}", "first_name": "Житель", "last_name": f"Житель{i:05d}",
         "email": f"bulk{i:05d}@example.test", "active": True, "kind": "resident",
         "branch_id": krd.branch_id} for i in range(SEEDED)])
    session.execute(insert(m.Organization), [
        {"name": f"ООО «Оптовик-{i:05d}»", "inn": f"77{i:08d}", "kpp": "230801001",
         "branch_id": krd.branch_id} for i in range(SEEDED)])
    session.commit()
    return krd, nvr


@pytest.fixture
def sign_in(client, make_user_fn):
    def _sign_in(role: str, branch_id: int | None = None, username: str | None = None):
        user = make_user_fn(username or role.lower(), role, branch_id=branch_id)
        g.pop("_login_user", None)
        response = client.post("/login/", data={"username": user.username,
                                                "password": PASSWORD})
        assert response.status_code == 302
        return user

    return _sign_in


SEEDED_KEYS = (SEEDED_NUMBER, SEEDED_SERIAL, SEEDED_LOGIN, SEEDED_INN)


def seeded_in(body: str) -> set[str]:
    """The keys of seeded rows (account numbers, serials, logins, INNs) a page shows."""
    return {key for pattern in SEEDED_KEYS for key in pattern.findall(body)}


def search_widget(body: str) -> tuple[dict, dict]:
    """The search form's value fields and filter names by column, as FAB's script gets them."""
    lines = body[body.index("new AdminFilters("):].splitlines()
    return json.loads(lines[3].strip().rstrip(",")), json.loads(lines[4].strip().rstrip(","))


def results(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    return response.get_json()["results"]


def count(session, model, *where) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))


# Pages ---------------------------------------------------------------------------------------

FORM_PAGES = [
    "/meterview/add", "/readingview/add", "/chargeview/add", "/paymentview/add",
    "/personalaccountview/add", "/accountbindingview/add", "/contractview/add",
    "/reconciliationactview/add", "/feedbackview/add", "/users/add",
]
LIST_PAGES = [
    "/meterview/list/", "/readingview/list/", "/chargeview/list/", "/invoiceview/list/",
    "/paymentview/list/", "/personalaccountview/list/", "/accountbindingview/list/",
    "/contractview/list/", "/reconciliationactview/list/", "/feedbackview/list/",
    "/auditeventview/list/", "/users/list/",
]


def test_add_forms_list_no_related_rows(client, many, sign_in):
    sign_in(ADMIN)
    for path in FORM_PAGES:
        response = client.get(path)
        body = response.get_data(as_text=True)
        assert response.status_code == 200, path
        assert seeded_in(body) == set(), path
        assert len(response.data) < PAGE_BYTES, path
        assert "portal-lookup" in body and re.search(r"js/lookup[.\w]*\.js", body), path


def test_search_forms_list_no_related_rows(client, many, sign_in):
    """A list shows its own page of rows (at most 25 related keys), never a drop-down of every
    related row in its search form."""
    sign_in(ADMIN)
    for path in LIST_PAGES:
        response = client.get(path)
        body = response.get_data(as_text=True)
        assert response.status_code == 200, path
        assert all(len(set(p.findall(body))) <= 25 for p in SEEDED_KEYS), path
        assert len(response.data) < PAGE_BYTES, path
        fields, _filters = search_widget(body)
        assert not any("<option" in html for column, html in fields.items()
                       if column in {"account", "meter", "user", "actor", "organization",
                                     "contract", "assigned_to"}), (path, fields)


def test_edit_form_shows_the_chosen_row_only(client, many, sign_in, session):
    sign_in(ADMIN)
    meter = session.scalars(select(m.Meter).where(m.Meter.serial == "MS-00007")).one()
    body = client.get(f"/meterview/edit/{meter.id}").get_data(as_text=True)
    assert re.search(rf'<option value="{meter.account_id}" selected>'
                     rf"{number(7)} — Абонент 00007</option>", body)
    assert seeded_in(body) == {number(7), "MS-00007"}


# The JSON lookups ------------------------------------------------------------------------------


def test_lookup_finds_by_prefix_within_the_limit(client, many, sign_in):
    sign_in(ADMIN)
    found = results(client.get("/meterview/lookup/add/account?q=5500001"))
    assert 0 < len(found) <= lookup.LIMIT
    assert all(r["text"].startswith("5500001") for r in found)
    assert len(results(client.get("/meterview/lookup/add/account?q=55"))) == lookup.LIMIT
    exact = results(client.get(f"/meterview/lookup/edit/account?q={number(1234)}"))
    assert [r["text"] for r in exact] == [f"{number(1234)} — Абонент 01234"]
    assert set(exact[0]) == {"id", "text"}
    by_holder = results(client.get("/meterview/lookup/add/account?q=абонент 0299"))
    assert [r["text"][:10] for r in by_holder] == [number(i) for i in range(2990, 3000)]
    serials = results(client.get("/readingview/lookup/add/meter?q=ms-0001"))
    assert [r["text"].split()[0] for r in serials] == [f"MS-{i:05d}" for i in range(10, 20)]
    users = results(client.get("/accountbindingview/lookup/add/user?q=bulk0000"))
    assert [r["text"].split()[0] for r in users] == [f"bulk{i:05d}" for i in range(10)]
    orgs = results(client.get("/contractview/lookup/add/organization?q=770000001"))
    assert [r["text"] for r in orgs][:1] == ["ООО «Оптовик-00010» (ИНН 7700000010)"]
    assert results(client.get("/users/lookup/edit/organization?q=оптовик-0001"))


ODD_TEXT = ["%", "_", "5%", "55_0", "' OR 1=1 --", "x" * 5000, "😀", "\U0010ffff", "\ud7ff",
            "  ", ""]


def test_lookup_takes_odd_text_literally(client, many, sign_in):
    sign_in(ADMIN)
    for text in ODD_TEXT:
        found = results(client.get("/meterview/lookup/add/account", query_string={"q": text}))
        assert found == [], text[:20]


def test_lookup_refuses_nul_and_unknown_columns(client, many, sign_in):
    sign_in(ADMIN)
    assert client.get("/meterview/lookup/add/account?q=55%00").status_code == 400
    assert client.get("/meterview/lookup/add/model?q=55").status_code == 404
    assert client.get("/meterview/lookup/add/nothing?q=55").status_code == 404
    # The reading's meter is not in its edit form: nothing to look up there.
    assert client.get("/readingview/lookup/edit/meter?q=MS").status_code == 404


def test_lookup_needs_the_forms_permission(client, many, sign_in):
    assert client.get("/meterview/lookup/add/account?q=55").status_code == 302  # sign in
    sign_in(FINANCE)  # no access to meters at all
    assert client.get("/meterview/lookup/add/account?q=55").status_code == 403
    client.post("/logout/")
    _krd, _ = many
    sign_in(STAFF, branch_id=_krd.branch_id)  # reads payments, may not register them
    assert client.get("/paymentview/list/").status_code == 200
    assert client.get("/paymentview/lookup/add/account?q=55").status_code == 403


def test_lookup_keeps_to_the_branch(client, many, sign_in):
    krd, nvr = many
    sign_in(STAFF, branch_id=nvr.branch_id)
    assert results(client.get("/meterview/lookup/add/account?q=55")) == []
    found = results(client.get("/meterview/lookup/add/account?q=2300"))
    assert [r["text"] for r in found] == ["230000000002 — Иванов Новороссийск"]


def test_lookup_reads_one_index_range(app, client, many, sign_in):
    """The lookup's statement reads a range of the key's index, never the whole table."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the plan is read with SQLite's EXPLAIN QUERY PLAN")
    sign_in(ADMIN)
    seen = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        if "FROM meter" in statement and "LIMIT" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        results(client.get("/chargeview/lookup/add/meter?q=MS-001"))
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)
    statement, parameters = seen[-1]
    with db.engine.connect() as conn:
        plan = " ".join(row[-1] for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement, parameters))
    assert re.search(r"SEARCH meter USING (COVERING )?INDEX \S+ \(serial>\? AND serial<\?\)",
                     plan), plan
    assert not re.search(r"SCAN (meter|personal_account)", plan), plan


# Forms -----------------------------------------------------------------------------------------


def meter_form(account) -> dict:
    return {"serial": "NEW-1", "account": account, "zones": "1", "digit_capacity": "6",
            "active": "y"}


def test_an_add_form_saves_the_chosen_row(client, many, sign_in, session):
    sign_in(ADMIN)
    account = session.scalar(select(m.PersonalAccount.id)
                             .where(m.PersonalAccount.number == number(42)))
    response = client.post("/meterview/add", data=meter_form(account))
    assert response.status_code == 302
    saved = session.scalars(select(m.Meter).where(m.Meter.serial == "NEW-1")).one()
    assert saved.account_id == account


def test_an_unknown_row_is_a_form_error(client, many, sign_in, session):
    sign_in(ADMIN)
    for account in ["999999999", "abc", "-1", "1" * 30, "0"]:
        response = client.post("/meterview/add", data=meter_form(account))
        body = response.get_data(as_text=True)
        assert response.status_code == 200, account
        assert "Лицевой счёт: такой записи нет или она вам недоступна" in body, account
        assert count(session, m.Meter, m.Meter.serial == "NEW-1") == 0


def test_a_missing_required_row_is_a_form_error(client, many, sign_in, session):
    sign_in(ADMIN)
    body = client.post("/meterview/add", data=meter_form("")).get_data(as_text=True)
    assert "Лицевой счёт: выберите запись из списка." in body
    assert count(session, m.Meter, m.Meter.serial == "NEW-1") == 0


def test_another_branchs_row_is_a_form_error(client, many, sign_in, session):
    krd, nvr = many
    sign_in(STAFF, branch_id=nvr.branch_id)
    body = client.post("/meterview/add",
                       data=meter_form(krd.ids["PersonalAccount"])).get_data(as_text=True)
    assert "Лицевой счёт: такой записи нет или она вам недоступна" in body
    assert count(session, m.Meter, m.Meter.serial == "NEW-1") == 0
    response = client.post("/meterview/add", data=meter_form(nvr.ids["PersonalAccount"]))
    assert response.status_code == 302
    assert count(session, m.Meter, m.Meter.serial == "NEW-1") == 1


def test_an_optional_relation_may_stay_empty(client, many, sign_in, session):
    krd, _ = many
    sign_in(ADMIN)
    response = client.post("/contractview/add", data={
        "number": "Д-NEW-1", "organization": "", "person_name": "Сидоров С. С.",
        "branch": krd.branch_id, "signed_on": "2026-01-01", "valid_from": "2026-01-01",
        "status": "active"})
    assert response.status_code == 302
    contract = session.scalars(select(m.Contract).where(m.Contract.number == "Д-NEW-1")).one()
    assert contract.organization_id is None


# Search filters --------------------------------------------------------------------------------


def rows_of(response) -> str:
    found = re.search(r'<table class="table table-bordered table-hover">(.*?)</table>',
                      response.get_data(as_text=True), re.S)
    return found.group(1) if found else ""


def test_lists_filter_by_the_related_rows_key(client, many, sign_in, session):
    sign_in(ADMIN)
    account = session.scalar(select(m.PersonalAccount.id)
                             .where(m.PersonalAccount.number == number(7)))
    by_number = rows_of(client.get(f"/meterview/list/?_flt_1_account={number(7)}"))
    assert seeded_in(by_number) == {"MS-00007", number(7)}
    by_prefix = rows_of(client.get("/meterview/list/?_flt_2_account=550000299"))
    assert {s for s in seeded_in(by_prefix) if s.startswith("MS")} == {
        f"MS-{i:05d}" for i in range(2990, 3000)}
    by_id = rows_of(client.get(f"/meterview/list/?_flt_0_account={account}"))
    assert seeded_in(by_id) == {"MS-00007", number(7)}
    nothing = rows_of(client.get("/meterview/list/?_flt_2_account=%25"))
    assert seeded_in(nothing) == set()
    users = rows_of(client.get("/users/list/?_flt_1_organization=7700000010"))
    assert "Оптовик" not in users  # nobody works there; the filter applied, nothing listed


def test_search_form_offers_the_natural_key_first(client, many, sign_in):
    sign_in(ADMIN)
    body = client.get("/meterview/list/").get_data(as_text=True)
    fields, filters = search_widget(body)
    assert filters["account"] == ["код записи равен", "номер равен", "номер начинается с"]
    assert 'data-filter-default="1"' in fields["account"]


def test_an_old_filter_link_still_works(client, many, sign_in):
    sign_in(ADMIN)
    response = client.get("/personalaccountview/list/?_flt_0_number=5500000012")
    assert seeded_in(rows_of(response)) == {"5500000012"}


def test_staff_finds_only_own_branch_rows(client, two_branches, sign_in):
    """The branch scope of the old drop-downs holds for the lookups that replace them."""
    krd, _ = two_branches
    sign_in(STAFF, branch_id=krd.branch_id)
    body = client.get("/personalaccountview/add").get_data(as_text=True)
    assert "Краснодарэнергосбыт" in body and "Новороссийскэнергосбыт" not in body
    premises = results(client.get("/personalaccountview/lookup/add/premises?q=ул. Красная"))
    assert [r["text"] for r in premises] == ["Краснодар, ул. Красная, д. 1, кв. 1"]
    assert [r["text"] for r in results(client.get("/personalaccountview/lookup/add/premises"
                                                  "?q=красная"))] == [premises[0]["text"]]
    meters = results(client.get("/readingview/lookup/add/meter?q=SN-"))
    assert [r["text"] for r in meters] == ["SN-krd-1 (л/с 230000000001)"]


# In the browser --------------------------------------------------------------------------------


def operator_signed_in(page, make_user_fn, branch_id: int):
    """The page signed in through /login/ as a branch operator."""
    make_user_fn("operator", STAFF, branch_id=branch_id)
    page.goto("/login/")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")
    return page


@pytest.mark.browser
def test_staff_picks_an_account_by_typing(browser_page, many, make_user_fn, session, shots):
    krd, _ = many
    page = operator_signed_in(browser_page, make_user_fn, krd.branch_id)

    page.goto("/meterview/add")
    assert page.locator("select#account option").count() == 1  # the empty choice only
    page.fill("input[name=serial]", "BROWSER-1")
    page.locator("#account + .select2").click()
    page.locator(".select2-search__field").fill("550000004")
    page.locator(".select2-results__option", has_text=number(49)).wait_for()
    options = page.locator(".select2-results__option")
    assert options.count() == 10
    shots(page, "meter-add-account-matches")
    assert options.first.inner_text() == f"{number(40)} — Абонент 00040"
    page.locator(".select2-results__option", has_text=number(42)).click()
    assert page.locator("#select2-account-container").inner_text().endswith(
        f"{number(42)} — Абонент 00042")
    shots(page, "meter-add-account-chosen")
    with page.expect_navigation():
        page.locator("form#model_form button[type=submit]").click()
    assert "/meterview/add" not in page.url  # saved: FAB went on to another page
    account = session.scalar(select(m.PersonalAccount.id)
                             .where(m.PersonalAccount.number == number(42)))
    saved = session.scalars(select(m.Meter).where(m.Meter.serial == "BROWSER-1")).one()
    assert saved.account_id == account


@pytest.mark.browser
def test_staff_filters_meters_by_account_number(browser_page, many, make_user_fn, shots):
    krd, _ = many
    page = operator_signed_in(browser_page, make_user_fn, krd.branch_id)

    page.goto("/meterview/list/")
    page.locator("a.accordion-toggle").click()
    page.locator("#filter_form button.dropdown-toggle").click()
    page.locator("#filter_form a.filter[name=account]").click()
    row = page.locator("#filter_form .filters tr").last
    assert row.locator("select.filter-op").input_value() == "1"
    assert "номер равен" in row.locator(".select2-selection__rendered").inner_text()
    row.locator("input.filter_val").fill(number(7))
    shots(page, "meter-list-filter-by-account")
    with page.expect_navigation():
        page.locator("#filter_form button[type=submit]").click()
    assert f"_flt_1_account={number(7)}" in page.url
    table = page.locator("table.table-bordered").inner_text()
    assert "MS-00007" in table and "MS-00008" not in table


def test_the_add_link_of_a_related_list_still_fills_the_relation(client, many, sign_in,
                                                                 session):
    """An account's card lists its meters with an "add" link carrying ``_flt_0_account``."""
    sign_in(ADMIN)
    account = session.scalar(select(m.PersonalAccount.id)
                             .where(m.PersonalAccount.number == number(9)))
    card = client.get(f"/personalaccountview/show/{account}").get_data(as_text=True)
    assert f"/meterview/add?_flt_0_account={account}" in card
    form = {k: v for k, v in meter_form(account).items() if k != "account"}
    response = client.post(f"/meterview/add?_flt_0_account={account}", data=form)
    assert response.status_code == 302
    saved = session.scalars(select(m.Meter).where(m.Meter.serial == "NEW-1")).one()
    assert saved.account_id == account


# The lookup service ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, upper", [
    ("abc", "abd"), ("55", "56"), ("a\U0010ffff", "b"), ("\ud7ff", "\ue000"),
    ("\U0010ffff", None)])
def test_the_range_ends_after_every_string_with_the_prefix(text, upper):
    assert lookup.after(text) == upper


@pytest.mark.parametrize("text, prefix", [
    ("8 918", "+7918"), ("+7 (918) 12", "+791812"), ("918-1", "+79181"), ("791", "+791"),
    ("8", None), ("ivanov", None), ("8 918 abc", None)])
def test_a_typed_phone_is_searched_as_stored(text, prefix):
    assert lookup.phone_prefix(text) == prefix


def test_users_are_found_by_login_email_and_phone(app, session, make_user_fn):
    user = make_user_fn("Sidorov", STAFF)
    user.phone = "+79181234567"
    session.commit()
    for text in ("Sid", "sid", "Sidorov@example", "8 918 123", "+7918"):
        found = lookup.search(session, m.PortalUser, text)
        assert [r["id"] for r in found] == [user.id], text
    assert lookup.search(session, m.PortalUser, "Тест") == []  # names have no index
