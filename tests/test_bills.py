"""Bills, receipts and the payment report: the GOST R 56042-2014 QR string field by field, the
QR code decoded back from the rendered PDF (pypdfium2 + zxing-cpp), amounts in words, bad
amounts, the report's totals, and every route tried anonymously and with another user's ids."""
from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pypdfium2 as pdfium
import pytest
import zxingcpp
from openpyxl import load_workbook
from sqlalchemy import func, select

from app.models import AuditEvent, Invoice, Payment, PersonalAccount, Reading
from app.services import bill_data, bill_documents, payment_qr, payment_reports, russian
from app.services.supplier import REQUISITES, requisites

SHOTS = Path("/tmp/bill_shots")

SUPPLIER = {"name": "АО «НЭСК»", "inn": "2308000000", "kpp": "230801001",
            "bank_account": "40702810000000000000", "bic": "040300000",
            "corr_account": "30101810000000000000", "bank_name": "ДЕМО-БАНК",
            "phone": "8-800-600-02-20", "email": "contact@nesk.ru"}


def page_text(response) -> str:
    return response.get_data(as_text=True).replace("\u00a0", " ")


def pdf_pages(body: bytes, scale: float = 3):
    """Every page of a PDF as a PIL image."""
    doc = pdfium.PdfDocument(body)
    try:
        return [doc[i].render(scale=scale).to_pil() for i in range(len(doc))]
    finally:
        doc.close()


def decoded_qr(body: bytes) -> tuple[str, dict[str, str]]:
    """The one QR code in a PDF, decoded: its text and its requisites."""
    found = [r for image in pdf_pages(body) for r in zxingcpp.read_barcodes(image)
             if r.format == zxingcpp.BarcodeFormat.QRCode]
    assert len(found) == 1, f"expected one QR code, found {len(found)}"
    assert found[0].ec_level == "M"
    text = found[0].bytes.decode("utf-8")
    assert text == found[0].text
    return text, payment_qr.parse_payload(text)


def pdf_text(body: bytes) -> str:
    doc = pdfium.PdfDocument(body)
    try:
        text = " ".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    finally:
        doc.close()
    return " ".join(text.replace("\u00a0", " ").split())  # wrapped lines joined


@pytest.fixture
def billed(session, two_branches):
    """Krasnodar's October bill with a debt brought forward, a payment in October, and a
    previous reading, so every part of the bill has content."""
    krd, _nvr = two_branches
    invoice = session.get(Invoice, krd.ids["Invoice"])
    invoice.opening_balance = Decimal("1200.40")
    invoice.paid = Decimal("1000.00")
    invoice.amount_due = Decimal("935.40")
    invoice.issued_at = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc)
    session.add(Reading(meter_id=krd.ids["Meter"], period=dt.date(2026, 9, 1),
                        t1=Decimal("1134"), source="web"))
    session.add(Payment(account_id=krd.ids["PersonalAccount"], amount=Decimal("1000.00"),
                        method="sbp", status="succeeded", external_id="oct-krd",
                        paid_at=dt.datetime(2026, 10, 14, 12, 30, tzinfo=dt.timezone.utc)))
    session.commit()
    return invoice


# The QR string ------------------------------------------------------------------------------


def test_payload_field_by_field():
    fields = {**payment_qr.payee_fields(SUPPLIER), "Sum": payment_qr.kopecks(Decimal("735.00")),
              "Purpose": "Оплата электроэнергии", "PersAcc": "230000000001",
              "PaymPeriod": "102026", "TechCode": "02"}
    payload = payment_qr.build_payload(fields)
    assert payload == (
        "ST00012|Name=АО «НЭСК»|PersonalAcc=40702810000000000000|BankName=ДЕМО-БАНК"
        "|BIC=040300000|CorrespAcc=30101810000000000000|PayeeINN=2308000000|KPP=230801001"
        "|Sum=73500|Purpose=Оплата электроэнергии|PersAcc=230000000001|PaymPeriod=102026"
        "|TechCode=02")
    parts = payload.split("|")
    assert parts[0] == "ST00012"
    assert [p.split("=")[0] for p in parts[1:6]] == list(payment_qr.MANDATORY)
    assert payment_qr.parse_payload(payload)["Sum"] == "73500"


