"""The mobile app's JSON API: JWT sign-in with the web's entrance rules, refresh, and every
resource seen by two organizations and a resident: each sees only its own rows, another's id
is a 404, a submission with another's account or meter is refused and changes nothing."""
from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from flask_appbuilder.security.sqla.models import assoc_user_group
from flask_jwt_extended import create_access_token
from openapi_spec_validator import validate as validate_spec
from pypdf import PdfReader
from sqlalchemy import event, func, select

from app import models as m
from app.services import acts
from app.services.binding import bind_accounts
from app.views.access import ROLE_POLICY, STAFF
from tests.factories import PASSWORD, move_roles_to_a_group

API = "/api/v1"
#: Resource -> the key of the organization's row of it in each branch's world.
RESOURCES = {"contract": "Contract", "account": "OrganizationAccount",
             "charge": "OrganizationCharge", "invoice": "OrganizationInvoice",
             "payment": "OrganizationPayment", "meter": "OrganizationMeter",
             "reading": "OrganizationReading"}
#: Resource -> the key of the household's row of it (a household's account has no contract).
HOUSEHOLD = {"contract": None, "account": "PersonalAccount", "charge": "Charge",
             "invoice": "Invoice", "payment": "Payment", "meter": "Meter", "reading": "Reading"}


def login(client, username: str, branch: int | None = None, password: str = PASSWORD,
          **extra):
    body = {"username": username, "password": password, "provider": "db", **extra}
    if branch is not None:
        body["branch"] = branch
    return client.post(f"{API}/security/login", json=body)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def world(two_branches, make_user_fn, session):
    """Organization users of Krasnodar and Novorossiysk, and a resident (by phone) with
    Novorossiysk's account bound."""
    krd, nvr = two_branches
    make_user_fn("org-krd", "Business", kind="business", organization_id=krd.ids["Organization"])
    make_user_fn("org-nvr", "Business", kind="business", organization_id=nvr.ids["Organization"])
    resident = make_user_fn("resident", "Resident", kind="resident", phone="+79181234567")
    bind_accounts(session, resident.id, [("230000000002", "SN-nvr-2")], None)
    return krd, nvr


@pytest.fixture
def headers(client, world):
    """Authorization headers by who: krd, nvr (organizations) and resident."""
    krd, nvr = world
    tokens = {"krd": login(client, "org-krd", krd.branch_id),
              "nvr": login(client, "org-nvr", nvr.branch_id),
              "resident": login(client, "+7 918 123-45-67")}
    assert all(r.status_code == 200 for r in tokens.values()), tokens
    return {who: bearer(r.json["access_token"]) for who, r in tokens.items()}


@pytest.fixture
def in_window(app):
    app.config.update(READING_WINDOW_FIRST_DAY=1, READING_WINDOW_LAST_DAY=31)


# Sign-in


def test_organization_signs_in_with_branch_and_gets_both_tokens(client, world):
    krd, _ = world
    response = login(client, "org-krd", krd.branch_id, refresh=True)
    assert response.status_code == 200
    assert set(response.json) == {"access_token", "refresh_token"}
    me = client.get(f"{API}/contract/", headers=bearer(response.json["access_token"]))
    assert me.status_code == 200 and me.json["count"] == 1


@pytest.mark.parametrize("who, branch, password, message", [
    ("org-krd", "krd", "wrong", "Неверный логин, пароль или филиал."),
    ("org-krd", "nvr", PASSWORD, "Неверный логин, пароль или филиал."),
    ("org-krd", None, PASSWORD, "Неверный логин или пароль."),
    ("resident", None, "wrong", "Неверный логин или пароль."),
    ("resident", "nvr", PASSWORD, "Неверный логин, пароль или филиал."),
    ("nobody", None, PASSWORD, "Неверный логин или пароль."),
])
def test_bad_sign_in_is_401(client, world, session, who, branch, password, message):
    ids = {"krd": world[0].branch_id, "nvr": world[1].branch_id, None: None}
    response = login(client, who, ids[branch], password)
    assert response.status_code == 401
    assert response.json == {"message": message}
    actions = session.execute(select(m.AuditEvent.action)).scalars().all()
    assert "login.failure" in actions and "login.success" not in actions


