"""The organizations' cabinet (/business/): contracts with balances that add up, a point of
supply's charges, bills and payments, bill PDFs, readings, the organization's payments and
messages to the branch. Every route is tried with the other organization's ids."""
from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import event, func, select

from app import models as m
from app.extensions import db
from app.services import accounts, feedback, payment_qr
from app.services.readings import Window
from app.views.auth import app_download_qr
from tests.factories import PASSWORD

IN_WINDOW = dt.date(2026, 11, 20)
WINDOW = Window(15, 25)


def page_text(response) -> str:
    return response.get_data(as_text=True).replace("\u00a0", " ")


@pytest.fixture
def today(monkeypatch):
    """Pin the cabinet's idea of today (the reading window counts local days)."""
    def _set(day: dt.date):
        monkeypatch.setattr("app.views.formats.local_today", lambda: day)
        monkeypatch.setattr("app.views.readings.local_today", lambda: day)
    _set(IN_WINDOW)
    return _set


@pytest.fixture
def world(session, two_branches):
    """Krasnodar's organization gets a second point of supply on its contract (overpaid, with
    kopecks that a float would lose, and a payment not yet through) and a second contract
    with no charges; a resident's contract has no organization at all (nor has the
    household's account 230000000001 any contract)."""
    krd, nvr = two_branches
    first = session.get(m.PersonalAccount, krd.ids["OrganizationAccount"])
    second = m.PersonalAccount(number="231000000011", holder_name="ООО «Ромашка-Краснодар»",
                               premises_id=first.premises_id, branch_id=krd.branch_id,
                               tariff_group_id=first.tariff_group_id,
                               contract_id=krd.ids["Contract"], status="active",
                               opened_on=dt.date(2025, 1, 1))
    contract2 = m.Contract(number="Д-krd-2", organization_id=krd.ids["Organization"],
                           branch_id=krd.branch_id, signed_on=dt.date(2025, 3, 1),
                           valid_from=dt.date(2025, 3, 1))
    private = m.Contract(number="Д-krd-частный", person_name="Иванов И. И.",
                         branch_id=krd.branch_id, signed_on=dt.date(2025, 3, 1),
                         valid_from=dt.date(2025, 3, 1))
    session.add_all([second, contract2, private])
    session.flush()
    third = m.PersonalAccount(number="231000000012", holder_name="ООО «Ромашка-Краснодар»",
                              premises_id=first.premises_id, branch_id=krd.branch_id,
                              tariff_group_id=first.tariff_group_id, contract_id=contract2.id,
                              status="active", opened_on=dt.date(2025, 3, 1))
    resident_account = m.PersonalAccount(
        number="230000000013", holder_name="Иванов И. И.", premises_id=first.premises_id,
        branch_id=krd.branch_id, tariff_group_id=first.tariff_group_id,
        contract_id=private.id, status="active", opened_on=dt.date(2025, 3, 1))
    session.add_all([third, resident_account])
    session.flush()
    period = dt.date(2026, 10, 1)
    paid_at = dt.datetime(2026, 11, 5, 7, 30, tzinfo=dt.timezone.utc)
    session.get(m.Payment, krd.ids["OrganizationPayment"]).paid_at = paid_at
    session.add_all([
        m.Charge(account_id=second.id, period=period, amount=Decimal("100.10"), kind="metered"),
        m.Charge(account_id=second.id, period=period, amount=Decimal("200.20"),
                 kind="adjustment", note="Перерасчёт"),
        m.Payment(account_id=second.id, amount=Decimal("400.00"), method="bank",
                  status="succeeded", external_id="ext-krd-2", paid_at=paid_at),
        m.Payment(account_id=second.id, amount=Decimal("999.00"), method="card",
                  status="pending", external_id="ext-krd-3"),
        m.Charge(account_id=resident_account.id, period=period, amount=Decimal("50.00"),
                 kind="metered"),
    ])
    session.commit()
    krd.ids.update(Account2=second.id, Contract2=contract2.id, Account3=third.id,
                   ResidentAccount=resident_account.id)
    return krd, nvr


@pytest.fixture
def org_users(make_user_fn, world):
    krd, nvr = world
    mine = make_user_fn("org-krd", "Business", kind="business",
                        organization_id=krd.ids["Organization"])
    other = make_user_fn("org-nvr", "Business", kind="business",
                         organization_id=nvr.ids["Organization"])
    return mine, other, krd, nvr


