"""An account on an organization's contract belongs to the organizations' cabinet: a resident
cannot bind it (the right pair is told to sign in at /business/login), and a binding made
before that rule shows nothing of the company anywhere a resident reads (the cabinet, the
histories, bills, payment, readings, the API, notices, mailings, the personal-data export).
The one rule is app.services.accounts.open_to_residents."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import models as m
from app.services import accounts, demo_logins, feedback, mailings, notice_events, profile
from app.services.binding import BUSINESS_LOGIN, bind_accounts
from app.services.throttle import RULES
from tests.factories import PASSWORD

#: What only the organization's point of supply of Krasnodar shows: its number, its bill's
#: number and amount, its meter, its address and the company's name.
COMPANY = ("231000000001", "INV-krd-ORG-202610", "882,00", "ORG-krd-1", "ул. Северная",
           "Ромашка")
OCTOBER = dt.date(2026, 10, 1)


def company_in(text: str) -> list[str]:
    return [mark for mark in COMPANY if mark in text.replace("\u00a0", " ")]


def old_binding(session, user_id: int, world) -> None:
    """A binding of the organization's account as one made before the rule."""
    session.add(m.AccountBinding(user_id=user_id, account_id=world.ids["OrganizationAccount"]))
    session.commit()


@pytest.fixture
def holder(client, session, owner):
    """The signed-in resident of ``owner`` (Krasnodar's household account bound), who also
    holds an old binding of Krasnodar's organization's account."""
    user, krd, nvr = owner
    old_binding(session, user.id, krd)
    return user, krd, nvr


# The rule, as a service


def test_only_accounts_without_an_organizations_contract_are_open_to_residents(
        session, two_branches):
    krd, nvr = two_branches
    private = m.Contract(number="Д-krd-частный", person_name="Иванов И. И.",
                         branch_id=krd.branch_id, signed_on=dt.date(2025, 3, 1),
                         valid_from=dt.date(2025, 3, 1))
    session.add(private)
    session.flush()
    household = session.get(m.PersonalAccount, krd.ids["PersonalAccount"])
    on_private = m.PersonalAccount(number="230000000013", holder_name="Иванов И. И.",
                                   premises_id=household.premises_id, branch_id=krd.branch_id,
                                   tariff_group_id=household.tariff_group_id,
                                   contract_id=private.id, opened_on=dt.date(2025, 3, 1))
    session.add(on_private)
    session.commit()
    open_ids = set(session.scalars(select(m.PersonalAccount.id)
                                   .where(accounts.open_to_residents())))
    assert open_ids == {krd.ids["PersonalAccount"], nvr.ids["PersonalAccount"], on_private.id}
    numbers = dict(session.execute(select(m.PersonalAccount.number,
                                          accounts.organization_contract_number())).all())
    assert numbers == {"230000000001": None, "230000000002": None, "230000000013": None,
                       "231000000001": "Д-krd-1", "231000000002": "Д-nvr-1"}


def test_a_bound_organizations_account_is_no_residents_account(session, two_branches,
                                                               make_user_fn):
    krd, _nvr = two_branches
    user = make_user_fn("old", "Resident", kind="resident")
    bind_accounts(session, user.id, [("230000000001", "SN-KRD-1")], None)
    old_binding(session, user.id, krd)
    household = krd.ids["PersonalAccount"]
    assert set(session.scalars(accounts.bound_account_ids(session, user.id))) == {household}
    assert accounts.bound_account(session, user.id, krd.ids["OrganizationAccount"]) is None
    assert [s.number for s in accounts.bound_account_summaries(session, user.id)] == [
        "230000000001"]
    assert [a.number for a in feedback.author_accounts(session, user.id)] == ["230000000001"]


# Binding


def test_binding_an_organizations_account_is_refused_with_where_to_go(session, two_branches,
                                                                      make_user_fn):
    user = make_user_fn("resident", "Resident", kind="resident")
    result = bind_accounts(session, user.id, [("2310 0000 0001", "org-krd-1"),
                                              ("230000000001", "SN-KRD-1")], "10.0.0.1")
    assert result.organization == {"231000000001": "Д-krd-1"}
    assert result.bound == ["230000000001"] and not result.refused and not result.already
    bound = set(session.scalars(select(m.AccountBinding.account_id)
                                .where(m.AccountBinding.user_id == user.id)))
    assert bound == {two_branches[0].ids["PersonalAccount"]}
    refusal = session.scalars(select(m.AuditEvent)
                              .where(m.AuditEvent.action == "account.bind_refused")).one()
    assert refusal.object_id == str(two_branches[0].ids["OrganizationAccount"])
    assert json.loads(refusal.details) == {"reason": "organization"}