def test_resident_signs_in_by_phone_or_email(client, world):
    assert login(client, "8 (918) 123-45-67").status_code == 200
    assert login(client, "resident@example.test").status_code == 200


def test_staff_cannot_get_a_token(client, make_user_fn):
    make_user_fn("clerk", "Staff")
    assert login(client, "clerk").status_code == 401


def test_user_who_must_change_password_is_sent_to_the_website(client, world, session):
    user = session.execute(select(m.PortalUser).filter_by(username="org-krd")).scalar_one()
    user.must_change_password = True
    session.commit()
    response = login(client, "org-krd", world[0].branch_id)
    assert response.status_code == 403
    assert "новый пароль" in response.json["message"]


@pytest.mark.parametrize("body, status, text", [
    ("not json", 400, "JSON"),
    ({"username": "org-krd"}, 400, "Обязательное поле."),
    ({"username": "org-krd", "password": PASSWORD, "provider": "ldap"}, 400,
     "Допустимо только: db."),
    ({"username": "org-krd", "password": PASSWORD, "branch": "krd"}, 400,
     "Ожидается целое число."),
    ({"username": "org-krd", "password": PASSWORD, "extra": 1}, 400, "Неизвестное поле."),
])
def test_malformed_sign_in_is_400_in_russian(client, world, body, status, text):
    if isinstance(body, str):
        response = client.post(f"{API}/security/login", data=body,
                               content_type="text/plain")
    else:
        response = client.post(f"{API}/security/login", json=body)
    assert response.status_code == status
    assert text in str(response.json)


def test_sign_in_is_guarded_like_the_web(client, world):
    krd, _ = world
    for _ in range(5):
        assert login(client, "org-krd", krd.branch_id, "wrong").status_code == 401
    asked = login(client, "org-krd", krd.branch_id)  # even the right password: a proof first
    assert asked.status_code == 401 and "access_token" not in asked.json
    assert "Подтвердите, что вы не робот" in asked.json["message"]
    assert set(asked.json["challenge"]) == {"parameters", "signature"}


def test_refresh_gives_a_new_access_token_while_the_user_is_active(client, world, session):
    tokens = login(client, "org-krd", world[0].branch_id, refresh=True).json
    refreshed = client.post(f"{API}/security/refresh", headers=bearer(tokens["refresh_token"]))
    assert refreshed.status_code == 200
    assert client.get(f"{API}/account/", headers=bearer(
        refreshed.json["access_token"])).status_code == 200
    # An access token is not a refresh token, nor the other way round.
    refused = client.post(f"{API}/security/refresh", headers=bearer(tokens["access_token"]))
    assert (refused.status_code, refused.json) == (
        401, {"message": "Нужен refresh-токен, а не access."})
    refused = client.get(f"{API}/account/", headers=bearer(tokens["refresh_token"]))
    assert (refused.status_code, refused.json) == (
        401, {"message": "Нужен access-токен, а не refresh."})
    user = session.execute(select(m.PortalUser).filter_by(username="org-krd")).scalar_one()
    user.active = False
    session.commit()
    refused = client.post(f"{API}/security/refresh", headers=bearer(tokens["refresh_token"]))
    assert (refused.status_code, refused.json) == (401, {"message": "Войдите заново."})
    refused = client.get(f"{API}/account/", headers=bearer(tokens["access_token"]))
    assert (refused.status_code, refused.json) == (401, {"message": "Войдите заново."})


