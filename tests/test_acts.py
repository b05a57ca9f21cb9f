"""Reconciliation acts: the period rules, the ledger behind the numbers (property-based, against
sums recomputed from the database), the .xlsx and PDF layouts read back, the exporter hook,
the organization's cabinet and the back office with their isolation, and the branch export to
.zip in the background."""
from __future__ import annotations

import datetime as dt
import io
import itertools
import os
import re
import time
import zipfile
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from flask import g
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from sqlalchemy import func, select

from app import models as m
from app.plugins import hookimpl
from app.plugins.act_xlsx import XlsxActExporter, write_act
from app.services import act_exports, acts
from app.services.supplier import requisites
from tests.factories import PASSWORD
from tests.signins import session_user_id

TZ = ZoneInfo("Europe/Moscow")
TODAY = dt.date(2026, 11, 30)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: The first row of documents in the workbook (rows 1-9: title, preamble, headings; 10: opening).
FIRST_DOC_ROW = 11
_serial = itertools.count(1)


# ---------------------------------------------------------------------------------------------
# Builders


def new_contract(session, world, accounts: int = 1, director: str | None = None):
    """A fresh organization of ``world``'s branch with one contract and ``accounts`` accounts."""
    n = next(_serial)
    org = m.Organization(name=f"ООО «Тест-{n}»", inn=f"77{n:08d}", kpp="770101001",
                         branch_id=world.branch_id, director=director)
    session.add(org)
    session.flush()
    contract = m.Contract(number=f"Д-т-{n}", organization_id=org.id, branch_id=world.branch_id,
                          signed_on=dt.date(2023, 1, 1), valid_from=dt.date(2023, 1, 1))
    session.add(contract)
    session.flush()
    rows = []
    for i in range(accounts):
        account = m.PersonalAccount(number=f"9{n:07d}{i:02d}", holder_name=org.name,
                                    premises_id=world.ids["Premises"], branch_id=world.branch_id,
                                    tariff_group_id=world.ids["TariffGroup"],
                                    contract_id=contract.id, opened_on=dt.date(2023, 1, 1))
        session.add(account)
        rows.append(account)
    session.flush()
    return org, contract, rows


def add_payment(session, account, amount, at: dt.datetime, status="succeeded",
                paid_at_known: bool = True):
    payment = m.Payment(account_id=account.id, amount=Decimal(amount), method="bank",
                        status=status, created_at=at, paid_at=at if paid_at_known else None)
    session.add(payment)
    return payment


def local(year, month, day, hour=12, minute=0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=TZ).astimezone(dt.timezone.utc)


def make_act(session, org, contract, date_from, date_to, status="requested"):
    act = m.ReconciliationAct(organization_id=org.id, contract_id=contract.id,
                              date_from=date_from, date_to=date_to, status=status)
    session.add(act)
    session.commit()
    return act


def workbook(data) -> openpyxl.Workbook:
    stream = io.BytesIO()
    write_act(data, stream)
    stream.seek(0)
    return openpyxl.load_workbook(stream)


def document_rows(sheet):
    """(№, date, document, debit, credit) of every document row, and the row after them."""
    rows, r = [], FIRST_DOC_ROW
    while sheet.cell(r, 1).value not in ("Обороты за период", None):
        rows.append(tuple(sheet.cell(r, c).value for c in range(1, 6)))
        r += 1
    return rows, r


def sign_in_business(client, make_user_fn, org, username):
    user = make_user_fn(username, "Business", kind="business", organization_id=org.id)
    with client.session_transaction() as session:
        session["_user_id"] = session_user_id(user)
        session["_fresh"] = True
    return user


@pytest.fixture
def export_dir(app, tmp_path):
    folder = tmp_path / "act_exports"
    app.config["ACT_EXPORT_DIR"] = str(folder)
    return folder


# ---------------------------------------------------------------------------------------------
# Period rules


@pytest.mark.parametrize("date_from, date_to, message", [
    ("", "2026-01-31", "Укажите дату начала периода."),
    ("2026-01-01", "", "Укажите дату окончания периода."),
    ("01/01/2026", "2026-01-31", "Дата начала периода указывается в виде ДД.ММ.ГГГГ."),
    ("2026-02-01", "2026-01-31", "Дата начала периода не может быть позже даты его окончания."),
    ("2026-11-01", "2026-12-01", "Акт сверки составляется по уже прошедшие дни: дата окончания "
                                 "периода не может быть позже 30.11.2026."),
    ("2023-01-01", "2026-01-01", "Акт сверки составляется не более чем за 3 года."),
])
def test_check_period_refuses_with_the_reason(date_from, date_to, message):
    with pytest.raises(acts.ActError) as error:
        acts.check_period(date_from, date_to, today=TODAY)
    assert str(error.value) == message


def test_check_period_accepts_both_date_forms_and_three_years_less_a_day():
    assert acts.check_period("01.01.2023", "2025-12-31", today=TODAY) == (
        dt.date(2023, 1, 1), dt.date(2025, 12, 31))
    assert acts.check_period(dt.date(2026, 11, 30), "30.11.2026", today=TODAY) == (
        TODAY, TODAY)


# ---------------------------------------------------------------------------------------------
# Requests and decisions (service)