def test_an_old_binding_is_refused_again_not_reported_as_bound(session, two_branches,
                                                              make_user_fn):
    krd, _nvr = two_branches
    user = make_user_fn("resident", "Resident", kind="resident")
    old_binding(session, user.id, krd)
    result = bind_accounts(session, user.id, [("231000000001", "ORG-KRD-1")], None)
    assert result.organization == {"231000000001": "Д-krd-1"} and not result.already


def test_the_right_pair_of_an_organizations_account_is_not_a_failed_guess(
        session, two_branches, make_user_fn):
    """Wrong pairs are throttled; the right pair of a company's account is not a guess."""
    user = make_user_fn("resident", "Resident", kind="resident")
    allowed = int(RULES["bind"][0].split()[0])
    for _ in range(allowed + 1):
        bind_accounts(session, user.id, [("231000000001", "ORG-KRD-1")], "10.0.0.2")
    assert bind_accounts(session, user.id, [("230000000001", "SN-KRD-1")],
                         "10.0.0.2").bound == ["230000000001"]


def test_the_cabinet_says_the_account_is_an_organizations_and_links_its_cabinet(
        client, session, owner):
    user, krd, _nvr = owner
    page = client.post("/cabinet/bind", data={"account": "231000000001",
                                              "serial": "ORG-krd-1"})
    assert page.status_code == 200
    text = page.get_data(as_text=True).replace("&#34;", '"')
    assert ("Лицевой счёт 231000000001 оформлен на организацию по договору № Д-krd-1, поэтому "
            "привязать его к кабинету жителя нельзя.") in text
    assert f"войдите на странице {BUSINESS_LOGIN}." in text
    assert f'href="{BUSINESS_LOGIN}"' in text and "Войти в кабинет организации" in text
    assert not session.scalar(select(func.count(m.AccountBinding.id)).where(
        m.AccountBinding.account_id == krd.ids["OrganizationAccount"]))


# An old binding shows nothing of the company


def test_the_cabinet_shows_only_the_household(client, holder):
    _user, krd, _nvr = holder
    home = client.get("/cabinet/").get_data(as_text=True)
    assert "230000000001" in home and company_in(home) == []
    for path in ("charges", "invoices", "payments", "readings-history", "meters"):
        listing = client.get(f"/cabinet/{path}/list/").get_data(as_text=True)
        assert company_in(listing) == [], path
        mine = client.get(f"/cabinet/{path}/list/?account={krd.ids['PersonalAccount']}")
        assert mine.status_code == 200, path
        other = client.get(f"/cabinet/{path}/list/?account={krd.ids['OrganizationAccount']}")
        assert "Такого лицевого счёта нет среди ваших" in other.get_data(as_text=True), path
    assert "230000000001" in client.get("/cabinet/charges/list/").get_data(as_text=True)


@pytest.mark.parametrize("path, key", [
    ("charges", "OrganizationCharge"), ("invoices", "OrganizationInvoice"),
    ("payments", "OrganizationPayment"), ("readings-history", "OrganizationReading"),
    ("meters", "OrganizationMeter"),
])
def test_the_companys_records_are_not_found(client, holder, path, key):
    _user, krd, _nvr = holder
    assert client.get(f"/cabinet/{path}/show/{krd.ids[key]}").status_code == 404
    household = key.removeprefix("Organization")
    assert client.get(f"/cabinet/{path}/show/{krd.ids[household]}").status_code == 200


def test_bills_payment_readings_and_consumption_of_the_company_are_not_found(
        client, session, holder):
    _user, krd, _nvr = holder
    account, invoice = krd.ids["OrganizationAccount"], krd.ids["OrganizationInvoice"]
    readings = session.scalar(select(func.count(m.Reading.id)))
    payments = session.scalar(select(func.count(m.Payment.id)))
    for url in (f"/cabinet/bills/{account}", f"/cabinet/bills/invoice/{invoice}.pdf",
                f"/cabinet/bills/{account}/report", f"/cabinet/pay/{account}",
                f"/cabinet/readings/{account}", f"/cabinet/consumption/{account}"):
        assert client.get(url).status_code == 404, url
    meter = krd.ids["OrganizationMeter"]
    assert client.post(f"/cabinet/readings/{account}", data={
        f"m{meter}_t1": "5778", "action": "confirm"}).status_code == 404
    assert client.post(f"/cabinet/pay/{account}", data={
        f"amount_{account}": "100.00", "accounts": str(account)}).status_code == 404
    assert client.post(f"/cabinet/bills/{account}/receipt",
                       data={"amount": "100"}).status_code == 404
    assert session.scalar(select(func.count(m.Reading.id))) == readings
    assert session.scalar(select(func.count(m.Payment.id))) == payments
    household = krd.ids["PersonalAccount"]
    assert client.get(f"/cabinet/bills/{household}").status_code == 200