def test_payload_writes_mandatory_fields_first_whatever_the_order_given():
    given = dict(reversed(list({**payment_qr.payee_fields(SUPPLIER), "Sum": "100"}.items())))
    keys = [p.split("=")[0] for p in payment_qr.build_payload(given).split("|")[1:]]
    assert keys[:5] == ["Name", "PersonalAcc", "BankName", "BIC", "CorrespAcc"]


@pytest.mark.parametrize("amount, kopecks", [("735.00", "73500"), ("0.01", "1"),
                                             ("1500.5", "150050"), ("1000000", "100000000")])
def test_sum_is_in_kopecks(amount, kopecks):
    assert payment_qr.kopecks(Decimal(amount)) == kopecks


@pytest.mark.parametrize("field, value, message", [
    ("Name", "Я" * 161, "длиннее 160"),
    ("BankName", "Б" * 46, "длиннее 45"),
    ("PersonalAcc", "4070281000000000000", "ровно 20 цифр"),
    ("BIC", "04030000", "ровно 9 цифр"),
    ("CorrespAcc", "3" * 21, "длиннее 20"),
    ("PayeeINN", "1234567890123", "длиннее 12"),
    ("KPP", "2308010010", "длиннее 9"),
    ("Sum", "735.00", "только цифры"),
    ("Purpose", "П" * 211, "длиннее 210"),
    ("PaymPeriod", "2026-10", "ММГГГГ"),
    ("QuittDate", "2026-11-02", "ДД.ММ.ГГГГ"),
])
def test_values_over_their_limits_are_refused_not_truncated(field, value, message):
    with pytest.raises(payment_qr.PaymentQrError, match=message):
        payment_qr.build_payload({**payment_qr.payee_fields(SUPPLIER), field: value})


def test_missing_mandatory_field_is_refused():
    fields = payment_qr.payee_fields(SUPPLIER)
    del fields["BIC"]
    with pytest.raises(payment_qr.PaymentQrError, match="BIC"):
        payment_qr.build_payload(fields)


def test_separator_inside_a_value_is_refused_or_avoided():
    fields = {**payment_qr.payee_fields(SUPPLIER), "Purpose": "Оплата | аванс"}
    with pytest.raises(payment_qr.PaymentQrError, match="разделитель"):
        payment_qr.build_payload(fields, separator="|")
    payload = payment_qr.build_payload(fields)
    assert payload.startswith("ST00012#") and "|Purpose" not in payload
    assert payment_qr.parse_payload(payload)["Purpose"] == "Оплата | аванс"


def test_qr_code_is_level_m_and_decodes_to_the_utf8_payload():
    payload = payment_qr.build_payload({**payment_qr.payee_fields(SUPPLIER), "Sum": "73500"})
    assert payment_qr.qr_code(payload).error == "M"
    from PIL import Image

    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(payment_qr.qr_png(payload))))
    assert [r.text for r in found] == [payload]


# Amounts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount, words", [
    ("735.00", "Семьсот тридцать пять рублей 00 копеек"),
    ("1.01", "Один рубль 01 копейка"),
    ("22.22", "Двадцать два рубля 22 копейки"),
    ("1234.56", "Одна тысяча двести тридцать четыре рубля 56 копеек"),
    ("111.11", "Сто одиннадцать рублей 11 копеек"),
    ("1000000.00", "Один миллион рублей 00 копеек"),
])
def test_amount_in_words(amount, words):
    assert russian.amount_in_words(Decimal(amount)) == words


@pytest.mark.parametrize("text, value", [("1500", "1500.00"), ("1 500,50", "1500.50"),
                                         ("0.01", "0.01"), ("999999.99", "999999.99"),
                                         (" 1000000 ", "1000000.00"), ("12,3", "12.30")])
def test_parse_amount_accepts_rubles_with_comma_or_dot(text, value):
    assert bill_documents.parse_amount(text) == Decimal(value)


BAD_AMOUNTS = {
    "": "Укажите сумму к оплате.",
    "0": "Сумма должна быть больше нуля.",
    "0,00": "Сумма должна быть больше нуля.",
    "-1": "Сумма должна быть больше нуля.",
    "1.234": "Копейки указываются не более чем двумя знаками после запятой.",
    "abc": "Сумма указывается числом в рублях, например 1500 или 1500,50.",
    "1e5": "Сумма указывается числом в рублях, например 1500 или 1500,50.",
    "1000000.01": "Сумма не может быть больше 1 000 000,00 руб.",
    "99999999999999999999": "Сумма не может быть больше 1 000 000,00 руб.",
}