def test_request_act_for_own_contract_only(app, session, two_branches, make_user_fn):
    krd, nvr = two_branches
    user = make_user_fn("org-krd", "Business", kind="business",
                        organization_id=krd.ids["Organization"])
    for contract_id in (nvr.ids["Contract"], 999999, "abc", ""):
        with pytest.raises(acts.ActNotFound):
            acts.request_act(session, user, contract_id, "2026-01-01", "2026-06-30", TODAY)
    act = acts.request_act(session, user, str(krd.ids["Contract"]), "01.01.2026", "30.06.2026",
                           TODAY)
    assert (act.organization_id, act.contract_id, act.status, act.requested_by_id) == (
        krd.ids["Organization"], krd.ids["Contract"], "requested", user.id)
    assert (act.date_from, act.date_to) == (dt.date(2026, 1, 1), dt.date(2026, 6, 30))
    with pytest.raises(acts.ActError, match="уже запрошен"):
        acts.request_act(session, user, krd.ids["Contract"], "2026-01-01", "2026-06-30", TODAY)
    acts.decide(session, act, None, "ready")
    with pytest.raises(acts.ActError, match="уже сформирован"):
        acts.request_act(session, user, krd.ids["Contract"], "2026-01-01", "2026-06-30", TODAY)
    staff = make_user_fn("staff-no-org", "Staff", branch_id=krd.branch_id)
    with pytest.raises(acts.ActNotFound):
        acts.request_act(session, staff, krd.ids["Contract"], "2026-01-01", "2026-06-30", TODAY)
    assert session.scalar(select(func.count(m.AuditEvent.id))
                          .where(m.AuditEvent.action == "act.requested")) == 1


def test_open_requests_are_limited(app, session, two_branches, make_user_fn, monkeypatch):
    krd, _ = two_branches
    monkeypatch.setattr(acts, "MAX_OPEN_REQUESTS", 2)
    user = make_user_fn("org-krd", "Business", kind="business",
                        organization_id=krd.ids["Organization"])
    # The factory's act is already open: one more is allowed, then the limit.
    acts.request_act(session, user, krd.ids["Contract"], "2026-02-01", "2026-02-28", TODAY)
    with pytest.raises(acts.ActError, match="уже 2 запросов в работе"):
        acts.request_act(session, user, krd.ids["Contract"], "2026-03-01", "2026-03-31", TODAY)


def test_decide_needs_a_reason_to_reject_and_follows_the_states(app, session, two_branches):
    krd, _ = two_branches
    act = session.get(m.ReconciliationAct, krd.ids["ReconciliationAct"])
    with pytest.raises(acts.ActError, match="Укажите причину отказа"):
        acts.decide(session, act, None, "rejected", "  ")
    with pytest.raises(acts.ActError, match="Неизвестное решение"):
        acts.decide(session, act, None, "requested")
    acts.decide(session, act, None, "ready")
    assert act.status == "ready" and act.ready_at is not None and act.decided_at is not None
    with pytest.raises(acts.ActError, match="уже сформирован"):
        acts.decide(session, act, None, "ready")
    acts.decide(session, act, None, "rejected", "Период до заключения договора")
    assert (act.status, act.note) == ("rejected", "Период до заключения договора")
    with pytest.raises(acts.ActError, match="уже отклонён"):
        acts.decide(session, act, None, "ready")


# ---------------------------------------------------------------------------------------------
# The ledger behind the act


def test_act_rows_documents_and_balances(app, session, two_branches):
    krd, _ = two_branches
    org, contract, (a1, a2) = new_contract(session, krd, accounts=2, director="Петров П. П.")
    c = lambda acc, period, amount: session.add(m.Charge(  # noqa: E731
        account_id=acc.id, period=period, amount=Decimal(amount), kind="metered"))
    inv = lambda acc, period, number, charged: session.add(m.Invoice(  # noqa: E731
        account_id=acc.id, period=period, number=number, charged=Decimal(charged),
        due_date=period + dt.timedelta(days=40)))
    c(a1, dt.date(2025, 12, 1), "1000.00")                  # before the act: opening
    add_payment(session, a1, "400.00", local(2025, 12, 31, 23, 30))  # still 2025 in Moscow
    c(a1, dt.date(2026, 1, 1), "735.00")
    inv(a1, dt.date(2026, 1, 1), "T-1-202601", "735.00")
    c(a2, dt.date(2026, 1, 1), "100.00")                     # not invoiced yet
    c(a1, dt.date(2026, 2, 1), "500.00")
    c(a1, dt.date(2026, 2, 1), "-50.00")                     # corrected after the invoice
    inv(a1, dt.date(2026, 2, 1), "T-1-202602", "500.00")
    add_payment(session, a2, "300.00", local(2026, 1, 1, 0, 30))  # 31.12.2025 21:30 UTC
    add_payment(session, a1, "200.00", local(2026, 2, 10), paid_at_known=False)
    add_payment(session, a1, "999.00", local(2026, 2, 11), status="refunded")
    add_payment(session, a1, "77.00", local(2026, 2, 12), status="canceled")
    c(a1, dt.date(2026, 3, 1), "321.00")                     # dated 31.03: after the act
    add_payment(session, a1, "55.00", local(2026, 3, 1, 0, 5))
    session.commit()

    data = acts.contract_act_data(session, contract, dt.date(2026, 1, 1),
                                  dt.date(2026, 2, 28), app.config)
    assert data.opening == Decimal("600.00")
    assert [(r.date, r.document, r.debit, r.credit) for r in data.rows] == [
        (dt.date(2026, 1, 1), "Оплата (п/п) от 01.01.2026", None, Decimal("300.00")),
        (dt.date(2026, 1, 31), "Начисление за январь 2026 г. (л/с " + a2.number + ")",
         Decimal("100.00"), None),
        (dt.date(2026, 1, 31), "Счёт № T-1-202601 от 31.01.2026", Decimal("735.00"), None),
        (dt.date(2026, 2, 10), "Оплата (п/п) от 10.02.2026", None, Decimal("200.00")),
        (dt.date(2026, 2, 28), "Счёт № T-1-202602 от 28.02.2026", Decimal("500.00"), None),
        (dt.date(2026, 2, 28), "Корректировка начислений за февраль 2026 г. (л/с "
         + a1.number + ")", None, Decimal("50.00")),
    ]
    assert (data.debit_total, data.credit_total) == (Decimal("1335.00"), Decimal("550.00"))
    assert data.closing == Decimal("1385.00")
    assert data.customer_signer == "Петров П. П."
    assert data.conclusion == (
        f"По данным {data.supplier['name']} на 28.02.2026 задолженность в пользу "
        f"{data.supplier['name']} составляет 1\u00a0385,00 руб. (Одна тысяча триста восемьдесят "
        "пять рублей 00 копеек).")
    # A period inside a month holds none of its charges: they are dated by its last day.
    mid = acts.contract_act_data(session, contract, dt.date(2026, 2, 1), dt.date(2026, 2, 27),
                                 app.config)
    assert [r.document for r in mid.rows] == ["Оплата (п/п) от 10.02.2026"]
    assert mid.opening == Decimal("600.00") + Decimal("835.00") - Decimal("300.00")


