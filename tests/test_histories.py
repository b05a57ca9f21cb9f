"""The resident's histories (app/views/resident.py): charges, bills, payments, readings and meters
as the cabinet's own pages. Rows read in Russian formats and plain words, a bill says whether it
is paid, the filters narrow to the user's own rows only, pages turn, and none of the back
office's grid furniture is left."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from app import models as m
from app.services import histories
from app.services.binding import bind_accounts
from tests.factories import PASSWORD

TODAY = dt.date(2026, 12, 5)
UTC = dt.timezone.utc
LISTS = ["/cabinet/charges/list/", "/cabinet/invoices/list/", "/cabinet/payments/list/",
         "/cabinet/readings-history/list/", "/cabinet/meters/list/"]


def page_text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True).replace("\u00a0", " ")


def without_nonces(html: str) -> str:
    """The page with its scripts' CSP nonces blanked: a random nonce may spell «fa-» or
    «jquery» by chance, and is no furniture."""
    return re.sub(r'nonce="[^"]*"', 'nonce=""', html)


def rows(html: str) -> list[str]:
    return re.findall(r'<li class="history-row">(.*?)\n</li>', html, re.S)


@pytest.fixture(autouse=True)
def today(monkeypatch):
    monkeypatch.setattr("app.views.formats.local_today", lambda: TODAY)


@pytest.fixture
def home(session, owner):
    """The owner's second account (in Krasnodar): a two-zone meter, a reading, two months of
    charges and three bills (one paid since, one overdue, one due); returns its ids."""
    user, krd, _nvr = owner
    premises = m.Premises(branch_id=krd.branch_id, locality="Краснодар", locality_type="urban",
                          street="ул. Садовая", house="7", flat="3")
    session.add(premises)
    session.flush()
    account = m.PersonalAccount(number="230000000777", holder_name="Иванов", status="active",
                                premises_id=premises.id, branch_id=krd.branch_id,
                                tariff_group_id=krd.ids["TariffGroup"],
                                opened_on=dt.date(2025, 3, 1))
    session.add(account)
    session.flush()
    meter = m.Meter(serial="SN-HOME-2", account_id=account.id, zones=2, digit_capacity=6,
                    verification_due=dt.date(2031, 6, 1))
    session.add(meter)
    session.flush()
    november, october = dt.date(2026, 11, 1), dt.date(2026, 10, 1)
    session.add_all([
        m.Reading(meter_id=meter.id, period=november, t1=Decimal("222.000"),
                  t2=Decimal("100.000"), source="web", status="flagged",
                  submitted_at=dt.datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
        m.Charge(account_id=account.id, period=november, meter_id=meter.id, zone="T1",
                 range_no=1, kwh=Decimal("222.000"), rate=Decimal("5.1500"),
                 amount=Decimal("1143.30"), kind="metered"),
        m.Charge(account_id=account.id, period=november, meter_id=meter.id, zone="T2",
                 range_no=2, kwh=Decimal("20.000"), rate=Decimal("4.5630"),
                 amount=Decimal("91.26"), kind="average"),
        m.Charge(account_id=account.id, period=october, kind="adjustment", kwh=Decimal("0"),
                 amount=Decimal("-50.00"), note="Перерасчёт за сентябрь"),
    ])
    issued = dt.datetime(2026, 10, 3, 8, 0, tzinfo=UTC)
    invoices = {
        "paid": m.Invoice(number="INV-HOME-2609", account_id=account.id,
                          period=dt.date(2026, 9, 1), amount_due=Decimal("300.00"),
                          charged=Decimal("300.00"), due_date=dt.date(2026, 10, 10),
                          issued_at=issued),
        "overdue": m.Invoice(number="INV-HOME-2610", account_id=account.id, period=october,
                             amount_due=Decimal("700.00"), charged=Decimal("400.00"),
                             opening_balance=Decimal("300.00"), due_date=dt.date(2026, 11, 10),
                             issued_at=dt.datetime(2026, 11, 3, 8, 0, tzinfo=UTC)),
        "due": m.Invoice(number="INV-HOME-2611", account_id=account.id, period=november,
                         amount_due=Decimal("1234.56"), charged=Decimal("1234.56"),
                         due_date=dt.date(2026, 12, 10),
                         issued_at=dt.datetime(2026, 12, 3, 8, 0, tzinfo=UTC)),
    }
    session.add_all(invoices.values())
    # Paid after the September bill was issued: it settles that bill, not the later ones.
    session.add(m.Payment(account_id=account.id, amount=Decimal("300.00"), method="sbp",
                          status="succeeded", external_id="ext-home-1",
                          created_at=dt.datetime(2026, 10, 20, 7, 0, tzinfo=UTC),
                          paid_at=dt.datetime(2026, 10, 20, 7, 1, tzinfo=UTC)))
    session.add(m.Payment(account_id=account.id, amount=Decimal("99.90"), method="card",
                          status="canceled", external_id="ext-home-2",
                          created_at=dt.datetime(2026, 11, 25, 7, 0, tzinfo=UTC)))
    session.commit()
    bind_accounts(session, user.id, [("230000000777", "SN-HOME-2")], None)
    return {"account": account.id, "meter": meter.id,
            **{key: invoice.id for key, invoice in invoices.items()}}


# Rows in plain words ------------------------------------------------------------------------


def invoice_rows(html: str) -> dict[int, str]:
    """The rows of a bills page by the id of the bill each downloads."""
    found = {}
    for row in rows(html):
        (invoice_id,) = re.findall(r'href="/cabinet/bills/invoice/(\d+)\.pdf"', row)
        found[int(invoice_id)] = row
    return found


def test_bills_show_amount_status_download_and_pay(client, owner, home):
    _user, krd, _nvr = owner
    page = page_text(client.get("/cabinet/invoices/list/"))
    found = invoice_rows(page)
    assert set(found) == {krd.ids["Invoice"], home["paid"], home["overdue"], home["due"]}
    assert [re.search(r'title"><a href="/cabinet/invoices/show/(\d+)">', row).group(1)
            for row in found.values()] == [str(i) for i in found], "each row opens its bill"
    due = found[home["due"]]
    assert "ноябрь 2026" in due and "1 234,56 ₽" in due and "Лицевой счёт 230000000777" in due
    assert '<span class="status status-warn">К оплате</span>' in due
    assert '<span class="history-sub">Оплатить до 10.12.2026</span>' in due
    assert f'href="/cabinet/pay/{home["account"]}"' in due and "Скачать PDF" in due
    assert '<span class="status status-bad">Просрочен</span>' in found[home["overdue"]]
    paid = found[home["paid"]]
    assert '<span class="status status-ok">Оплачен</span>' in paid
    assert "/cabinet/pay/" not in paid and "Оплатить" not in paid and "Скачать PDF" in paid


@pytest.mark.parametrize("amount, paid_since, day, words", [
    ("735.00", None, dt.date(2026, 11, 10), "К оплате"),
    ("735.00", None, dt.date(2026, 11, 11), "Просрочен"),
    ("735.00", "500.00", dt.date(2026, 11, 11), "Просрочен"),
    ("735.00", "735.00", dt.date(2026, 12, 31), "Оплачен"),
    ("0.00", None, dt.date(2026, 12, 31), "Оплачен"),
    ("-120.50", None, dt.date(2026, 11, 1), "Оплачен"),
])
def test_bill_status_by_amount_due_date_and_payments_since(amount, paid_since, day, words):
    state = histories.bill_status(Decimal(amount), dt.date(2026, 11, 10), day,
                                  Decimal(paid_since) if paid_since else None)
    assert state.label == words
    assert state.due == (words != "Оплачен")
    if paid_since and words != "Оплачен":
        assert state.outstanding == Decimal("235.00")


def test_a_partly_paid_bill_says_what_is_left(client, session, home):
    session.add(m.Payment(account_id=home["account"], amount=Decimal("234.56"), method="card",
                          status="succeeded", external_id="ext-home-3",
                          created_at=dt.datetime(2026, 12, 4, 7, 0, tzinfo=UTC),
                          paid_at=dt.datetime(2026, 12, 4, 7, 0, tzinfo=UTC)))
    session.commit()
    page = page_text(client.get(f"/cabinet/invoices/list/?account={home['account']}"))
    due = invoice_rows(page)[home["due"]]
    assert "Осталось оплатить 1 000,00 ₽, оплатить до 10.12.2026" in due
    assert "К оплате" in due


def test_charges_are_a_month_per_row_in_plain_words(client, home):
    page = page_text(client.get(f"/cabinet/charges/list/?account={home['account']}"))
    months = rows(page)
    assert len(months) == 2
    november, october = months
    assert '<span class="history-title">ноябрь 2026</span>' in november
    assert '<span class="history-amount">1 234,56 ₽</span>' in november
    assert "Лицевой счёт 230000000777 · 242 кВт·ч" in november
    assert "День, в пределах нормы</a>:\n      222 кВт·ч × 5,15 руб./кВт·ч = 1 143,30 ₽" in november
    assert "Ночь, сверх нормы</a>:\n      20 кВт·ч × 4,563 руб./кВт·ч = 91,26 ₽ (по среднему)" \
        in november
    assert "октябрь 2026" in october and "-50,00 ₽" in october
    assert "Корректировка</a>:\n      -50,00 ₽ · Перерасчёт за сентябрь" in october
    for jargon in ("T1", "T2", "Диапазон", "222,000", "5,1500", "Зона"):
        assert jargon not in page, jargon


def test_readings_say_zones_status_and_offer_to_pass_new_ones(client, home):
    page = page_text(client.get(f"/cabinet/readings-history/list/?account={home['account']}"))
    (reading,) = rows(page)
    assert "ноябрь 2026" in reading and "Счётчик № SN-HOME-2 · лицевой счёт 230000000777" in reading
    assert '<span class="history-register">День 222 кВт·ч</span>' in reading
    assert '<span class="history-register">Ночь 100 кВт·ч</span>' in reading
    assert '<span class="status status-warn">На проверке</span>' in reading
    assert "Передано 24.11.2026 12:30 (личный кабинет)" in reading
    assert f'href="/cabinet/readings/{home["account"]}"' in page and "Передать показания" in page
    everything = page_text(client.get("/cabinet/readings-history/list/"))
    assert 'href="/cabinet/"' in everything.split("Передать показания")[0].rsplit("<a", 1)[1], \
        "two accounts and none chosen: the reading form is picked on the home page"


def test_a_receipt_for_the_users_own_gateway_payments(client, session, owner, home):
    user, _krd, _nvr = owner
    for key, payer in (("order-own", user.id), ("order-other", None)):
        session.add(m.Payment(account_id=home["account"], amount=Decimal("1.00"), method="card",
                              status="succeeded", external_id=f"ext-{key}", order_key=key,
                              user_id=payer, created_at=dt.datetime(2026, 12, 1, tzinfo=UTC)))
    session.commit()
    page = page_text(client.get(f"/cabinet/payments/list/?account={home['account']}"))
    assert 'href="/cabinet/pay/receipt/order-own.pdf"' in page
    assert "order-other" not in page, "a payment made without signing in: no receipt here"
    assert '<ul class="history resident-history history-with-actions">' in page


def test_payments_and_meters_rows(client, home):
    page = page_text(client.get(f"/cabinet/payments/list/?account={home['account']}"))
    canceled, paid = rows(page)
    assert "25.11.2026 10:00" in canceled and "99,90 ₽" in canceled
    assert '<span class="status status-bad">Отменён</span>' in canceled
    assert "20.10.2026 10:01" in paid and "Лицевой счёт 230000000777 · СБП" in paid
    assert '<span class="status status-ok">Оплачен</span>' in paid
    assert "Квитанция об оплате" not in page and "history-with-actions" not in page

    meters = page_text(client.get(f"/cabinet/meters/list/?account={home['account']}"))
    (meter,) = rows(meters)
    assert "Счётчик № SN-HOME-2" in meter and "Двухтарифный (день и ночь)" in meter
    assert "Поверка до 01.06.2031" in meter and "Действует" in meter


# Filters --------------------------------------------------------------------------------------


def test_account_filter_narrows_to_one_of_the_users_accounts(client, owner, home):
    _user, krd, _nvr = owner
    everything = page_text(client.get("/cabinet/invoices/list/"))
    assert set(invoice_rows(everything)) == {krd.ids["Invoice"], home["paid"], home["overdue"],
                                             home["due"]}
    assert '<option value="">Все</option>' in everything
    assert f'<option value="{home["account"]}">230000000777</option>' in everything
    one = page_text(client.get(f"/cabinet/invoices/list/?account={krd.ids['PersonalAccount']}"))
    assert set(invoice_rows(one)) == {krd.ids["Invoice"]}
    assert (f'<option value="{krd.ids["PersonalAccount"]}" selected>230000000001</option>'
            in one)
    readings = page_text(client.get(
        f"/cabinet/readings-history/list/?account={krd.ids['PersonalAccount']}"))
    assert "SN-krd-1" in readings and "SN-HOME-2" not in readings


NEIGHBOURS = {"/cabinet/charges/": "Charge", "/cabinet/invoices/": "Invoice",
              "/cabinet/payments/": "Payment", "/cabinet/readings-history/": "Reading",
              "/cabinet/meters/": "Meter"}


@pytest.mark.parametrize("base, model", NEIGHBOURS.items())
def test_another_users_account_shows_nothing_of_theirs(client, owner, home, base, model):
    _user, _krd, nvr = owner
    page = page_text(client.get(f"{base}list/?account={nvr.ids['PersonalAccount']}"))
    assert "Такого лицевого счёта нет среди ваших: показаны все." in page
    assert "230000000002" not in page and "SN-nvr-2" not in page
    assert f'href="{base}show/{nvr.ids[model]}"' not in page
    assert f'value="{nvr.ids["PersonalAccount"]}"' not in page
    assert "230000000777" in page, "the user's own rows, as without the filter"


@pytest.mark.parametrize("query, message", [
    ("year=1999", "Период указан неверно: показаны все годы."),
    ("year=abc", "Период указан неверно: показаны все годы."),
    ("account=-1", "Такого лицевого счёта нет среди ваших: показаны все."),
    ("account=" + "9" * 40, "Такого лицевого счёта нет среди ваших: показаны все."),
    ("page=0", "Номер страницы указан неверно: показана первая."),
    ("page=" + "9" * 40, "Номер страницы указан неверно: показана первая."),
    ("page=7", "Страницы 7 нет: показана последняя."),
])
def test_bad_filter_values_are_named_and_ignored(client, home, query, message):
    for url in LISTS:
        page = page_text(client.get(f"{url}?{query}"))
        assert message in page, url
        assert "230000000777" in page, url


def test_year_filter(client, owner, home):
    _user, krd, _nvr = owner
    page = page_text(client.get("/cabinet/invoices/list/"))
    assert '<option value="2026">2026 год</option>' in page
    assert '<option value="2024">2024 год</option>' in page, "the oldest account opened in 2024"
    assert '<option value="2023">' not in page
    of_2025 = page_text(client.get("/cabinet/invoices/list/?year=2025"))
    assert invoice_rows(of_2025) == {} and "За выбранный период счетов нет." in of_2025
    assert '<option value="2025" selected>2025 год</option>' in of_2025
    of_2026 = page_text(client.get("/cabinet/invoices/list/?year=2026"))
    assert set(invoice_rows(of_2026)) == {krd.ids["Invoice"], home["paid"], home["overdue"],
                                          home["due"]}
    assert 'name="year"' not in page_text(client.get("/cabinet/meters/list/"))


def test_a_payment_counts_in_the_year_of_its_local_day(client, session, home):
    # 21:30 UTC on 31 December 2025 is 00:30 on 1 January 2026 in Moscow.
    session.add(m.Payment(account_id=home["account"], amount=Decimal("10.00"), method="cash",
                          status="succeeded", external_id="ext-new-year",
                          created_at=dt.datetime(2025, 12, 31, 21, 30, tzinfo=UTC)))
    session.commit()
    of_2026 = page_text(client.get(f"/cabinet/payments/list/?account={home['account']}&year=2026"))
    assert "01.01.2026 00:30" in of_2026 and len(rows(of_2026)) == 3
    of_2025 = page_text(client.get(f"/cabinet/payments/list/?account={home['account']}&year=2025"))
    assert "За выбранный период платежей нет." in of_2025 and rows(of_2025) == []


# Pages ------------------------------------------------------------------------------------------


def add_months(session, account_id: int, count: int) -> None:
    """``count`` months of bills and two charge lines each, back from August 2026."""
    for i in range(count):
        year, month = divmod(2026 * 12 + 7 - i, 12)
        period = dt.date(year, month + 1, 1)
        session.add(m.Invoice(number=f"INV-PAGE-{i:02d}", account_id=account_id, period=period,
                              amount_due=Decimal("10.00"), due_date=period))
        session.add_all([m.Charge(account_id=account_id, period=period, zone=zone, range_no=1,
                                  kwh=Decimal("1"), rate=Decimal("5"), amount=Decimal("5.00"))
                         for zone in ("T1", "T2")])
    session.commit()


def test_paging_by_twenty_rows_and_twenty_months(client, session, home):
    add_months(session, home["account"], 19)
    invoices = f"/cabinet/invoices/list/?account={home['account']}"
    first = page_text(client.get(invoices))
    assert len(rows(first)) == 20 and "Стр. 1 из 2" in first
    assert f'href="/cabinet/invoices/list/?account={home["account"]}&amp;page=2" rel="next"' \
        in first
    assert 'rel="prev"' not in first
    second = page_text(client.get(f"{invoices}&page=2"))
    assert len(rows(second)) == 2 and "Стр. 2 из 2" in second and 'rel="next"' not in second
    assert f'href="/cabinet/invoices/list/?account={home["account"]}" rel="prev"' in second
    assert len(invoice_rows(first) | invoice_rows(second)) == 22, \
        "every bill once, none lost between the pages"

    charges = f"/cabinet/charges/list/?account={home['account']}"
    months = rows(page_text(client.get(charges)))
    assert len(months) == 20 and "ноябрь 2026" in months[0]
    assert all(row.count("<li>") == 2 for row in months[2:]), "a month's lines stay together"
    last = page_text(client.get(f"{charges}&page=2"))
    assert "Стр. 2 из 2" in last and [re.search(r"title\">([^<]+)", r).group(1)
                                       for r in rows(last)] == ["февраль 2025"]


def test_one_page_has_no_pager(client, home):
    page = page_text(client.get("/cabinet/invoices/list/"))
    assert "Стр. 1" not in page and 'class="pager"' not in page


# The page itself ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", LISTS)
def test_no_admin_grid_furniture_and_one_heading(client, home, url):
    page = page_text(client.get(url))
    assert len(re.findall(r"<h1[\s>]", page)) == 1
    markup = without_nonces(page).lower()
    for furniture in ("Размер страницы", "Поиск", "Search", "fa-", "glyphicon", "bootstrap",
                      "jquery", "<table", "_flt_", "psize_", "Добавить фильтр"):
        assert furniture.lower() not in markup, furniture
    assert '<ul class="history resident-history' in page and 'class="filters"' in page
    assert '<label for="history-account">Лицевой счёт</label>' in page
    assert '<button type="submit" class="btn btn-default">Показать</button>' in page


@pytest.mark.parametrize("kind, url", [
    ("due", "/cabinet/invoices/show/{due}"),
    ("meter", "/cabinet/meters/show/{meter}"),
])
def test_record_pages_are_summaries(client, home, kind, url):
    page = page_text(client.get(url.format(**home)))
    assert len(re.findall(r"<h1[\s>]", page)) == 1
    assert '<dl class="summary">' in page and "К списку" in page
    assert "fa-" not in without_nonces(page) and "<table" not in page
    if kind == "due":
        assert "<h1>Счёт за ноябрь 2026</h1>" in page
        assert "<dt>К оплате</dt><dd>1 234,56 ₽</dd>" in page
        assert f'href="/cabinet/bills/invoice/{home["due"]}.pdf"' in page
        assert f'href="/cabinet/pay/{home["account"]}"' in page
    else:
        assert "<h1>Счётчик № SN-HOME-2</h1>" in page
        assert "<dt>Тарифность</dt><dd>Двухтарифный (день и ночь)</dd>" in page


def test_record_pages_of_every_history(client, session, home):
    charge = session.query(m.Charge).filter_by(account_id=home["account"], zone="T1").one()
    reading = session.query(m.Reading).filter_by(meter_id=home["meter"]).one()
    payment = session.query(m.Payment).filter_by(external_id="ext-home-1").one()
    page = page_text(client.get(f"/cabinet/charges/show/{charge.id}"))
    assert "<dt>Зона</dt><dd>День</dd>" in page and "<dt>Тариф</dt><dd>5,15 руб./кВт·ч</dd>" in page
    assert "<dt>Потребление</dt><dd>в пределах нормы</dd>" in page
    page = page_text(client.get(f"/cabinet/readings-history/show/{reading.id}"))
    assert "<dt>Ночь</dt><dd>100 кВт·ч</dd>" in page and "<h1>Показания за ноябрь 2026</h1>" in page
    page = page_text(client.get(f"/cabinet/payments/show/{payment.id}"))
    assert "<dt>Сумма</dt><dd>300,00 ₽</dd>" in page
    assert "<dt>Способ оплаты</dt><dd>СБП</dd>" in page
    for bad in ("abc", "9" * 30, "-1"):
        assert client.get(f"/cabinet/payments/show/{bad}").status_code == 404


def test_without_accounts_the_page_says_how_to_bind_one(client, make_user_fn, two_branches):
    make_user_fn("newcomer", "Resident", kind="resident")
    client.post("/auth/", data={"login": "newcomer", "password": PASSWORD})
    for url in LISTS:
        page = page_text(client.get(url))
        assert "когда вы привяжете лицевой счёт" in page and 'href="/cabinet/bind"' in page
        assert len(re.findall(r"<h1[\s>]", page)) == 1


@pytest.mark.browser
def test_on_a_phone_nothing_is_cut_off(browser, live_server, home, shots):
    """At 360 px the page is no wider than the screen and each row's amount and buttons are
    on it; at 1366 px a row is one line."""
    for width, height in ((360, 740), (1366, 900)):
        context = browser.new_context(base_url=live_server, locale="ru-RU",
                                      viewport={"width": width, "height": height})
        context.set_default_timeout(45_000)
        page = context.new_page()
        try:
            page.goto("/auth/")
            page.fill("input[name=login]", "owner")
            page.fill("input[name=password]", PASSWORD)
            with page.expect_navigation():
                page.locator("button[type=submit]").first.click()
            for url in LISTS:
                page.goto(url)
                assert page.evaluate("document.documentElement.scrollWidth") <= width, url
                for selector in (".history-amount", ".history-status", ".history-actions .btn"):
                    for box in (page.locator(selector).nth(i).bounding_box()
                                for i in range(page.locator(selector).count())):
                        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, \
                            (url, selector, box)
                shots(page, f"{width}-{url.split('/')[2]}")
            page.goto(f"/cabinet/invoices/show/{home['due']}")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            shots(page, f"{width}-invoice")
        finally:
            context.close()