def test_the_api_gives_the_resident_nothing_of_the_company(client, session, two_branches,
                                                           make_user_fn):
    krd, _nvr = two_branches
    user = make_user_fn("api-resident", "Resident", kind="resident", phone="+79181112233")
    bind_accounts(session, user.id, [("230000000001", "SN-KRD-1")], None)
    old_binding(session, user.id, krd)
    token = client.post("/api/v1/security/login", json={
        "username": "+7 918 111-22-33", "password": PASSWORD, "provider": "db"})
    assert token.status_code == 200, token.json
    headers = {"Authorization": f"Bearer {token.json['access_token']}"}
    rows = {"account": ("PersonalAccount", "OrganizationAccount"),
            "charge": ("Charge", "OrganizationCharge"),
            "invoice": ("Invoice", "OrganizationInvoice"),
            "payment": ("Payment", "OrganizationPayment"),
            "meter": ("Meter", "OrganizationMeter"),
            "reading": ("Reading", "OrganizationReading")}
    for resource, (household, company) in rows.items():
        listing = client.get(f"/api/v1/{resource}/", headers=headers)
        assert listing.json["ids"] == [krd.ids[household]], resource
        assert client.get(f"/api/v1/{resource}/{krd.ids[company]}",
                          headers=headers).status_code == 404, resource
    assert client.get("/api/v1/contract/", headers=headers).json["ids"] == []
    assert client.get(f"/api/v1/invoice/{krd.ids['OrganizationInvoice']}/pdf",
                      headers=headers).status_code == 404
    refused = client.post("/api/v1/reading/check", headers=headers, json={
        "account_id": krd.ids["OrganizationAccount"],
        "meters": [{"meter_id": krd.ids["OrganizationMeter"], "t1": "5778"}]})
    assert refused.status_code == 404


def test_notices_reach_the_holder_about_the_household_only(app, session, two_branches,
                                                           make_user_fn, tmp_path):
    krd, _nvr = two_branches
    household = make_user_fn("household", "Resident", kind="resident", phone="+79185550011")
    company_only = make_user_fn("company", "Resident", kind="resident", phone="+79185550012")
    bind_accounts(session, household.id, [("230000000001", "SN-KRD-1")], None)
    old_binding(session, household.id, krd)
    old_binding(session, company_only.id, krd)
    assert notice_events.bill_ready(session, OCTOBER) == 1
    assert notice_events.payment_received(session, [krd.ids["OrganizationPayment"]]) == 0
    assert notice_events.payment_received(session, [krd.ids["Payment"]]) == 1
    assert notice_events.reading_window_opened(session, dt.date(2026, 11, 15)) == 1
    letters = [json.loads(p.read_text()) for p in (tmp_path / "outbox").glob("*.json")]
    assert letters and all(n["to"] in (household.email, household.phone) for n in letters)
    assert all(company_in(json.dumps(n, ensure_ascii=False)) == [] for n in letters)


def test_high_bill_alerts_only_the_household(session, two_branches, make_user_fn):
    krd, _nvr = two_branches
    user = make_user_fn("household", "Resident", kind="resident", phone="+79185550011")
    old_binding(session, user.id, krd)
    for key in ("OrganizationAccount", "PersonalAccount"):
        session.add(m.Charge(account_id=krd.ids[key], period=dt.date(2025, 10, 1),
                             amount=Decimal("100.00"), kind="metered"))
    session.commit()
    assert notice_events.high_bill_alert(session, dt.date(2026, 11, 2)) == 0
    bind_accounts(session, user.id, [("230000000001", "SN-KRD-1")], None)
    assert notice_events.high_bill_alert(session, dt.date(2026, 11, 2)) == 1


