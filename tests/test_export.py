"""Excel export of back-office lists: the list's filters, order and scope; typed cells; who
may export; the permission reaching Admin through the role sync."""
from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from urllib.parse import quote

import openpyxl
import pytest
from sqlalchemy import event, func, select

from app import models as m
from app.extensions import db
from app.services.export import DATE_FORMAT, DATETIME_FORMAT, MONEY_FORMAT, MONTH_FORMAT
from app.views.access import ADMIN, FINANCE, STAFF

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PAYMENT_HEADER = ["Лицевой счёт", "Сумма, руб.", "Способ оплаты", "Статус", "Дата оплаты",
                  "Создан"]


@pytest.fixture
def payments(session, two_branches):
    """Besides each branch's 500.00 card payment (a household's) and 450.00 bank payment (its
    organization's): three more, of several statuses."""
    krd, nvr = two_branches
    krd_account, nvr_account = krd.ids["PersonalAccount"], nvr.ids["PersonalAccount"]
    created = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)
    rows = [
        m.Payment(account_id=krd_account, amount=Decimal("1234567.89"), method="bank",
                  status="succeeded", external_id="pp-1", created_at=created,
                  paid_at=dt.datetime(2026, 11, 20, 7, 30, tzinfo=dt.timezone.utc)),
        m.Payment(account_id=krd_account, amount=Decimal("99.90"), method="sbp",
                  status="canceled", external_id="pp-2", created_at=created),
        m.Payment(account_id=nvr_account, amount=Decimal("10.00"), method="cash",
                  status="succeeded", external_id="pp-3", created_at=created),
    ]
    session.add_all(rows)
    session.commit()
    return krd, nvr


def workbook(response):
    assert response.status_code == 200, response.status_code
    assert response.mimetype == XLSX
    return openpyxl.load_workbook(io.BytesIO(response.data)).active


def values(sheet):
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


@pytest.fixture
def finance(make_user_fn, login):
    user = make_user_fn("finance", FINANCE)
    assert login("finance").status_code == 302
    return user


def test_finance_exports_filtered_payments(client, payments, finance):
    krd, _ = payments
    query = f"_flt_0_account={krd.ids['PersonalAccount']}&_flt_0_status=succeeded"
    response = client.get(f"/paymentview/export/xlsx?{query}")
    sheet = workbook(response)
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="export_20')
    assert f"filename*=UTF-8''{quote('Платежи')}_20" in disposition
    assert disposition.endswith(".xlsx")
    assert sheet.title == "Платежи"
    rows = values(sheet)
    assert rows[0] == PAYMENT_HEADER
    assert [(r[0], Decimal(str(r[1])), r[2], r[3]) for r in rows[1:]] == [
        ("230000000001", Decimal("500.00"), "Банковская карта", "Оплачен"),
        ("230000000001", Decimal("1234567.89"), "Банк", "Оплачен"),
    ]
    big = sheet.cell(row=3, column=2)
    assert big.number_format == MONEY_FORMAT and isinstance(big.value, float)
    assert sheet.cell(row=3, column=5).value == dt.datetime(2026, 11, 20, 10, 30)
    assert sheet.cell(row=3, column=5).number_format == DATETIME_FORMAT
    assert sheet.cell(row=3, column=6).value == dt.datetime(2026, 11, 20, 12, 0)


def test_export_follows_the_list_order(client, payments, finance):
    response = client.get("/paymentview/export/xlsx?_flt_0_status=succeeded"
                          "&_oc_PaymentView=amount&_od_PaymentView=asc")
    amounts = [Decimal(str(row[1])) for row in values(workbook(response))[1:]]
    assert amounts == [Decimal("10.00"), Decimal("450.00"), Decimal("450.00"),
                       Decimal("500.00"), Decimal("500.00"), Decimal("1234567.89")]


def test_export_with_a_not_equal_status_filter(client, payments, finance):
    rows = values(workbook(client.get("/paymentview/export/xlsx?_flt_1_status=succeeded")))
    assert [(row[0], Decimal(str(row[1])), row[3]) for row in rows[1:]] == [
        ("230000000001", Decimal("99.90"), "Отменён")]


def test_finance_exports_invoices_of_a_period(client, session, two_branches, finance):
    krd, nvr = two_branches
    session.add(m.Invoice(number="INV-krd-202609", account_id=krd.ids["PersonalAccount"],
                          period=dt.date(2026, 9, 1), opening_balance=Decimal("-15.5"),
                          charged=Decimal("700.00"), paid=Decimal("700.00"),
                          amount_due=Decimal("-15.50"), due_date=dt.date(2026, 10, 10)))
    session.commit()
    response = client.get("/invoiceview/export/xlsx?_flt_0_period=2026-10-01"
                          "&_oc_InvoiceView=number&_od_InvoiceView=asc")
    sheet = workbook(response)
    rows = values(sheet)
    assert rows[0] == ["Номер счёта", "Лицевой счёт", "Период", "Входящее сальдо, руб.",
                       "Начислено, руб.", "Оплачено, руб.", "К оплате, руб.", "Оплатить до"]
    assert [row[0] for row in rows[1:]] == ["INV-krd-202610", "INV-krd-ORG-202610",
                                            "INV-nvr-202610", "INV-nvr-ORG-202610"]
    assert [row[1] for row in rows[1:]] == ["230000000001", "231000000001", "230000000002",
                                            "231000000002"]
    assert [Decimal(str(v)) for v in rows[1][3:7]] == [
        Decimal("0"), Decimal("735.00"), Decimal("0"), Decimal("735.00")]
    period, due = sheet.cell(row=2, column=3), sheet.cell(row=2, column=8)
    assert period.value == dt.datetime(2026, 10, 1) and period.number_format == MONTH_FORMAT
    assert due.value == dt.datetime(2026, 11, 10) and due.number_format == DATE_FORMAT
    assert all(sheet.cell(row=2, column=c).number_format == MONEY_FORMAT for c in range(4, 8))
    assert f"filename*=UTF-8''{quote('Счета')}_" in response.headers["Content-Disposition"]