def sign_in(client, login: str, branch_id: int):
    return client.post("/business/login", data={"login": login, "password": PASSWORD,
                                                 "branch": branch_id})


@pytest.fixture
def signed_in(client, org_users):
    """Krasnodar's organization user, signed in through the business form."""
    mine, other, krd, nvr = org_users
    assert sign_in(client, "org-krd", krd.branch_id).location.endswith("/business/")
    return mine, other, krd, nvr


def count(session, model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


# The access rule, as a service


def test_organization_accounts_are_those_of_its_contracts(session, world):
    krd, nvr = world
    ids = set(session.execute(accounts.organization_account_ids(
        session, krd.ids["Organization"])).scalars())
    assert ids == {krd.ids["OrganizationAccount"], krd.ids["Account2"], krd.ids["Account3"]}
    for other in (nvr.ids["OrganizationAccount"], krd.ids["PersonalAccount"]):
        assert accounts.organization_account(session, krd.ids["Organization"], other) is None
    for other in (nvr.ids["OrganizationInvoice"], krd.ids["Invoice"]):
        assert accounts.organization_invoice(session, krd.ids["Organization"], other) is None
    # A user with no organization reaches nothing, not the residents' contracts (NULL).
    assert session.execute(accounts.organization_account_ids(session, None)).all() == []
    assert accounts.organization_account(session, None, krd.ids["ResidentAccount"]) is None


def test_contract_balance_is_the_sum_of_its_accounts(session, world):
    krd, _nvr = world
    overview = accounts.organization_overview(session, krd.ids["Organization"], IN_WINDOW,
                                              WINDOW)
    by_number = {c.contract.number: c for c in overview.contracts}
    assert list(by_number) == ["Д-krd-1", "Д-krd-2"]
    main = by_number["Д-krd-1"]
    balances = {a.number: a.balance for a in main.accounts}
    # 882.00 - 450.00; 100.10 + 200.20 - 400.00 (the pending 999.00 does not count)
    assert balances == {"231000000001": Decimal("432.00"), "231000000011": Decimal("-99.70")}
    assert main.balance == sum(balances.values()) == Decimal("332.30")
    assert (main.charged, main.paid) == (Decimal("1182.30"), Decimal("850.00"))
    assert by_number["Д-krd-2"].balance == Decimal("0.00")
    assert overview.balance == Decimal("332.30") and overview.accounts == 3
    for summary in overview.contracts:
        for a in summary.accounts:
            assert isinstance(a.balance, Decimal) and a.balance == a.balance.quantize(
                Decimal("0.01"))


def test_overview_takes_a_fixed_number_of_queries(session, world):
    krd, nvr = world
    statements = []
    engine = db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        accounts.organization_overview(session, krd.ids["Organization"], IN_WINDOW, WINDOW)
        many = len(statements)
        statements.clear()
        session.expire_all()
        accounts.organization_overview(session, nvr.ids["Organization"], IN_WINDOW, WINDOW)
        one = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert many == one <= 4


# Pages


def test_home_lists_own_contracts_with_balances_that_add_up(client, signed_in, today):
    _mine, _other, krd, _nvr = signed_in
    home = page_text(client.get("/business/"))
    assert "ООО «Ромашка-Краснодар»" in home and "Ромашка-Новороссийск" not in home
    assert "Договор № Д-krd-1" in home and "Договор № Д-krd-2" in home
    assert "Д-nvr-1" not in home and "Д-krd-частный" not in home
    assert "230000000013" not in home and "230000000002" not in home
    assert "230000000001" not in home  # the household's account in the same branch
    assert "Задолженность 332,30 ₽" in home  # the contract and the organization
    assert ">432,00 ₽<" in home and ">-99,70 ₽<" in home and ">332,30 ₽<" in home
    assert "Итого по договору" in home
    assert "Ждём показания" in home
    assert f"/business/readings/{krd.ids['OrganizationAccount']}" in home
    assert f"/business/account/{krd.ids['Account2']}" in home


def test_account_page_shows_months_bills_and_payments(client, signed_in, today):
    _mine, _other, krd, _nvr = signed_in
    page = page_text(client.get(f"/business/account/{krd.ids['OrganizationAccount']}"))
    assert "Точка поставки 231000000001" in page and "договор № Д-krd-1" in page
    assert "октябрь 2026" in page and "№ INV-krd-ORG-202610" in page
    assert f"/business/invoice/{krd.ids['OrganizationInvoice']}.pdf" in page
    assert ">882,00 ₽<" in page and "Задолженность 432,00 ₽" in page
    assert "Банк" in page and ">450,00 ₽<" in page
    other = page_text(client.get(f"/business/account/{krd.ids['Account2']}"))
    assert "Переплата 99,70 ₽" in other and "Счёт не выставлен" in other
    assert ">300,30 ₽<" in other and "999,00" not in other


def test_bill_downloads_as_a_real_pdf(client, signed_in, session):
    _mine, _other, krd, _nvr = signed_in
    before = count(session, m.AuditEvent)
    response = client.get(f"/business/invoice/{krd.ids['OrganizationInvoice']}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert "bill_231000000001_2026-10.pdf" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "private, no-store"
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(response.data)).pages)
    assert "231000000001" in text and "882,00" in text
    assert count(session, m.AuditEvent) == before + 1