def test_a_mailing_reaches_the_holder_with_the_households_account_and_debt(
        session, two_branches, make_user_fn):
    krd, _nvr = two_branches
    household = make_user_fn("household", "Resident", kind="resident")
    company_only = make_user_fn("company", "Resident", kind="resident")
    bind_accounts(session, household.id, [("230000000001", "SN-KRD-1")], None)
    old_binding(session, household.id, krd)
    old_binding(session, company_only.id, krd)
    mailing = m.Mailing(subject="Новости", body="Текст", branch_id=krd.branch_id)
    session.add(mailing)
    session.commit()
    rows = session.execute(mailings.recipients_query(mailing, dt.date(2026, 11, 1))).all()
    assert [(r.user_id, r.account, r.debt) for r in rows] == [
        (household.id, "230000000001", Decimal("235.00"))]


def test_the_personal_data_export_holds_the_household_only(session, two_branches,
                                                           make_user_fn):
    krd, _nvr = two_branches
    user = make_user_fn("household", "Resident", kind="resident")
    bind_accounts(session, user.id, [("230000000001", "SN-KRD-1")], None)
    old_binding(session, user.id, krd)
    data = profile.personal_data_export(session, user)
    assert [a["number"] for a in data["accounts"]] == ["230000000001"]
    assert [mt["serial"] for a in data["accounts"] for mt in a["meters"]] == ["SN-krd-1"]
    assert company_in(json.dumps(data, ensure_ascii=False, default=str)) == []


# The organization's side, and the demo


def test_the_organization_sees_its_point_of_supply_and_not_the_household(
        client, session, two_branches, make_user_fn):
    krd, _nvr = two_branches
    make_user_fn("org-krd", "Business", kind="business",
                 organization_id=krd.ids["Organization"])
    assert client.post("/business/login", data={"login": "org-krd", "password": PASSWORD,
                                                "branch": krd.branch_id}).status_code == 302
    home = client.get("/business/").get_data(as_text=True)
    assert "231000000001" in home and "230000000001" not in home
    assert client.get(f"/business/account/{krd.ids['PersonalAccount']}").status_code == 404
    assert client.get(f"/business/account/{krd.ids['OrganizationAccount']}").status_code == 200


def test_the_demo_resident_gets_households_only(session, two_branches):
    krd, nvr = two_branches
    assert set(demo_logins._resident_accounts(session)) == {krd.ids["PersonalAccount"],
                                                     nvr.ids["PersonalAccount"]}


# Without signing in: a company's readings and payments are behind its login


def test_guest_readings_of_an_organizations_meter_are_sent_to_its_cabinet(client, session,
                                                                         two_branches):
    """The right pair of a company's meter opens no form: its readings are the organization's
    to give, signed in. The refusal is not a failed guess, and nothing is saved."""
    krd, _nvr = two_branches
    readings = select(func.count(m.Reading.id)).join(m.Meter).where(
        m.Meter.account_id == krd.ids["OrganizationAccount"])
    before = session.scalar(readings)
    allowed = int(RULES["guest_reading"][0].split()[0])
    for _ in range(allowed + 1):
        page = client.post("/readings/", data={"account": "231000000001",
                                               "serial": "org-krd-1"})
        assert page.status_code == 200
        text = page.get_data(as_text=True).replace("&#34;", '"')
        assert ("Лицевой счёт 231000000001 оформлен на организацию по договору № Д-krd-1. "
                "Показания по нему передаются в кабинете организации: войдите на странице "
                f"{BUSINESS_LOGIN}.") in text
        assert company_in(text) == ["231000000001"]
    assert client.get("/readings/meter").location.endswith("/readings/")
    household = client.post("/readings/", data={"account": "230000000001",
                                                "serial": "SN-KRD-1"})
    assert household.status_code == 302 and household.location.endswith("/readings/meter")
    assert session.scalar(readings) == before


def test_guest_payment_of_an_organizations_account_is_refused_with_where_to_pay(
        client, session, two_branches):
    """No check page with the company's debt, no order: a company pays by its bill's bank
    details and sees its debt in its cabinet."""
    page = client.post("/pay/", data={"account": "2310 0000 0001", "amount": "100",
                                      "contact": "buh@romashka.ru"})
    assert page.status_code == 200
    text = page.get_data(as_text=True).replace("\u00a0", " ")
    assert ("Лицевой счёт 231000000001 оформлен на организацию по договору № Д-krd-1. Его "
            "оплачивают по реквизитам из счёта; начисления и платежи — в кабинете организации: "
            f"войдите на странице {BUSINESS_LOGIN}.") in text
    assert "882,00" not in text and "Северная" not in text
    assert client.get("/pay/check").location.endswith("/pay/")
    assert not session.scalar(select(func.count(m.PaymentOrder.id)))