def test_token_refusals_answer_in_russian_like_the_other_errors(app, client, world):
    with app.app_context():
        expired = create_access_token(identity="1", expires_delta=dt.timedelta(seconds=-5))
    answers = {
        "expired": client.get(f"{API}/account/", headers=bearer(expired)),
        "garbage": client.get(f"{API}/account/", headers=bearer("not.a.token")),
        "basic": client.get(f"{API}/account/", headers={"Authorization": "Basic eDp5"}),
        "delete": client.delete(f"{API}/account/1", headers=bearer(expired)),
    }
    assert {who: (r.status_code, r.json) for who, r in answers.items()} == {
        "expired": (401, {"message": "Срок действия токена истёк: обновите его (refresh) "
                                     "или войдите заново."}),
        "garbage": (401, {"message": "Токен испорчен или недействителен."}),
        "basic": (401, {"message": "Нужен вход: передайте access-токен в заголовке "
                                   "Authorization: Bearer <токен>."}),
        "delete": (405, {"message": "Метод не поддерживается"}),
    }
    assert answers["delete"].headers["Allow"] == "GET, HEAD, OPTIONS"
    assert answers["basic"].headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert answers["garbage"].headers["WWW-Authenticate"] == \
        'Bearer realm="api", error="invalid_token"'


def test_each_call_reads_the_users_roles_direct_or_through_a_group(client, world, headers,
                                                                    session):
    """The token names the user; the rights are the roles the user has at the call."""
    resident = session.execute(select(m.PortalUser).filter_by(username="resident")).scalar_one()
    group_id = move_roles_to_a_group(session, resident, "Жители по договору")
    listing = client.get(f"{API}/account/", headers=headers["resident"])
    assert listing.status_code == 200 and listing.json["count"] == 1
    session.execute(assoc_user_group.delete().where(assoc_user_group.c.group_id == group_id))
    session.commit()
    assert client.get(f"{API}/account/", headers=headers["resident"]).status_code == 403
    session.execute(assoc_user_group.insert().values(user_id=resident.id, group_id=group_id))
    session.commit()
    listing = client.get(f"{API}/account/", headers=headers["resident"])
    assert listing.status_code == 200 and listing.json["count"] == 1


@pytest.mark.committed  # the driver's own transactions are under test
def test_reads_run_without_a_transaction_on_postgresql(app, client, world, headers, session,
                                                       owner):
    """A list or one row, and the cabinet's main page: each statement on its own (no BEGIN,
    no COMMIT); a bill's PDF, which writes the audit journal, in a transaction."""
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("autocommit reads are PostgreSQL's (TEST_DATABASE_URL)")
    autocommit: list[bool] = []

    def note(conn, *_args):
        autocommit.append(conn.connection.driver_connection.autocommit)

    krd, _ = world
    event.listen(session.get_bind(), "before_cursor_execute", note)
    try:
        for path in ("account/", f"account/{krd.ids['OrganizationAccount']}", "meter/"):
            with app.app_context():  # a session of its own, as each request has when served
                assert client.get(f"{API}/{path}", headers=headers["krd"]).status_code == 200
        with app.app_context():
            assert "230000000001" in client.get("/cabinet/").get_data(as_text=True)
        read = list(autocommit)
        autocommit.clear()
        with app.app_context():
            pdf = client.get(f"{API}/invoice/{krd.ids['OrganizationInvoice']}/pdf",
                             headers=headers["krd"])
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", note)
    assert len(read) >= 6 and all(read)
    assert pdf.status_code == 200 and autocommit and not any(autocommit)


def test_no_token_no_data_and_no_session_cookies(client, world, owner):
    # ``owner`` signed the client in on the web: the API still wants a token.
    for resource in RESOURCES:
        refused = client.get(f"{API}/{resource}/")
        assert refused.status_code == 401 and refused.json["message"].startswith("Нужен вход")


# Row-level isolation on every endpoint


@pytest.mark.parametrize("resource", RESOURCES)
def test_each_organization_sees_only_its_rows(client, world, headers, resource):
    krd, nvr = world
    model = RESOURCES[resource]
    for who, mine, other in (("krd", krd, nvr), ("nvr", nvr, krd)):
        listing = client.get(f"{API}/{resource}/", headers=headers[who])
        assert listing.status_code == 200
        assert listing.json["ids"] == [mine.ids[model]]
        assert listing.json["count"] == 1
        assert client.get(f"{API}/{resource}/{mine.ids[model]}",
                          headers=headers[who]).status_code == 200
        refused = client.get(f"{API}/{resource}/{other.ids[model]}", headers=headers[who])
        assert refused.status_code == 404 and refused.json == {"message": "Не найдено."}