def test_reading_for_an_organizations_meter_end_to_end(client, signed_in, session, today):
    mine, _other, krd, _nvr = signed_in
    url = f"/business/readings/{krd.ids['OrganizationAccount']}"
    meter = krd.ids["OrganizationMeter"]
    form = page_text(client.get(url))
    assert "Предыдущее: <b>5678</b> на октябрь 2026" in form
    check = page_text(client.post(url, data={f"m{meter}_t1": "5778", "action": "check"}))
    assert "Итого расход" in check and "Ориентировочно к начислению" in check
    assert "735,00" in check  # 100 kWh at 7.35
    done = client.post(url, data={f"m{meter}_t1": "5778", "action": "confirm"})
    assert done.status_code == 302
    assert done.location.endswith(f"/business/account/{krd.ids['OrganizationAccount']}")
    saved = session.execute(select(m.Reading).where(
        m.Reading.meter_id == meter, m.Reading.period == dt.date(2026, 11, 1))).scalar_one()
    assert (saved.t1, saved.status, saved.source, saved.submitted_by_id) == (
        Decimal("5778"), "accepted", "web", mine.id)
    assert "Показания приняты." in page_text(client.get(done.location))
    assert "Показания переданы" in page_text(client.get("/business/"))


def test_bad_reading_is_refused_and_nothing_saved(client, signed_in, session, today):
    _mine, _other, krd, _nvr = signed_in
    url = f"/business/readings/{krd.ids['OrganizationAccount']}"
    before = count(session, m.Reading)
    page = page_text(client.post(url, data={f"m{krd.ids['OrganizationMeter']}_t1": "12,5",
                                            "action": "confirm"}))
    assert "введите целое число киловатт-часов" in page
    assert count(session, m.Reading) == before


def test_payments_page_lists_own_payments_in_the_period(client, signed_in, today):
    page = page_text(client.get("/business/payments?from=2026-01-01&to=2026-12-31"))
    assert "231000000001" in page and "231000000011" in page
    assert "230000000001" not in page and "231000000002" not in page
    assert ">850,00 ₽<" in page and "999,00" not in page
    assert "Итого поступило (платежей: 2)" in page
    empty = page_text(client.get("/business/payments?from=2020-01-01&to=2020-12-31"))
    assert "За выбранный период платежей не поступало." in empty
    bad = client.get("/business/payments?from=2026-12-31&to=2026-01-01")
    assert bad.status_code == 400
    assert "Дата «с» не может быть позже даты «по»." in page_text(bad)


# Writing to the branch


def test_message_to_the_branch_is_saved_and_listed(client, signed_in, session):
    mine, _other, krd, _nvr = signed_in
    sent = client.post("/business/feedback", data={
        "topic": "Начисления и счета", "account": str(krd.ids["Account2"]),
        "message": "Просим пояснить перерасчёт за октябрь."})
    assert sent.status_code == 302
    row = session.execute(select(m.Feedback).where(m.Feedback.user_id == mine.id)).scalar_one()
    assert (row.branch_id, row.account_id, row.topic, row.status) == (
        krd.branch_id, krd.ids["Account2"], "Начисления и счета", "new")
    page = page_text(client.get("/business/feedback"))
    assert f"Обращение № {row.id} отправлено в Краснодарэнергосбыт." in page
    assert "Просим пояснить перерасчёт за октябрь." in page and "Новое" in page
    assert "точка поставки 231000000011" in page
    row.status, row.reply = "answered", "Перерасчёт по акту проверки прибора учёта."
    row.answered_at = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.timezone.utc)
    session.commit()
    page = page_text(client.get("/business/feedback"))
    assert "Ответ филиала от 21.11.2026 12:00" in page and "Отвечено" in page
    assert "Перерасчёт по акту проверки прибора учёта." in page