@pytest.mark.parametrize("text, message", BAD_AMOUNTS.items())
def test_parse_amount_refuses_with_a_clear_message(text, message):
    with pytest.raises(bill_documents.AmountError) as error:
        bill_documents.parse_amount(text)
    assert str(error.value).replace("\u00a0", " ") == message


# The bill -----------------------------------------------------------------------------------


def test_bill_pdf_qr_code_carries_every_field(app, session, billed):
    account = billed.account
    body = bill_documents.bill_pdf(session, billed, app.config)
    assert body.startswith(b"%PDF")
    text, qr = decoded_qr(body)
    supplier = requisites(app.config)
    assert text.startswith("ST00012|Name=")
    assert qr == {
        "Name": supplier["name"],
        "PersonalAcc": supplier["bank_account"],
        "BankName": supplier["bank_name"],
        "BIC": supplier["bic"],
        "CorrespAcc": supplier["corr_account"],
        "PayeeINN": supplier["inn"],
        "KPP": supplier["kpp"],
        "Sum": "93540",
        "Purpose": "Оплата электроэнергии по л/с 230000000001 за октябрь 2026",
        "PersAcc": "230000000001",
        "PayerAddress": account.premises.address,
        "PaymPeriod": "102026",
        "CounterId": "SN-krd-1",
        "CounterVal": "1234",
        "QuittId": "INV-krd-202610",
        "QuittDate": "02.11.2026",
        "TechCode": "02",
    }
    assert int(qr["Sum"]) == int(billed.amount_due * 100)


def test_bill_pdf_reads_like_a_bill(app, session, billed):
    body = bill_documents.bill_pdf(session, billed, app.config)
    text = pdf_text(body).replace("\u00a0", " ")
    for expected in ("СЧЁТ № INV-krd-202610", "октябрь 2026", "ИНН 2308000000", "КПП 230801001",
                     "БИК 040300000", "Р/с 40702810000000000000", "230000000001",
                     "Иванов Краснодар", "Краснодар, ул. Красная, д. 1, кв. 1",
                     "Показания приборов учёта", "SN-krd-1", "1 134", "1 234",
                     "Начисления за октябрь 2026", "7,35", "735,00", "1 200,40", "1 000,00",
                     "СБП", "ИТОГО К ОПЛАТЕ", "935,40",
                     "Девятьсот тридцать пять рублей 40 копеек", "Сумма прописью",
                     "Оплата по QR-коду", "КВИТАНЦИЯ"):
        assert expected in text, expected