@pytest.mark.parametrize("resource", [r for r, household in HOUSEHOLD.items() if household])
def test_each_organization_sees_no_households_rows(client, world, headers, resource):
    krd, nvr = world
    household = HOUSEHOLD[resource]
    for who in ("krd", "nvr"):
        for world_ in (krd, nvr):
            assert client.get(f"{API}/{resource}/{world_.ids[household]}",
                              headers=headers[who]).status_code == 404


@pytest.mark.parametrize("resource", RESOURCES)
def test_resident_sees_only_bound_accounts_rows(client, world, headers, resource):
    krd, nvr = world
    household = HOUSEHOLD[resource]
    listing = client.get(f"{API}/{resource}/", headers=headers["resident"])
    assert listing.json["ids"] == ([nvr.ids[household]] if household else [])
    others = [w.ids[RESOURCES[resource]] for w in (krd, nvr)]
    if household:
        others.append(krd.ids[household])
    for other in others:
        assert client.get(f"{API}/{resource}/{other}",
                          headers=headers["resident"]).status_code == 404


def test_filters_cannot_widen_the_rows(client, world, headers):
    krd, nvr = world
    q = f"(filters:!((col:account_id,opr:eq,value:'{nvr.ids['OrganizationAccount']}')))"
    response = client.get(f"{API}/charge/", query_string={"q": q}, headers=headers["krd"])
    assert response.status_code == 200 and response.json["count"] == 0


@pytest.mark.parametrize("q, message", [
    ("(filters:!((col:amount,opr:eq,value:'1')))",
     "filters.0.col: допустимо одно из: account_id, period, kind."),
    ("(filters:!((col:kind,opr:like,value:'1')))",
     "filters.0.opr: допустимо одно из: eq, neq, gt, lt, sw, ct."),
    ("(filters:!((col:kind)))", "filters.0: нет поля opr, value."),
    ("(order_column:holder_name)", "order_column: допустимо одно из: period, id."),
    ("(columns:!(account.holder_name))", "неизвестные поля: columns."),
    ("(page:-1)", "page: не меньше 0."),
    ("(page_size:500)", "page_size: не больше 100."),
    ("(page:'2')", "page: ожидается целое число."),
    ("(not rison", "это не rison и не JSON."),
])
def test_bad_queries_are_400_in_russian(client, world, headers, q, message):
    response = client.get(f"{API}/charge/", query_string={"q": q}, headers=headers["krd"])
    assert (response.status_code, response.json) == (
        400, {"message": f"Неверный параметр q: {message}"})


def test_money_is_a_string_to_the_kopeck(client, world, headers):
    account = client.get(f"{API}/account/", headers=headers["krd"]).json["result"][0]
    assert (account["charged"], account["paid"], account["balance"]) == \
        ("882.00", "450.00", "432.00")
    assert account["address"].startswith("Краснодар")
    charge = client.get(f"{API}/charge/", headers=headers["krd"]).json["result"][0]
    assert (charge["amount"], charge["kwh"], charge["rate"]) == ("882.00", "120.000", "7.3500")


@pytest.mark.parametrize("postcode, street, flat", [
    ("350000", "ул. Красная", "12"), (None, "ул. Красная", None), ("", "", ""),
])
def test_an_accounts_address_reads_as_on_its_bill(client, world, headers, session, postcode,
                                                  street, flat):
    """The API reads the address in SQL; it is the same text the bill and the cabinet show."""
    krd, _nvr = world
    account = session.get(m.PersonalAccount, krd.ids["OrganizationAccount"])
    account.premises.postcode, account.premises.street = postcode, street
    account.premises.flat = flat
    session.commit()
    expected = account.premises.address
    listed = client.get(f"{API}/account/", headers=headers["krd"]).json["result"][0]
    shown = client.get(f"{API}/account/{account.id}", headers=headers["krd"]).json["result"]
    assert listed["address"] == shown["address"] == expected
    assert expected.startswith(f"{postcode}, " if postcode else "Краснодар")