def test_without_an_account_is_fine(client, signed_in, session):
    mine, *_ = signed_in
    assert client.post("/business/feedback", data={
        "topic": "Другое", "account": "", "message": "Нужен акт сверки."}).status_code == 302
    row = session.execute(select(m.Feedback).where(m.Feedback.user_id == mine.id)).scalar_one()
    assert row.account_id is None


@pytest.mark.parametrize("data, field, message", [
    ({"topic": "", "message": "Текст"}, "topic", feedback.TOPIC_EMPTY),
    ({"topic": "   ", "message": "Текст"}, "topic", feedback.TOPIC_EMPTY),
    ({"topic": "т" * 161, "message": "Текст"}, "topic", feedback.TOPIC_LONG),
    ({"topic": "Тема", "message": ""}, "message", feedback.MESSAGE_EMPTY),
    ({"topic": "Тема", "message": "т" * 4001}, "message", feedback.MESSAGE_LONG),
    ({"topic": "Тема", "message": "Текст", "account": "abc"}, "account",
     feedback.ACCOUNT_UNKNOWN),
    ({"topic": "Тема", "message": "Текст", "account": "999999"}, "account",
     feedback.ACCOUNT_UNKNOWN),
])
def test_bad_message_is_refused_with_the_reason(client, signed_in, session, data, field,
                                                message):
    before = count(session, m.Feedback)
    response = client.post("/business/feedback", data=data)
    assert response.status_code == 400
    page = page_text(response)
    assert f'<p class="help-block" id="{field}-error" role="alert">{message}</p>' in page
    assert "Обращение не отправлено" in page
    assert count(session, m.Feedback) == before


def test_all_reasons_are_given_at_once(session, world):
    krd, _nvr = world
    with pytest.raises(feedback.FeedbackError) as refused:
        feedback.create(session, user_id=None, branch_id=krd.branch_id, topic="",
                        message=" ", account="1")
    assert refused.value.errors == {"topic": feedback.TOPIC_EMPTY,
                                    "message": feedback.MESSAGE_EMPTY,
                                    "account": feedback.ACCOUNT_UNKNOWN}


def test_feedback_service_serves_any_author(session, world, make_user_fn):
    """A resident's bound accounts are the same kind of choice as an organization's."""
    from app.services.binding import bind_accounts

    krd, nvr = world
    resident = make_user_fn("resident-fb", "Resident", kind="resident")
    bind_accounts(session, resident.id, [("230000000001", "SN-KRD-1")], None)
    allowed = accounts.bound_account_ids(session, resident.id)
    row = feedback.create(session, user_id=resident.id, branch_id=krd.branch_id,
                          topic="Вопрос", message="Текст", account=krd.ids["PersonalAccount"],
                          allowed_accounts=allowed)
    assert row.account_id == krd.ids["PersonalAccount"]
    with pytest.raises(feedback.FeedbackError):
        feedback.create(session, user_id=resident.id, branch_id=krd.branch_id, topic="Вопрос",
                        message="Текст", account=nvr.ids["PersonalAccount"],
                        allowed_accounts=allowed)
    assert feedback.history(session, select(m.PortalUser.id).where(
        m.PortalUser.id == resident.id)) == [row]


# Isolation: the other organization's ids


def test_every_route_refuses_the_other_organizations_rows(client, signed_in, session, today):
    _mine, other, krd, nvr = signed_in
    account, invoice, meter = (nvr.ids["OrganizationAccount"], nvr.ids["OrganizationInvoice"],
                               nvr.ids["OrganizationMeter"])
    session.add(m.Feedback(user_id=other.id, branch_id=nvr.branch_id, topic="Чужая тема",
                           message="Чужое обращение"))
    session.commit()
    counts = {model: count(session, model) for model in (m.Reading, m.Feedback, m.AuditEvent)}
    for url in (f"/business/account/{account}", f"/business/invoice/{invoice}.pdf",
                f"/business/readings/{account}", f"/business/account/{krd.ids['ResidentAccount']}",
                f"/business/account/{krd.ids['PersonalAccount']}",
                f"/business/invoice/{krd.ids['Invoice']}.pdf",
                "/business/account/999999", "/business/invoice/999999.pdf"):
        assert client.get(url).status_code == 404, url
    for action in ("check", "confirm"):
        response = client.post(f"/business/readings/{account}",
                               data={f"m{meter}_t1": "1334", "action": action, "confirmed": "1"})
        assert response.status_code == 404
    refused = client.post("/business/feedback", data={
        "topic": "Тема", "message": "Текст", "account": str(account)})
    assert refused.status_code == 400 and feedback.ACCOUNT_UNKNOWN in page_text(refused)
    page = page_text(client.get("/business/feedback"))
    assert "Чужое обращение" not in page and "Когда будет счёт?" not in page
    assert f'value="{account}"' not in page
    assert {model: count(session, model) for model in counts} == counts