def test_bill_pages_rendered_to_png(app, session, billed):
    """Every page of one bill as PNG in /tmp/bill_shots, to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*_page_*.png"):
        old.unlink()
    pages = pdf_pages(bill_documents.bill_pdf(session, billed, app.config), scale=2)
    assert pages
    for number, image in enumerate(pages, start=1):
        assert image.size[0] > 1000
        image.save(SHOTS / f"bill_page_{number}.png")
    receipt = pdf_pages(bill_documents.receipt_pdf(session, billed.account, Decimal("1500.50"),
                                          app.config), scale=2)
    receipt[0].save(SHOTS / "receipt_page_1.png")


def test_bill_of_an_overpaid_account_has_no_sum_in_its_qr_code(app, session, billed):
    billed.amount_due = Decimal("-64.60")
    session.commit()
    body = bill_documents.bill_pdf(session, billed, app.config)
    _text, qr = decoded_qr(body)
    assert "Sum" not in qr and qr["PersAcc"] == "230000000001"
    assert "Переплата на конец периода" in pdf_text(body)


def test_bill_is_built_in_a_fixed_number_of_queries(app, session, billed):
    from sqlalchemy import event

    statements = []
    engine = session.get_bind()

    def count(*_args):
        statements.append(1)

    session.expire_all()
    invoice = session.get(Invoice, billed.id)
    _ = invoice.account.premises, invoice.account.tariff_group, invoice.account.branch
    event.listen(engine, "before_cursor_execute", count)
    try:
        bill_data.bill_data(session, invoice)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == 5


def test_receipt_pdf_qr_code_carries_the_chosen_sum(app, session, two_branches):
    krd, _nvr = two_branches
    account = session.get(PersonalAccount, krd.ids["PersonalAccount"])
    body = bill_documents.receipt_pdf(session, account, Decimal("1500.50"), app.config)
    _text, qr = decoded_qr(body)
    supplier = requisites(app.config)
    assert qr == {
        "Name": supplier["name"], "PersonalAcc": supplier["bank_account"],
        "BankName": supplier["bank_name"], "BIC": supplier["bic"],
        "CorrespAcc": supplier["corr_account"], "PayeeINN": supplier["inn"],
        "KPP": supplier["kpp"], "Sum": "150050",
        "Purpose": "Оплата электроэнергии по л/с 230000000001", "PersAcc": "230000000001",
        "PayerAddress": account.premises.address, "TechCode": "02",
    }
    text = pdf_text(body).replace("\u00a0", " ")
    assert "1 500,50 руб." in text and "Одна тысяча пятьсот рублей 50 копеек" in text


# The payment report -------------------------------------------------------------------------


def add_payments(session, account_id: int) -> None:
    """Payments around a March-May report: (amount, method, status, UTC time)."""
    utc = dt.timezone.utc
    rows = [
        ("100.10", "card", "succeeded", dt.datetime(2026, 3, 1, 9, tzinfo=utc)),
        ("250.25", "sbp", "succeeded", dt.datetime(2026, 5, 31, 20, 59, tzinfo=utc)),
        ("999.00", "card", "canceled", dt.datetime(2026, 4, 1, tzinfo=utc)),
        # 21:30 UTC on 31 May is 1 June in Moscow: outside a report to 31 May.
        ("77.00", "cash", "succeeded", dt.datetime(2026, 5, 31, 21, 30, tzinfo=utc)),
        ("10.00", "bank", "succeeded", dt.datetime(2026, 2, 28, 12, tzinfo=utc)),
    ]
    session.add_all([
        Payment(account_id=account_id, amount=Decimal(amount), method=method, status=status,
                external_id=f"r{n}", created_at=at, paid_at=at if status == "succeeded" else None)
        for n, (amount, method, status, at) in enumerate(rows, start=1)])
    session.commit()


def test_payment_report_rows_and_totals(session, two_branches):
    krd, nvr = two_branches
    add_payments(session, krd.ids["PersonalAccount"])
    session.add(Payment(account_id=nvr.ids["PersonalAccount"], amount=Decimal("5.00"),
                        method="card", status="succeeded", external_id="n1",
                        paid_at=dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc)))
    session.commit()
    account = session.get(PersonalAccount, krd.ids["PersonalAccount"])
    report = payment_reports.payment_report(session, account, dt.date(2026, 3, 1),
                                            dt.date(2026, 5, 31))
    assert [(r.at, r.method, r.amount) for r in report.rows] == [
        (dt.datetime(2026, 3, 1, 12, 0), "Банковская карта", Decimal("100.10")),
        (dt.datetime(2026, 5, 31, 23, 59), "СБП", Decimal("250.25")),
    ]
    assert report.total == sum(r.amount for r in report.rows) == Decimal("350.35")
    assert report.count == 2

    workbook = load_workbook(io.BytesIO(payment_reports.payment_report_xlsx(report)))
    sheet = workbook.active
    rows = [row for row in sheet.iter_rows(min_row=5, values_only=True)]
    data = [r for r in rows if isinstance(r[0], int)]
    total = next(r for r in rows if r[1] == "Итого")
    assert [(r[1], r[2], Decimal(str(r[3]))) for r in data] == [
        (dt.datetime(2026, 3, 1, 12, 0), "Банковская карта", Decimal("100.10")),
        (dt.datetime(2026, 5, 31, 23, 59), "СБП", Decimal("250.25")),
    ]
    assert Decimal(str(total[3])) == sum(Decimal(str(r[3])) for r in data) == report.total
    assert "230000000001" in sheet["A1"].value

    text = pdf_text(payment_reports.payment_report_pdf(report, requisites_config()))
    text = text.replace("\u00a0", " ")
    assert "ОТЧЁТ О ПЛАТЕЖАХ" in text and "350,35" in text and "СБП" in text


def requisites_config() -> dict:
    return {key: SUPPLIER[name] for name, key in REQUISITES.items()}


@pytest.mark.parametrize("date_from, date_to, message", [
    ("", "2026-01-01", "Укажите дату «с»."),
    ("2026-01-01", "вчера", "Дата «по» указывается в виде ДД.ММ.ГГГГ."),
    ("2026-05-01", "2026-04-01", "Дата «с» не может быть позже даты «по»."),
    ("2000-01-01", "2026-01-01", "Отчёт формируется не более чем за пять лет."),
])
def test_report_period_is_checked(date_from, date_to, message):
    with pytest.raises(payment_reports.PeriodError) as error:
        payment_reports.parse_period(date_from, date_to)
    assert str(error.value) == message


# Routes -------------------------------------------------------------------------------------


def test_account_page_lists_invoices_and_both_forms(client, owner):
    _user, krd, nvr = owner
    page = page_text(client.get(f"/cabinet/bills/{krd.ids['PersonalAccount']}"))
    assert "INV-krd-202610" in page and "INV-nvr-202610" not in page
    assert f"/cabinet/bills/invoice/{krd.ids['Invoice']}.pdf" in page
    assert "Скачать счёт (PDF)" in page
    assert "Квитанция на нужную сумму" in page and "Отчёт о платежах" in page
    assert f"/cabinet/bills/{krd.ids['PersonalAccount']}/receipt" in page
    home = page_text(client.get("/cabinet/"))
    assert f"/cabinet/bills/{krd.ids['PersonalAccount']}" in home
    invoices = page_text(client.get("/cabinet/invoices/list/"))
    assert f"/cabinet/bills/invoice/{krd.ids['Invoice']}.pdf" in invoices
    assert f"/cabinet/bills/invoice/{nvr.ids['Invoice']}.pdf" not in invoices


def test_bill_download_decodes_to_the_amount_due(client, session, owner):
    _user, krd, _nvr = owner
    response = client.get(f"/cabinet/bills/invoice/{krd.ids['Invoice']}.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    _text, qr = decoded_qr(response.data)
    invoice = session.get(Invoice, krd.ids["Invoice"])
    assert qr["Sum"] == str(int(invoice.amount_due * 100)) == "73500"
    assert qr["PersAcc"] == "230000000001" and qr["PaymPeriod"] == "102026"
    assert session.execute(select(func.count()).select_from(AuditEvent)
                           .where(AuditEvent.action == "export.pdf")).scalar_one() == 1


def test_receipt_for_a_chosen_amount(client, owner):
    _user, krd, _nvr = owner
    response = client.post(f"/cabinet/bills/{krd.ids['PersonalAccount']}/receipt",
                           data={"amount": "2 345,6"})
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    _text, qr = decoded_qr(response.data)
    assert qr["Sum"] == "234560" and qr["PersAcc"] == "230000000001"


@pytest.mark.parametrize("text, message", [("0", "Сумма должна быть больше нуля."),
                                           ("-1", "Сумма должна быть больше нуля."),
                                           ("1.234", "не более чем двумя знаками"),
                                           ("abc", "Сумма указывается числом"),
                                           ("100000000", "Сумма не может быть больше"),
                                           ("", "Укажите сумму к оплате.")])
def test_bad_amount_shows_the_page_with_the_reason_and_no_pdf(client, owner, text, message):
    _user, krd, _nvr = owner
    response = client.post(f"/cabinet/bills/{krd.ids['PersonalAccount']}/receipt",
                           data={"amount": text})
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert not response.data.startswith(b"%PDF")
    page = page_text(response)
    assert message in page and "Квитанция на нужную сумму" in page


@pytest.mark.parametrize("kind", ["xlsx", "pdf"])
def test_report_download(client, session, owner, kind):
    _user, krd, _nvr = owner
    add_payments(session, krd.ids["PersonalAccount"])
    response = client.get(f"/cabinet/bills/{krd.ids['PersonalAccount']}/report",
                          query_string={"from": "2026-03-01", "to": "31.05.2026",
                                        "format": kind})
    assert response.status_code == 200
    if kind == "xlsx":
        sheet = load_workbook(io.BytesIO(response.data)).active
        values = [r for r in sheet.iter_rows(min_row=5, values_only=True)]
        assert Decimal(str(next(r for r in values if r[1] == "Итого")[3])) == Decimal("350.35")
    else:
        assert response.mimetype == "application/pdf"
        assert "350,35" in pdf_text(response.data).replace("\u00a0", " ")


def test_bad_report_period_shows_the_page_with_the_reason(client, owner):
    _user, krd, _nvr = owner
    url = f"/cabinet/bills/{krd.ids['PersonalAccount']}/report"
    response = client.get(url, query_string={"from": "2026-05-01", "to": "2026-04-01",
                                             "format": "pdf"})
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "Дата «с» не может быть позже даты «по»." in page_text(response)
    response = client.get(url, query_string={"from": "2026-01-01", "to": "2026-02-01",
                                             "format": "doc"})
    assert response.status_code == 400
    assert "Выберите формат отчёта" in page_text(response)


def test_every_route_refuses_another_users_account_and_invoice(client, session, owner):
    _user, krd, nvr = owner
    other, other_invoice = nvr.ids["PersonalAccount"], nvr.ids["Invoice"]
    missing = 10 ** 6
    for url in (f"/cabinet/bills/{other}", f"/cabinet/bills/invoice/{other_invoice}.pdf",
                f"/cabinet/bills/{other}/report?from=2026-01-01&to=2026-12-31&format=xlsx",
                f"/cabinet/bills/{other}/report?from=2026-01-01&to=2026-12-31&format=pdf",
                f"/cabinet/bills/{missing}", f"/cabinet/bills/invoice/{missing}.pdf"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/cabinet/bills/{other}/receipt",
                       data={"amount": "100"}).status_code == 404
    assert client.post(f"/cabinet/bills/{other}/receipt",
                       data={"amount": "abc"}).status_code == 404
    assert session.execute(select(func.count()).select_from(AuditEvent)
                           .where(AuditEvent.action.like("export.%"))).scalar_one() == 0


def test_anonymous_visitors_are_sent_to_the_residents_sign_in(app, two_branches):
    client = app.test_client()
    krd, _nvr = two_branches
    account, invoice = krd.ids["PersonalAccount"], krd.ids["Invoice"]
    for method, url in (("get", f"/cabinet/bills/{account}"),
                        ("get", f"/cabinet/bills/invoice/{invoice}.pdf"),
                        ("post", f"/cabinet/bills/{account}/receipt"),
                        ("get", f"/cabinet/bills/{account}/report?from=2026-01-01"
                                "&to=2026-12-31&format=xlsx")):
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert "/auth/" in response.headers["Location"], url


def test_two_zone_meter_and_an_adjustment_on_the_bill(app, session, billed):
    from app.models import Charge, Meter

    account = billed.account
    meter = Meter(serial="SN-2Z", account_id=account.id, zones=2, digit_capacity=5)
    session.add(meter)
    session.flush()
    session.add_all([
        Reading(meter_id=meter.id, period=dt.date(2026, 9, 1), t1=Decimal("99950"),
                t2=Decimal("500"), source="web"),
        Reading(meter_id=meter.id, period=dt.date(2026, 10, 1), t1=Decimal("50"),
                t2=Decimal("560"), source="web"),
        Charge(account_id=account.id, period=billed.period, meter_id=meter.id, zone="T2",
               range_no=1, kwh=Decimal("60"), rate=Decimal("4.41"), amount=Decimal("264.60")),
        Charge(account_id=account.id, period=billed.period, kwh=Decimal("0"),
               amount=Decimal("-10.00"), kind="adjustment", note="перерасчёт за сентябрь"),
    ])
    session.commit()
    data = bill_data.bill_data(session, billed)
    assert [(r.meter, r.zone, r.kwh) for r in data.readings if r.meter == "SN-2Z"] == [
        ("SN-2Z", "День (T1)", Decimal("100")), ("SN-2Z", "Ночь (T2)", Decimal("60"))]
    assert data.counter is None  # two meters: no single CounterId/CounterVal
    text = pdf_text(bill_documents.bill_pdf(session, billed, app.config)).replace("\u00a0", " ")
    assert "Ночь (T2)" in text and "264,60" in text and "перерасчёт за сентябрь" in text