def test_conclusion_in_favour_of_the_customer_and_without_debt(app, session, two_branches):
    krd, _ = two_branches
    org, contract, (account,) = new_contract(session, krd)
    add_payment(session, account, "1000.50", local(2026, 3, 3))
    session.commit()
    data = acts.contract_act_data(session, contract, dt.date(2026, 3, 1), dt.date(2026, 3, 31),
                                  app.config)
    assert data.closing == Decimal("-1000.50")
    assert data.split(data.closing) == (None, Decimal("1000.50"))
    assert data.conclusion.endswith(
        f"задолженность в пользу {org.name} составляет 1\u00a0000,50 руб. (Одна тысяча "
        "рублей 50 копеек).")
    empty = acts.contract_act_data(session, contract, dt.date(2026, 1, 1), dt.date(2026, 1, 31),
                                   app.config)
    assert empty.closing == 0 and list(empty.rows) == []
    assert empty.conclusion == (f"По данным {empty.supplier['name']} на 31.01.2026 "
                                "задолженность отсутствует.")


def test_act_data_is_a_fixed_number_of_queries(app, session, two_branches):
    from sqlalchemy import event

    krd, _ = two_branches
    org, contract, accounts = new_contract(session, krd, accounts=5)
    for account in accounts:
        for month in range(1, 13):
            session.add(m.Charge(account_id=account.id, period=dt.date(2025, month, 1),
                                 amount=Decimal("10.00"), kind="metered"))
            add_payment(session, account, "5.00", local(2025, month, 15))
    session.commit()
    act = make_act(session, org, contract, dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    session.expire_all()
    act = session.get(m.ReconciliationAct, act.id)
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(session.get_bind(), "before_cursor_execute", listener)
    try:
        data = acts.act_data(session, act)
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", listener)
    assert len(list(data.rows)) == 120
    assert len(statements) <= 8, statements  # contract, organization, six ledger queries


# Property: the numbers agree with the database for any organizations and periods

MONTHS_2023 = [dt.date(2023 + i // 12, i % 12 + 1, 1) for i in range(47)]
money_st = st.decimals(min_value=Decimal("-300"), max_value=Decimal("5000"), places=2,
                       allow_nan=False, allow_infinity=False)
positive_st = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2,
                          allow_nan=False, allow_infinity=False)
moment_st = st.datetimes(min_value=dt.datetime(2023, 1, 1), max_value=dt.datetime(2026, 11, 29),
                         timezones=st.just(dt.timezone.utc))
charge_st = st.tuples(st.integers(0, 2), st.sampled_from(MONTHS_2023), money_st,
                      st.sampled_from(["same", "none", "differs"]))
payment_st = st.tuples(st.integers(0, 2), positive_st, moment_st,
                       st.sampled_from(["succeeded", "succeeded", "refunded", "canceled"]),
                       st.booleans())
period_st = st.tuples(st.dates(dt.date(2023, 1, 1), dt.date(2026, 11, 30)),
                      st.integers(0, 3 * 365 - 1))


def _db_balance(session, contract_id: int, first_period_out: dt.date,
                before: dt.datetime) -> Decimal:
    """Charges of periods before ``first_period_out`` less succeeded payments before ``before``,
    summed by the database."""
    accounts = select(m.PersonalAccount.id).where(m.PersonalAccount.contract_id == contract_id)
    charged = session.scalar(select(func.coalesce(func.sum(m.Charge.amount), 0)).where(
        m.Charge.account_id.in_(accounts), m.Charge.period < first_period_out))
    paid = session.scalar(select(func.coalesce(func.sum(m.Payment.amount), 0)).where(
        m.Payment.account_id.in_(accounts), m.Payment.status == "succeeded",
        func.coalesce(m.Payment.paid_at, m.Payment.created_at) < before))
    return (Decimal(charged) - Decimal(paid)).quantize(Decimal("0.01"))


def test_balances_agree_with_the_database_for_random_ledgers(app, session, two_branches):
    krd, nvr = two_branches

    @settings(max_examples=25, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
    @given(ledgers=st.lists(st.tuples(st.lists(charge_st, max_size=12),
                                      st.lists(payment_st, max_size=8)),
                            min_size=1, max_size=3),
           period=period_st, which=st.integers(0, 2))
    def check(ledgers, period, which):
        contracts = []
        for charges, payments in ledgers:
            world = krd if len(contracts) % 2 == 0 else nvr
            _org, contract, accounts = new_contract(session, world, accounts=3)
            invoiced = {}
            for index, month, amount, invoice in charges:
                account = accounts[index]
                session.add(m.Charge(account_id=account.id, period=month, amount=amount,
                                     kind="metered"))
                if invoice != "none":
                    key = (account.id, month)
                    invoiced[key] = invoiced.get(key, Decimal(0)) + amount + (
                        Decimal("1.11") if invoice == "differs" else 0)
            for (account_id, month), charged in invoiced.items():
                session.add(m.Invoice(account_id=account_id, period=month,
                                      number=f"P-{account_id}-{month:%Y%m}", charged=charged,
                                      due_date=month + dt.timedelta(days=40)))
            for index, amount, at, status, known in payments:
                add_payment(session, accounts[index], amount, at, status, known)
            contracts.append(contract)
        session.commit()
        contract = contracts[which % len(contracts)]
        start, days = period
        end = min(start + dt.timedelta(days=days), TODAY)
        data = acts.contract_act_data(session, contract, start, end, app.config)
        rows = list(data.rows)

        first_in = start.replace(day=1)
        first_out = (end + dt.timedelta(days=1)).replace(day=1)
        start_utc = dt.datetime.combine(start, dt.time(), TZ).astimezone(dt.timezone.utc)
        end_utc = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), TZ) \
            .astimezone(dt.timezone.utc)
        opening = _db_balance(session, contract.id, first_in, start_utc)
        closing = _db_balance(session, contract.id, first_out, end_utc)
        assert data.opening == opening
        assert data.opening + data.debit_total - data.credit_total == closing == data.closing
        assert data.debit_total == sum((r.debit for r in rows if r.debit is not None),
                                       Decimal(0))
        assert data.credit_total == sum((r.credit for r in rows if r.credit is not None),
                                        Decimal(0))
        assert all(start <= r.date <= end for r in rows)
        assert rows == sorted(rows, key=lambda r: (r.date, r.debit is None, r.document))
        for r in rows:
            assert (r.debit is None) != (r.credit is None)
            assert (r.debit or r.credit) > 0
            assert isinstance(r.debit or r.credit, Decimal)
        # The workbook says the same.
        sheet = workbook(data).active
        doc_rows, turnover = document_rows(sheet)
        assert len(doc_rows) == len(rows)
        assert [n for n, *_ in doc_rows] == list(range(1, len(rows) + 1))
        assert sum(Decimal(str(d)) for *_, d, _c in doc_rows if d is not None) == \
            data.debit_total
        assert sum(Decimal(str(c)) for *_, c in doc_rows if c is not None) == data.credit_total
        opening_cells = (sheet.cell(10, 4).value, sheet.cell(10, 5).value)
        closing_cells = (sheet.cell(turnover + 1, 4).value, sheet.cell(turnover + 1, 5).value)
        for cells, balance in ((opening_cells, opening), (closing_cells, closing)):
            debit, credit = (Decimal(str(v)) if v is not None else None for v in cells)
            assert (debit or 0) - (credit or 0) == balance

    check()


# ---------------------------------------------------------------------------------------------
# The documents


def _sample(app, session, world, rows: int = 3):
    org, contract, (account,) = new_contract(session, world, director="Сидоров С. С.")
    session.add(m.Charge(account_id=account.id, period=dt.date(2025, 12, 1),
                         amount=Decimal("250.00"), kind="metered"))
    for month in range(1, rows + 1):
        period = dt.date(2026, month, 1)
        session.add(m.Charge(account_id=account.id, period=period, amount=Decimal("1234.56"),
                             kind="metered"))
        session.add(m.Invoice(account_id=account.id, period=period, number=f"S-{month}",
                              charged=Decimal("1234.56"), due_date=period.replace(day=20)))
        add_payment(session, account, "1000.00", local(2026, month, 15))
    session.commit()
    return org, contract


def test_xlsx_layout_read_back(app, session, two_branches):
    krd, _ = two_branches
    org, contract = _sample(app, session, krd)
    data = acts.contract_act_data(session, contract, dt.date(2026, 1, 1), dt.date(2026, 3, 31),
                                  app.config)
    sheet = workbook(data).active
    supplier = requisites(app.config)["name"]
    assert sheet["A1"].value == "Акт сверки взаимных расчётов"
    assert sheet["A2"].value == "за период с 01.01.2026 по 31.03.2026"
    assert sheet["A3"].value == f"между {supplier} и {org.name}"
    assert sheet["A4"].value == f"по договору № {contract.number} от 01.01.2023"
    assert sheet["A6"].value.startswith(f"Мы, нижеподписавшиеся, {supplier}, с одной стороны, "
                                        f"и {org.name}, с другой стороны")
    merged = {str(r) for r in sheet.merged_cells.ranges}
    assert {"A1:J1", "A2:J2", "A3:J3", "A4:J4", "A6:J6", "A8:E8", "F8:J8", "A10:C10",
            "F10:H10"} <= merged
    assert (sheet["A8"].value, sheet["F8"].value) == (f"По данным {supplier}, руб.",
                                                      f"По данным {org.name}, руб.")
    assert [sheet.cell(9, c).value for c in range(1, 11)] == \
        ["№ п/п", "Дата", "Документ", "Дебет", "Кредит"] * 2
    assert (sheet["A10"].value, sheet["D10"].value, sheet["E10"].value) == \
        ("Сальдо начальное", 250, None)
    assert sheet["F10"].value == "Сальдо начальное" and sheet["I10"].value is None
    rows, turnover = document_rows(sheet)
    assert rows[0] == (1, dt.datetime(2026, 1, 15), "Оплата (п/п) от 15.01.2026", None, 1000)
    assert rows[1] == (2, dt.datetime(2026, 1, 31), "Счёт № S-1 от 31.01.2026", 1234.56, None)
    assert len(rows) == 6
    for r in range(FIRST_DOC_ROW, turnover + 2):
        assert sheet.cell(r, 4).number_format == "#,##0.00"
        assert sheet.cell(r, 5).number_format == "#,##0.00"
    assert sheet.cell(FIRST_DOC_ROW, 2).number_format == "DD.MM.YYYY"
    # The customer's half is left empty, boxed for them to fill.
    for r in range(FIRST_DOC_ROW, turnover):
        assert all(sheet.cell(r, c).value is None for c in range(6, 11))
        assert sheet.cell(r, 8).border.left.style == "thin"
    assert sheet.cell(turnover, 1).value == "Обороты за период"
    assert (sheet.cell(turnover, 4).value, sheet.cell(turnover, 5).value) == (3703.68, 3000)
    assert sheet.cell(turnover + 1, 1).value == "Сальдо конечное"
    assert sheet.cell(turnover + 1, 4).value == 953.68
    conclusion = sheet.cell(turnover + 3, 1).value
    assert conclusion == (f"По данным {supplier} на 31.03.2026 задолженность в пользу {supplier}"
                          " составляет 953,68 руб. (Девятьсот пятьдесят три рубля 68 копеек).")
    texts = [sheet.cell(r, c).value for r in range(turnover + 4, sheet.max_row + 1)
             for c in (1, 6)]
    assert f"От {supplier}" in texts and f"От {org.name}" in texts
    assert texts.count("М.П.") == 2 and texts.count("_____________________ (должность)") == 2
    assert "__________________ / Сидоров С. С. /" in texts
    # Print setup: A4 portrait, fit to one page wide, the halves' headings on every page.
    assert sheet.page_setup.paperSize == 9 and sheet.page_setup.orientation == "portrait"
    assert sheet.sheet_properties.pageSetUpPr.fitToPage is True
    assert (sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight) == (1, 0)
    assert sheet.print_title_rows == "$8:$9"
    assert sheet.column_dimensions["C"].width == sheet.column_dimensions["H"].width == 36
    assert sheet.column_dimensions["D"].width == 14


def test_xlsx_stays_correct_for_many_rows(tmp_path):
    """Generated rows (never a list in memory): every row, its number and the totals. Its
    speed and memory at 100 000 rows and more are bench/reconciliation_export.py's."""
    n = 20_000
    supplier = {"name": "ПАО «НЭСК»"}

    def rows():
        for i in range(n):
            day = dt.date(2024, 1, 1) + dt.timedelta(days=i // 100)
            if i % 2:
                yield acts.ActRow(day, f"Оплата (п/п) от {day:%d.%m.%Y}", None, Decimal("1.50"))
            else:
                yield acts.ActRow(day, f"Счёт № {i} от {day:%d.%m.%Y}", Decimal("2.25"), None)

    data = acts.ActData(supplier, "ООО «Большая»", "7700000000", None, None, "Д-1",
                        dt.date(2024, 1, 1), dt.date(2024, 1, 1), dt.date(2026, 9, 30),
                        Decimal("10.00"), rows(), Decimal("22500.00"), Decimal("15000.00"))
    path = tmp_path / "big.xlsx"
    with path.open("wb") as stream:
        assert write_act(data, stream) == n
    sheet = openpyxl.load_workbook(path, read_only=True).active
    count, debit, credit, turnovers, last = 0, Decimal(0), Decimal(0), None, None
    for values in sheet.iter_rows(min_row=FIRST_DOC_ROW, max_col=5, values_only=True):
        if values[0] == "Обороты за период":
            turnovers = values
            break
        count += 1
        assert values[0] == count
        debit += Decimal(str(values[3] or 0))
        credit += Decimal(str(values[4] or 0))
        last = values
    assert count == n and last[2] == "Оплата (п/п) от 18.07.2024"
    assert (debit, credit) == (Decimal("22500.00"), Decimal("15000.00"))
    assert turnovers[3:5] == (22500, 15000)


def test_pdf_act_text_and_pages(app, session, two_branches, tmp_path):
    import pypdfium2

    krd, _ = two_branches
    org, contract = _sample(app, session, krd, rows=10)
    act = make_act(session, org, contract, dt.date(2026, 1, 1), dt.date(2026, 10, 31))
    stream, mimetype, name = acts.render(session, act, "pdf", app.config)
    body = stream.read()
    assert mimetype == "application/pdf" and body.startswith(b"%PDF")
    assert name == f"Акт_сверки_{contract.number}_2026-01-01_2026-10-31.pdf"
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)
    text = re.sub(r"\s+", " ", text)
    supplier = requisites(app.config)["name"]
    for expected in ("АКТ СВЕРКИ", "Сальдо начальное", "Обороты за период", "Сальдо конечное",
                     f"По данным {org.name}, руб.", "Счёт № S-10 от 31.10.2026",
                     "Оплата (п/п) от 15.10.2026", "12 345,60", "10 000,00", "2 595,60",
                     f"задолженность в пользу {supplier} составляет 2 595,60 руб.",
                     "Две тысячи пятьсот девяносто пять рублей 60 копеек", "М.П.",
                     "Сидоров С. С."):
        assert expected in text.replace("\u00a0", " "), expected
    png = tmp_path / "act-page-1.png"
    pypdfium2.PdfDocument(body)[0].render(scale=1.5).to_pil().save(png)
    assert png.stat().st_size > 10_000


# ---------------------------------------------------------------------------------------------
# The exporter hook


class CsvExporter:
    format, mimetype, extension = "csv", "text/csv", "csv"

    def export(self, act_data, stream):
        stream.write(f"opening;{act_data.opening}\n".encode())
        for row in act_data.rows:
            stream.write(f"{row.date:%d.%m.%Y};{row.debit or ''};{row.credit or ''}\n".encode())


class CsvPlugin:
    @hookimpl
    def register_act_exporters(self):
        return [CsvExporter()]


class TwinXlsxPlugin:
    @hookimpl
    def register_act_exporters(self):
        return [type("Twin", (CsvExporter,), {"format": "xlsx"})()]


def test_hook_register_act_exporters_adds_a_format_and_refuses_twins(app, session,
                                                                     two_branches):
    krd, _ = two_branches
    pm = app.extensions["plugins"]
    assert acts.formats() == ["xlsx", "pdf"]
    assert {f: type(e).__module__ for f, e in acts.exporters().items()} == {
        "xlsx": "app.plugins.act_xlsx", "pdf": "app.plugins.act_pdf"}
    act = session.get(m.ReconciliationAct, krd.ids["ReconciliationAct"])
    with pytest.raises(acts.ActError, match="Формат «csv» не поддерживается"):
        acts.render(session, act, "csv")
    pm.register(CsvPlugin(), name="test-csv")
    try:
        assert acts.formats() == ["xlsx", "pdf", "csv"]
        stream, mimetype, name = acts.render(session, act, "csv")
        assert mimetype == "text/csv" and name.endswith("_2026-01-01_2026-09-30.csv")
        assert stream.read().decode().startswith("opening;0.00\n")
    finally:
        pm.unregister(name="test-csv")
    pm.register(TwinXlsxPlugin(), name="test-twin")
    try:
        with pytest.raises(acts.ExporterConfigError, match="'xlsx' is registered twice"):
            acts.init_app(app)
    finally:
        pm.unregister(name="test-twin")


# ---------------------------------------------------------------------------------------------
# The organization's cabinet


def test_business_requests_lists_and_downloads_only_its_own_acts(app, client, session,
                                                                 two_branches, make_user_fn):
    krd, nvr = two_branches
    org = session.get(m.Organization, krd.ids["Organization"])
    sign_in_business(client, make_user_fn, org, "org-krd")
    page = client.get("/business/acts/")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Акты сверки взаимных расчётов" in body and "Запрошен" in body
    assert "Д-krd-1" in body and "Д-nvr-1" not in body
    assert f'value="{nvr.ids["Contract"]}"' not in body

    refused = client.post("/business/acts/request", data={
        "contract": krd.ids["Contract"], "date_from": "2026-06-01", "date_to": "2026-05-01"})
    assert refused.status_code == 400
    assert "Дата начала периода не может быть позже даты его окончания." in \
        refused.get_data(as_text=True)
    assert client.post("/business/acts/request", data={
        "contract": nvr.ids["Contract"], "date_from": "2026-01-01",
        "date_to": "2026-06-30"}).status_code == 404
    before = session.scalar(select(func.count(m.ReconciliationAct.id)))
    done = client.post("/business/acts/request", data={
        "contract": krd.ids["Contract"], "date_from": "2026-01-01", "date_to": "2026-10-31"})
    assert done.status_code == 302
    session.expire_all()
    assert session.scalar(select(func.count(m.ReconciliationAct.id))) == before + 1
    act = session.execute(select(m.ReconciliationAct).order_by(m.ReconciliationAct.id.desc())
                          ).scalars().first()
    assert (act.organization_id, act.date_to) == (org.id, dt.date(2026, 10, 31))
    assert "запрошен" in client.get("/business/acts/").get_data(as_text=True)

    # Not ready yet: no file. Another organization's act: 404, ready or not.
    assert client.get(f"/business/acts/{act.id}.xlsx").status_code == 404
    other = session.get(m.ReconciliationAct, nvr.ids["ReconciliationAct"])
    acts.decide(session, other, None, "ready")
    for fmt in ("xlsx", "pdf"):
        assert client.get(f"/business/acts/{other.id}.{fmt}").status_code == 404
    acts.decide(session, act, None, "ready")
    xlsx = client.get(f"/business/acts/{act.id}.xlsx")
    assert xlsx.status_code == 200 and xlsx.mimetype == XLSX
    assert "filename*=UTF-8''" in xlsx.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    assert sheet["A4"].value == "по договору № Д-krd-1 от 01.01.2024"
    rows, _ = document_rows(sheet)
    assert (rows[0][2], rows[0][3]) == ("Счёт № INV-krd-ORG-202610 от 31.10.2026", 882)
    pdf = client.get(f"/business/acts/{act.id}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert client.get(f"/business/acts/{act.id}.doc").status_code == 404
    rejected = session.get(m.ReconciliationAct, krd.ids["ReconciliationAct"])
    acts.decide(session, rejected, None, "rejected", "Уточните период")
    body = client.get("/business/acts/").get_data(as_text=True)
    assert "Отклонён" in body and "Уточните период" in body
    assert f"/business/acts/{act.id}.pdf" in body
    assert f"/business/acts/{rejected.id}.pdf" not in body


def test_business_acts_need_a_business_sign_in(app, client, two_branches, make_user_fn, login):
    assert client.get("/business/acts/").status_code == 302
    assert "/business/login" in client.get("/business/acts/").location
    make_user_fn("finance-krd", "Finance", branch_id=two_branches[0].branch_id)
    login("finance-krd")
    response = client.get("/business/acts/")
    assert response.status_code in (302, 403)
    assert "Акты сверки взаимных расчётов" not in response.get_data(as_text=True)


# ---------------------------------------------------------------------------------------------
# The back office


def back_office(client, make_user_fn, login, role, branch_id=None, name=None):
    user = make_user_fn(name or f"{role.lower()}-{branch_id}", role, branch_id=branch_id)
    g.pop("_login_user", None)
    assert login(user.username).status_code == 302
    return user


def test_finance_of_a_branch_sees_decides_and_downloads_only_its_acts(
        app, client, session, two_branches, make_user_fn, login):
    krd, nvr = two_branches
    back_office(client, make_user_fn, login, "Finance", krd.branch_id)
    own, other = krd.ids["ReconciliationAct"], nvr.ids["ReconciliationAct"]
    listing = client.get("/reconciliationactview/list/").get_data(as_text=True)
    assert "Ромашка-Краснодар" in listing and "Ромашка-Новороссийск" not in listing
    assert "Выгрузка актов сверки по филиалу" in listing
    for url in (f"/reconciliationactview/show/{other}",
                f"/reconciliationactview/document/{other}/xlsx"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/reconciliationactview/decide/{other}",
                       data={"status": "ready"}).status_code == 404
    card = client.get(f"/reconciliationactview/show/{own}").get_data(as_text=True)
    assert "Отметить сформированным" in card and "Причина отказа" in card
    document = client.get(f"/reconciliationactview/document/{own}/xlsx")
    assert document.status_code == 200 and document.mimetype == XLSX
    assert client.get(f"/reconciliationactview/document/{own}/txt").status_code == 404

    refused = client.post(f"/reconciliationactview/decide/{own}",
                          data={"status": "rejected", "note": ""}, follow_redirects=True)
    assert "Укажите причину отказа" in refused.get_data(as_text=True)
    client.post(f"/reconciliationactview/decide/{own}", data={"status": "ready"})
    session.expire_all()
    act = session.get(m.ReconciliationAct, own)
    assert act.status == "ready" and act.decided_by.username == f"finance-{krd.branch_id}"
    assert session.get(m.ReconciliationAct, other).status == "requested"
    # The add form finds only the branch's organizations and refuses another's.
    found = client.get("/reconciliationactview/lookup/add/organization?q=Ромашка").get_json()
    assert [r["text"] for r in found["results"]] == ["ООО «Ромашка-Краснодар» (ИНН 2308000001)"]
    contracts = client.get("/reconciliationactview/lookup/add/contract?q=Д-").get_json()
    assert [r["id"] for r in contracts["results"]] == [krd.ids["Contract"]]
    before = session.scalar(select(func.count(m.ReconciliationAct.id)))
    client.post("/reconciliationactview/add", data={
        "organization": nvr.ids["Organization"], "contract": nvr.ids["Contract"],
        "date_from": "2026-01-01", "date_to": "2026-03-31"})
    session.expire_all()
    assert session.scalar(select(func.count(m.ReconciliationAct.id))) == before


def test_head_office_finance_sees_every_branch_and_staff_only_reads(
        app, client, session, two_branches, make_user_fn, login):
    krd, nvr = two_branches
    back_office(client, make_user_fn, login, "Finance", None, "finance-head")
    listing = client.get("/reconciliationactview/list/").get_data(as_text=True)
    assert "Ромашка-Краснодар" in listing and "Ромашка-Новороссийск" in listing
    client.post("/logout/")
    back_office(client, make_user_fn, login, "Staff", krd.branch_id)
    own, other = krd.ids["ReconciliationAct"], nvr.ids["ReconciliationAct"]
    assert client.get(f"/reconciliationactview/show/{own}").status_code == 200
    assert "Отметить сформированным" not in \
        client.get(f"/reconciliationactview/show/{own}").get_data(as_text=True)
    assert client.get(f"/reconciliationactview/document/{own}/pdf").status_code == 200
    assert client.get(f"/reconciliationactview/show/{other}").status_code == 404
    decide = client.post(f"/reconciliationactview/decide/{own}", data={"status": "ready"})
    assert decide.status_code == 403 or "/login/" in (decide.location or "")
    session.expire_all()
    assert session.get(m.ReconciliationAct, own).status == "requested"
    assert client.get("/actexportview/list/").status_code in (302, 403)


# ---------------------------------------------------------------------------------------------
# The branch export


@pytest.mark.committed  # a job writes its progress on a connection of its own
def test_branch_export_runs_in_the_background_and_only_its_branch_downloads(
        app, client, session, two_branches, make_user_fn, login, export_dir):
    krd, nvr = two_branches
    _org, second = _sample(app, session, krd)
    back_office(client, make_user_fn, login, "Finance", krd.branch_id)
    page = client.get("/actexportview/list/").get_data(as_text=True)
    assert "Выгрузка актов сверки" in page and "Выгрузок ещё не было." in page
    assert "Краснодарэнергосбыт" in page and "Новороссийскэнергосбыт" not in page

    refused = client.post("/actexportview/add/", data={
        "branch": nvr.branch_id, "date_from": "2026-01-01", "date_to": "2026-10-31",
        "format": "xlsx"}, follow_redirects=True)
    assert "только по вашему филиалу" in refused.get_data(as_text=True)
    bad = client.post("/actexportview/add/", data={
        "branch": krd.branch_id, "date_from": "2026-01-01", "date_to": "2026-10-31",
        "format": "doc"}, follow_redirects=True)
    assert "Выберите формат актов: xlsx, pdf." in bad.get_data(as_text=True)
    assert session.scalar(select(func.count(m.BackgroundJob.id))) == 0

    client.post("/actexportview/add/", data={
        "branch": krd.branch_id, "date_from": "2026-01-01", "date_to": "2026-10-31",
        "format": ["xlsx", "pdf"]})
    session.expire_all()
    job = session.execute(select(m.BackgroundJob)).scalar_one()
    assert (job.kind, job.status, job.percent) == ("acts.export", "done", 100)
    assert job.message == "Готово: актов сверки — 2, файлов в архиве — 4."
    assert f"/actexportview/download/{job.id}" in \
        client.get("/actexportview/list/").get_data(as_text=True)
    archive = client.get(f"/actexportview/download/{job.id}")
    assert archive.status_code == 200 and archive.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.data)) as zipped:
        names = sorted(zipped.namelist())
        assert len(names) == 4 and all("/Акт_сверки_" in n for n in names)
        assert any(n.startswith("2308000001_ООО_Ромашка-Краснодар/") for n in names)
        book = next(n for n in names if second.number in n and n.endswith(".xlsx"))
        sheet = openpyxl.load_workbook(io.BytesIO(zipped.read(book))).active
        rows, _ = document_rows(sheet)
        assert len(rows) == 6 and sheet["A2"].value == "за период с 01.01.2026 по 31.10.2026"
        assert zipped.read(next(n for n in names if n.endswith(".pdf"))).startswith(b"%PDF")
    assert [p.suffix for p in export_dir.iterdir()] == [".zip"]

    client.post("/logout/")
    back_office(client, make_user_fn, login, "Finance", nvr.branch_id)
    assert client.get(f"/actexportview/download/{job.id}").status_code == 404
    assert f"/actexportview/download/{job.id}" not in \
        client.get("/actexportview/list/").get_data(as_text=True)
    client.post("/logout/")
    back_office(client, make_user_fn, login, "Finance", None, "finance-head")
    assert client.get(f"/actexportview/download/{job.id}").status_code == 200
    assert client.get(f"/actexportview/download/{job.id + 1}").status_code == 404