def test_other_organization_sees_only_its_own(client, org_users, today):
    _mine, _other, krd, nvr = org_users
    sign_in(client, "org-nvr", nvr.branch_id)
    home = page_text(client.get("/business/"))
    assert "Д-nvr-1" in home and "Д-krd-1" not in home
    assert client.get(f"/business/account/{krd.ids['OrganizationAccount']}").status_code == 404
    assert client.get(f"/business/invoice/{krd.ids['OrganizationInvoice']}.pdf"
                      ).status_code == 404


def test_user_without_an_organization_sees_nothing(client, make_user_fn, world, today):
    krd, _nvr = world
    make_user_fn("org-none", "Business", kind="business", branch_id=krd.branch_id)
    sign_in(client, "org-none", krd.branch_id)
    home = page_text(client.get("/business/"))
    assert "Договоров энергоснабжения не найдено." in home and "Д-krd" not in home
    assert client.get(f"/business/account/{krd.ids['ResidentAccount']}").status_code == 404


# Audiences


def test_anonymous_visitors_go_to_the_business_sign_in(client, world):
    krd, _nvr = world
    for url in ("/business/", f"/business/account/{krd.ids['OrganizationAccount']}",
                "/business/payments", "/business/feedback"):
        response = client.get(url)
        assert response.status_code == 302 and "/business/login" in response.location, url


def test_resident_cannot_open_business_pages(client, owner, session):
    _user, krd, _nvr = owner
    before = count(session, m.Feedback)
    for url in ("/business/", f"/business/account/{krd.ids['OrganizationAccount']}",
                f"/business/invoice/{krd.ids['OrganizationInvoice']}.pdf",
                f"/business/readings/{krd.ids['OrganizationAccount']}", "/business/payments",
                "/business/feedback"):
        assert client.get(url).status_code in (302, 403), url
    assert client.post("/business/feedback", data={"topic": "Т", "message": "Т"}
                       ).status_code in (302, 403)
    assert count(session, m.Feedback) == before


def test_business_user_cannot_open_the_resident_cabinet(client, signed_in):
    _mine, _other, krd, _nvr = signed_in
    for url in ("/cabinet/", f"/cabinet/bills/{krd.ids['PersonalAccount']}",
                f"/cabinet/bills/invoice/{krd.ids['Invoice']}.pdf",
                f"/cabinet/readings/{krd.ids['PersonalAccount']}"):
        assert client.get(url).status_code in (302, 403), url


def test_the_cabinet_links_every_section_including_acts(app, client, signed_in):
    page = page_text(client.get("/business/"))
    assert "BusinessActsView.list" in app.view_functions and "Акты сверки" in page
    for label in ("Договоры", "Платежи", "Обращения"):
        assert label in page


# The sign-in page


def test_sign_in_page_shows_the_apps_qr_code(app, client):
    page = page_text(client.get("/business/login"))
    url = app.config["MOBILE_APP_URL"]
    assert "Мобильное приложение для организаций" in page
    assert str(app_download_qr(url)) in page and f'href="{url}"' in page
    image = Image.open(io.BytesIO(payment_qr.qr_png(url)))
    decoded = [r.text for r in zxingcpp.read_barcodes(image)]
    assert decoded == [url]


def test_the_app_url_comes_from_the_configuration(make_app):
    other = "https://example.test/lk-app"
    flask_app = make_app(MOBILE_APP_URL=other)
    with flask_app.app_context():
        page = flask_app.test_client().get("/business/login").get_data(as_text=True)
        assert str(app_download_qr(other)) in page and f'href="{other}"' in page


def test_an_id_no_database_column_holds_is_a_plain_404(client, signed_in):
    """2**31 is past PostgreSQL's integer: the route does not match, nothing asks the
    database (which would answer with an error, a 500)."""
    for url in ("/business/account/2147483648", "/business/invoice/99999999999.pdf",
                "/api/v1/account/2147483648"):
        assert client.get(url).status_code in (401, 404), url
    assert client.get("/business/account/2147483647").status_code == 404