# Bills


def test_invoice_pdf_is_a_real_pdf_of_ones_own_bill(client, world, headers, session):
    krd, nvr = world
    invoice = krd.ids["OrganizationInvoice"]
    response = client.get(f"{API}/invoice/{invoice}/pdf", headers=headers["krd"])
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
    assert "231000000001" in text
    for other in (nvr.ids["OrganizationInvoice"], krd.ids["Invoice"]):
        assert client.get(f"{API}/invoice/{other}/pdf",
                          headers=headers["krd"]).status_code == 404
    assert client.get(f"{API}/invoice/{invoice}/pdf",
                      headers=headers["resident"]).status_code == 404
    assert session.execute(select(m.AuditEvent).where(
        m.AuditEvent.action == "export.pdf")).scalars().all()


# Readings


def submission(account: int, meter: int, t1: str = "1300", **extra) -> dict:
    return {"account_id": account, "meters": [{"meter_id": meter, "t1": t1}], **extra}


def point_submission(world, t1: str = "5744", **extra) -> dict:
    """The organization's meter of ``world`` (its last reading is 5678)."""
    return submission(world.ids["OrganizationAccount"], world.ids["OrganizationMeter"], t1,
                      **extra)


def readings_count(session) -> int:
    return session.scalar(select(func.count(m.Reading.id)))


def test_readings_check_then_submit(client, world, headers, session, in_window):
    krd, _ = world
    body = point_submission(krd)
    check = client.post(f"{API}/reading/check", json=body, headers=headers["krd"])
    assert check.status_code == 200, check.json
    (assessment,) = check.json["assessments"]
    assert assessment["consumption"] == {"t1": "66"} and assessment["total_kwh"] == "66"
    assert assessment["previous"] == {"t1": "5678"}
    assert Decimal(assessment["estimate"]) == Decimal("66") * Decimal("7.35")
    assert readings_count(session) == 4  # checking saves nothing
    saved = client.post(f"{API}/reading/", json=body, headers=headers["krd"])
    assert saved.status_code == 201, saved.json
    assert saved.json["message"] == "Показания приняты."
    (reading,) = saved.json["result"]
    assert (reading["t1"], reading["source"], reading["status"]) == ("5744", "app", "accepted")
    assert readings_count(session) == 5
    listed = client.get(f"{API}/reading/", headers=headers["krd"]).json
    assert reading["id"] in listed["ids"]


def test_spike_needs_confirmation(app, client, world, headers, session, in_window):
    krd, _ = world
    app.config["READING_ORGANIZATION_POWER_KW"] = 1  # 24 kWh a day: doubtful for a century
    body = point_submission(krd, t1="999999")  # above what 1 kW draws since October
    check = client.post(f"{API}/reading/check", json=body, headers=headers["krd"]).json
    assert check["needs_confirmation"] is True
    refused = client.post(f"{API}/reading/", json=body, headers=headers["krd"])
    assert refused.status_code == 422 and "Подтвердите" in refused.json["message"]
    assert readings_count(session) == 4
    confirmed = client.post(f"{API}/reading/", json={**body, "confirmed": True},
                            headers=headers["krd"])
    assert confirmed.status_code == 201 and confirmed.json["result"][0]["status"] == "flagged"


@pytest.mark.parametrize("t1, status, message", [
    ("abc", 400, "Показание: показание должно быть числом, например 12345."),
    ("-5", 400, "Показание: показание не может быть отрицательным."),
    ("12.5", 400, "Показание: введите целое число киловатт-часов, без дробной части."),
    ("", 400, "Показание: введите показание."),
    ("1 300", 400, "Показание: только цифры, без пробелов и знаков, например 12345."),
    ("NaN", 400, "Показание: только цифры, без пробелов и знаков, например 12345."),
    ("1000000000", 422, "Показание: в показании не может быть больше 9 цифр."),
    ("1000", 422, "Показание: показание меньше предыдущего (5678). Проверьте цифры."),
])
def test_bad_readings_are_refused_with_the_webs_message(client, world, headers, session,
                                                         in_window, t1, status, message):
    """Not digits, as the spec says: 400; digits the rules refuse: 422."""
    krd, _ = world
    body = point_submission(krd, t1=t1)
    for path in ("check", ""):
        response = client.post(f"{API}/reading/{path}", json=body, headers=headers["krd"])
        assert response.status_code == status
        assert response.json["message"] == message
    assert readings_count(session) == 4