@pytest.mark.committed  # a job writes its progress on a connection of its own
def test_archives_past_their_keeping_time_are_deleted(
        app, client, session, two_branches, make_user_fn, login, export_dir):
    """The daily Celery beat task (and each new export) deletes archives older than
    ACT_EXPORT_KEEP_DAYS, and a worker's half-written leftovers; the list then says so."""
    from app.tasks import prune_act_exports

    krd, _ = two_branches
    _sample(app, session, krd)
    back_office(client, make_user_fn, login, "Finance", krd.branch_id)
    client.post("/actexportview/add/", data={
        "branch": krd.branch_id, "date_from": "2026-01-01", "date_to": "2026-10-31",
        "format": "xlsx"})
    job = session.execute(select(m.BackgroundJob)).scalar_one()
    archive = act_exports.job_archive(job)
    leftover = export_dir / f"acts_{'1' * 32}.part"
    leftover.write_bytes(b"PK")
    keep_days = app.config["ACT_EXPORT_KEEP_DAYS"]
    assert keep_days == 7
    assert prune_act_exports.delay().get() == 0
    now = time.time()
    os.utime(leftover, (now - 8 * 86400,) * 2)
    os.utime(archive, (now - keep_days * 86400 + 3600,) * 2)  # an hour short of its time
    assert prune_act_exports.delay().get() == 1
    assert archive.is_file() and not leftover.exists()
    os.utime(archive, (now - keep_days * 86400 - 60,) * 2)
    assert prune_act_exports.delay().get() == 1
    assert list(export_dir.iterdir()) == [] and act_exports.job_archive(job) is None

    assert client.get(f"/actexportview/download/{job.id}").status_code == 404
    assert "удалён по сроку хранения" in client.get("/actexportview/list/").get_data(
        as_text=True)
    schedule = app.extensions["celery"].conf.beat_schedule
    assert schedule["prune-act-exports"]["task"] == "lk_portal.prune_act_exports"