def test_export_is_audited(client, session, payments, finance):
    client.get("/paymentview/export/xlsx?_flt_0_status=canceled")
    event_row = session.scalars(select(m.AuditEvent).where(
        m.AuditEvent.action == "export.xlsx")).one()
    assert event_row.actor_id == finance.id and event_row.object_type == "PaymentView"
    assert '"rows": 1' in event_row.details and "_flt_0_status=canceled" in event_row.details


def test_export_queries_in_sets_not_per_row(app, client, session, two_branches, finance):
    krd, nvr = two_branches

    def statements_for_export() -> list[str]:
        """The statements on the portal's own tables (not the signed-in user's reload, nor
        the SAVEPOINTs of the test's outer transaction)."""
        seen = []

        def listener(conn, cursor, statement, *args):
            if "ab_" not in statement and "SAVEPOINT" not in statement:  # the test's own
                seen.append(statement.split()[0])

        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            workbook(client.get("/paymentview/export/xlsx"))
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return seen

    few = statements_for_export()
    assert few.count("SELECT") <= 2
    accounts = []
    for n in range(30):
        world = krd if n % 2 else nvr
        account = m.PersonalAccount(
            number=f"2399{n:08d}", holder_name=f"Абонент {n}", premises_id=world.ids["Premises"],
            branch_id=world.branch_id, tariff_group_id=world.ids["TariffGroup"],
            opened_on=dt.date(2025, 1, 1))
        accounts.append(account)
    session.add_all(accounts)
    session.flush()
    session.add_all([m.Payment(account_id=a.id, amount=Decimal("1.00"), status="succeeded")
                     for a in accounts])
    session.commit()
    assert statements_for_export() == few


def test_list_page_offers_the_export_with_its_filters(client, payments, finance):
    body = client.get("/paymentview/list/?_flt_0_status=succeeded").get_data(as_text=True)
    assert "Экспорт в Excel" in body
    assert 'href="/paymentview/export/xlsx?_flt_0_status=succeeded"' in body


def test_staff_may_not_export(client, two_branches, make_user_fn, login):
    krd, _ = two_branches
    make_user_fn("oper", STAFF, branch_id=krd.branch_id)
    login("oper")
    for view in ("paymentview", "personalaccountview", "meterview"):
        response = client.get(f"/{view}/export/xlsx")
        assert response.status_code == 403 and response.mimetype != XLSX
        assert "Экспорт в Excel" not in client.get(f"/{view}/list/").get_data(as_text=True)


def test_anonymous_may_not_export(client, two_branches):
    response = client.get("/paymentview/export/xlsx")
    assert response.status_code == 302 and response.mimetype != XLSX


def test_admin_gets_the_export_permission_from_the_role_sync(app, client, session,
                                                            two_branches, make_user_fn, login):
    sm = app.appbuilder.sm
    admin = sm.find_role(ADMIN)
    granted = {(p.permission.name, p.view_menu.name) for p in admin.permissions}
    for view in ("PaymentView", "InvoiceView", "PersonalAccountView", "SubscriberView"):
        assert ("can_export_xlsx", view) in granted, view
    assert ("can_export_xlsx", "AuditEventView") not in granted
    assert ("can_delete", "PaymentView") not in granted
    make_user_fn("boss", ADMIN)
    login("boss")
    sheet = workbook(client.get("/personalaccountview/export/xlsx?_flt_0_status=active"))
    assert [row[0] for row in values(sheet)[1:]] == ["230000000001", "230000000002",
                                                     "231000000001", "231000000002"]
    assert session.scalar(select(func.count()).select_from(m.AuditEvent).where(
        m.AuditEvent.action == "export.xlsx")) == 1


def test_finance_exports_the_subscribers_it_may_read(client, session, two_branches,
                                                     make_user_fn, finance):
    sheet = workbook(client.get("/users/export/xlsx?_oc_SubscriberView=username"
                                "&_od_SubscriberView=asc"))
    rows = values(sheet)
    assert rows[0][:4] == ["Логин", "Фамилия", "Имя", "Тип пользователя"]
    assert rows[1][0] == "finance" and rows[1][3] == "Сотрудник"
    assert rows[1][7] == "Финансист" and rows[1][8] == "Да"


def test_typed_names_stay_text_in_the_export(client, session, two_branches, make_user_fn,
                                             finance):
    """A control character made openpyxl refuse the whole file (a server error); a name
    typed as a formula must not become one in finance's spreadsheet."""
    user = make_user_fn("resident", "Resident", kind="resident")
    user.first_name, user.last_name = "Ив\x02ан", '=HYPERLINK("http://evil.test","Жми")'
    session.commit()
    sheet = workbook(client.get("/users/export/xlsx?_oc_SubscriberView=username"
                                "&_od_SubscriberView=asc"))
    row = next(row for row in sheet.iter_rows(min_row=2) if row[0].value == "resident")
    assert row[2].value == "Иван"
    assert (row[1].value, row[1].data_type) == ('=HYPERLINK("http://evil.test","Жми")', "s")