@pytest.mark.parametrize("body, field, message", [
    ({"meters": [{"meter_id": 1, "t1": "1"}]}, "account_id", "Обязательное поле."),
    ({"account_id": "1", "meters": []}, "account_id", "Ожидается целое число."),
    ({"account_id": 1, "meters": []}, "meters", "Укажите от 1 до 10 счётчиков."),
    ({"account_id": 1, "meters": [{"meter_id": 1, "t1": 1300}]}, "meters",
     "Ожидается строка."),
    ({"account_id": 1, "meters": [{"meter_id": 1}]}, "meters", "Обязательное поле."),
])
def test_malformed_submission_is_400_in_russian(client, world, headers, session, in_window,
                                                 body, field, message):
    response = client.post(f"{API}/reading/", json=body, headers=headers["krd"])
    assert response.status_code == 400
    assert response.json["message"] == "Проверьте данные запроса."
    assert field in response.json["errors"] and message in str(response.json["errors"])
    assert readings_count(session) == 4


def test_readings_outside_the_window_are_refused(client, world, headers, app, session):
    app.config.update(READING_WINDOW_FIRST_DAY=1, READING_WINDOW_LAST_DAY=1)
    krd, _ = world
    response = client.post(f"{API}/reading/", json=point_submission(krd),
                           headers=headers["krd"])
    if response.status_code == 422:  # every day but the 1st
        assert response.json["message"].startswith("Показания принимаются с 1 по 1 число")
        assert readings_count(session) == 4


def test_anothers_account_or_meter_is_refused_and_changes_nothing(client, world, headers,
                                                                  session, in_window):
    krd, nvr = world
    other_meter = submission(krd.ids["OrganizationAccount"], nvr.ids["OrganizationMeter"],
                             "5744")
    households = submission(krd.ids["PersonalAccount"], krd.ids["Meter"])
    for path in ("check", ""):
        for other_account in (point_submission(nvr), households):
            assert client.post(f"{API}/reading/{path}", json=other_account,
                               headers=headers["krd"]).status_code == 404
        refused = client.post(f"{API}/reading/{path}", json=other_meter,
                              headers=headers["krd"])
        assert refused.status_code == 404
        assert refused.json["message"] == ("На этом лицевом счёте нет действующего счётчика "
                                           f"с id {nvr.ids['OrganizationMeter']}.")
        for others in (point_submission(krd), point_submission(nvr), households):
            assert client.post(f"{API}/reading/{path}", json=others,
                               headers=headers["resident"]).status_code == 404
    assert readings_count(session) == 4


def test_resident_submits_for_a_bound_account(client, world, headers, session, in_window):
    _, nvr = world
    response = client.post(f"{API}/reading/", json=submission(
        nvr.ids["PersonalAccount"], nvr.ids["Meter"]), headers=headers["resident"])
    assert response.status_code == 201, response.json


# Reconciliation acts


def test_acts_list_and_isolation(client, world, headers):
    krd, nvr = world
    listing = client.get(f"{API}/act/", headers=headers["krd"]).json
    assert listing["ids"] == [krd.ids["ReconciliationAct"]]
    assert client.get(f"{API}/act/{nvr.ids['ReconciliationAct']}",
                      headers=headers["krd"]).status_code == 404
    assert client.get(f"{API}/act/", headers=headers["resident"]).status_code == 403