def test_archive_names_never_come_from_input(app, session, two_branches, export_dir):
    for token in ("../../etc/passwd", "abc", "", None, "A" * 32):
        with pytest.raises(ValueError):
            act_exports.archive_path(token)
    assert act_exports.archive_path("0" * 32).parent == export_dir
    krd, _ = two_branches
    job = m.BackgroundJob(kind=act_exports.JOB_KIND, title="x", status="done",
                          params='{"archive": "../secret"}')
    session.add(job)
    session.commit()
    assert act_exports.job_archive(job) is None
    billing = m.BackgroundJob(kind="billing.run", title="x", status="done",
                              params='{"archive": "' + "0" * 32 + '"}')
    (export_dir / f"acts_{'0' * 32}.zip").write_bytes(b"PK")
    assert act_exports.job_archive(billing) is None


@pytest.mark.committed  # a job writes its progress on a connection of its own
def test_export_job_failure_leaves_no_archive(app, session, two_branches, export_dir,
                                              monkeypatch):
    krd, _ = two_branches

    def broken(self, data, stream):
        raise RuntimeError("диск переполнен")

    monkeypatch.setattr(XlsxActExporter, "export", broken)
    job = act_exports.start_batch(session, None, krd.branch_id, "2026-01-01", "2026-10-31",
                                  ["xlsx"], today=TODAY)
    assert (job.status, job.message) == ("failed", "диск переполнен")
    assert list(export_dir.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# In a browser


@pytest.mark.browser
def test_browser_business_requests_an_act_and_downloads_the_pdf(
        browser_page, live_server, session, two_branches, make_user_fn, shots, tmp_path):
    import pypdfium2

    krd, _ = two_branches
    make_user_fn("org-krd-acts", "Business", kind="business",
                 organization_id=krd.ids["Organization"])
    page = browser_page
    page.goto("/business/login")
    page.fill("input[name=login]", "org-krd-acts")
    page.fill("input[name=password]", PASSWORD)
    page.select_option("select[name=branch]", label="Краснодарэнергосбыт")
    with page.expect_navigation():
        page.locator("button[type=submit], input[type=submit]").first.click()
    page.goto("/business/acts/")
    page.fill("input[name=date_from]", "2026-01-01")
    page.fill("input[name=date_to]", "2026-10-31")
    with page.expect_navigation():
        page.get_by_role("button", name="Запросить").click()
    assert "с 01.01.2026 по 31.10.2026" in page.content()
    session.expire_all()
    act = session.execute(select(m.ReconciliationAct).where(
        m.ReconciliationAct.date_to == dt.date(2026, 10, 31))).scalar_one()
    acts.decide(session, act, None, "ready")
    page.reload()
    shots(page, "acts-01-business-acts")
    with page.expect_download() as download:
        page.locator(f"a[href='/business/acts/{act.id}.pdf']").click()
    body = Path(download.value.path()).read_bytes()
    assert body.startswith(b"%PDF")
    text = PdfReader(io.BytesIO(body)).pages[0].extract_text()
    assert "Счёт № INV-krd-ORG-202610 от 31.10.2026" in text
    image = pypdfium2.PdfDocument(body)[0].render(scale=2).to_pil()
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    image.save(folder / "acts-02-act-pdf-page-1.png")


def test_hook_act_ready_after_commit_and_a_failing_plugin_harms_nothing(app, session,
                                                                        two_branches):
    """Marking an act ready fires act_ready once the decision is committed (the plugin finds
    it ready and nothing unwritten); a plugin that fails changes nothing."""
    from app.extensions import db

    krd, _ = two_branches
    act = session.get(m.ReconciliationAct, krd.ids["ReconciliationAct"])
    seen = []

    class Listener:
        @hookimpl
        def act_ready(self, event):
            row = db.session.get(m.ReconciliationAct, event["act_id"])
            # committed: the session holds no change of it that is not yet written
            status = row.status if not (db.session.dirty or db.session.new) else None
            seen.append((event, status))

    class Failing:
        @hookimpl
        def act_ready(self, event):
            raise RuntimeError("a plugin's own failure")

    pm = app.extensions["plugins"]
    pm.register(Listener(), name="test-act-listener")
    pm.register(Failing(), name="test-act-failing")
    try:
        acts.decide(session, act, None, "ready")
        acts.decide(session, act, None, "rejected", "Ошибочно сформирован")
    finally:
        pm.unregister(name="test-act-listener")
        pm.unregister(name="test-act-failing")
    assert len(seen) == 1  # a rejection is not «ready»
    event, status = seen[0]
    assert status == "ready"
    assert event == {"act_id": act.id, "organization_id": act.organization_id,
                     "contract_id": act.contract_id, "requested_by_id": act.requested_by_id,
                     "date_from": act.date_from.isoformat(), "date_to": act.date_to.isoformat()}