def test_act_request_for_own_contract_only(client, world, headers, session):
    krd, nvr = world
    body = {"contract_id": krd.ids["Contract"], "date_from": "2026-01-01",
            "date_to": "2026-03-31"}
    created = client.post(f"{API}/act/", json=body, headers=headers["krd"])
    assert created.status_code == 201, created.json
    assert created.json["result"]["status"] == "requested"
    again = client.post(f"{API}/act/", json=body, headers=headers["krd"])
    assert again.status_code == 422 and "уже запрошен" in again.json["message"]
    count = session.scalar(select(func.count(m.ReconciliationAct.id)))
    foreign = client.post(f"{API}/act/", json={**body, "contract_id": nvr.ids["Contract"]},
                          headers=headers["krd"])
    assert foreign.status_code == 404
    backwards = client.post(f"{API}/act/", json={**body, "date_from": "2026-05-01"},
                            headers=headers["krd"])
    assert backwards.status_code == 422
    assert backwards.json["message"] == ("Дата начала периода не может быть позже даты его "
                                         "окончания.")
    assert session.scalar(select(func.count(m.ReconciliationAct.id))) == count


def test_ready_act_downloads_as_xlsx_and_pdf(client, world, headers, session):
    krd, nvr = world
    act_id = krd.ids["ReconciliationAct"]
    early = client.get(f"{API}/act/{act_id}/file", headers=headers["krd"])
    assert early.status_code == 409 and "ещё не сформирован" in early.json["message"]
    acts.decide(session, session.get(m.ReconciliationAct, act_id), None, "ready")
    xlsx = client.get(f"{API}/act/{act_id}/file?format=xlsx", headers=headers["krd"])
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    pdf = client.get(f"{API}/act/{act_id}/file?format=pdf", headers=headers["krd"])
    assert pdf.status_code == 200 and pdf.data[:5] == b"%PDF-"
    assert PdfReader(io.BytesIO(pdf.data)).pages
    assert client.get(f"{API}/act/{act_id}/file?format=doc",
                      headers=headers["krd"]).status_code == 400
    assert client.get(f"{API}/act/{act_id}/file",
                      headers=headers["nvr"]).status_code == 404


# The spec, Swagger UI and the role policy


@pytest.fixture
def admin_client(client, make_user_fn):
    make_user_fn("admin", "Admin")
    client.post("/login/", data={"username": "admin", "password": PASSWORD})
    return client


def test_openapi_spec_is_valid_and_complete(admin_client, world):
    spec = admin_client.get(f"{API}/_openapi").json
    validate_spec(spec)
    paths = set(spec["paths"])
    for resource in [*RESOURCES, "act"]:
        assert {f"{API}/{resource}/", f"{API}/{resource}/{{pk}}"} <= paths
    assert {f"{API}/invoice/{{pk}}/pdf", f"{API}/reading/check", f"{API}/act/{{pk}}/file",
            f"{API}/security/login", f"{API}/security/refresh"} <= paths
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("responses"), f"{method} {path} documents no response"
            assert any(code.startswith("2") for code in operation["responses"]), (method, path)
    login_body = spec["components"]["schemas"]["LoginSchema"]["properties"]
    assert {"username", "password", "branch", "refresh", "provider"} <= set(login_body)
    money = spec["components"]["schemas"]["AccountApi.get"]["properties"]["balance"]
    assert money["type"] == "string"


def test_swagger_ui_is_served_from_the_portal(admin_client):
    page = admin_client.get("/swagger/v1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    bundle = re.search(r'"(/static/appbuilder/js/swagger-ui-bundle[.\w]*\.js)"', html)
    assert bundle, "the Swagger UI script, served from the portal"
    assert admin_client.get(bundle.group(1)).status_code == 200
    assert "validatorUrl: null" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    assert admin_client.get("/static/appbuilder/js/swagger-ui-bundle.js").status_code == 200


def test_staff_permissions_do_not_include_the_api(app):
    staff = " ".join(view for view, _ in app.config["FAB_ROLES"][STAFF])
    assert "Api" not in staff
    assert "Api" not in " ".join(ROLE_POLICY[STAFF]["crud"] + ROLE_POLICY[STAFF]["read"])
