"""The organization's pages and the resident's bills page as a person reads them: one <h1>
with the headings below it in order, amounts «… ₽», a data-label on every table cell (its
label when the row is a card on a phone), dates typed «01.11.2026» reading the same as the
ISO dates of older links, and a bad date refused in Russian with nothing changed. In
Chromium at 360 and 1366 px no page scrolls sideways and the amount and the main action are
on screen."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from app import models as m
from app.services import acts
from app.services.binding import bind_accounts
from tests import test_business as business
from tests.factories import PASSWORD

#: The organizations' data, signed-in client and pinned day of tests/test_business.py.
world, org_users, signed_in, today = (business.world, business.org_users, business.signed_in,
                                      business.today)
page_text = business.page_text

#: «1 234,56 ₽», «-99,70 ₽», with «Задолженность»/«Переплата» before it where a balance says so.
AMOUNT = re.compile(r"^(?:(?:Задолженность|Переплата) )?-?\d{1,3}(?:\u00a0\d{3})*,\d{2}\u00a0₽$"
                    r"|^Задолженности нет$")
#: An amount followed by the old «руб.» (a tariff's «руб./кВт·ч» is fine).
OLD_RUBLES = re.compile(r"\d[\s\u00a0]*руб\.(?!/)")
RUSSIAN_DATE_ERROR = "Дата «с» указывается в виде ДД.ММ.ГГГГ, например 05.12.2026."


class Page(HTMLParser):
    """What the checks read from a page: its headings in order, every <td>'s attributes,
    the text of every element of class «amount», and the inputs' values by name."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.headings: list[int] = []
        self.cells: list[dict] = []
        self.amounts: list[str] = []
        self.inputs: dict[str, str] = {}
        self._amount: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        elif tag == "td":
            self.cells.append(a)
        elif tag == "input" and a.get("name"):
            self.inputs[a["name"]] = a.get("value", "")
        if "amount" in a.get("class", "").split():
            self._amount = []

    def handle_data(self, data):
        if self._amount is not None:
            self._amount.append(data)

    def handle_endtag(self, tag):
        if self._amount is not None:
            self.amounts.append("".join(self._amount).strip())
            self._amount = None


def business_urls(krd) -> list[str]:
    account = krd.ids["OrganizationAccount"]
    return ["/business/", f"/business/account/{account}",
            f"/business/account/{krd.ids['Account2']}",
            "/business/payments?from=01.01.2026&to=31.12.2026", "/business/acts/",
            f"/business/readings/{account}", "/business/feedback"]


@pytest.fixture
def ready_act(session, signed_in):
    """Krasnodar's act made ready, so the acts table has its download buttons."""
    _mine, _other, krd, _nvr = signed_in
    return acts.decide(session, session.get(m.ReconciliationAct, krd.ids["ReconciliationAct"]),
                       None, "ready")


def rows(response) -> str:
    """The table's body, as shown."""
    return re.search(r"<tbody>.*</tbody>", response.get_data(as_text=True), re.S).group()


def count_acts(session) -> int:
    return session.scalar(select(func.count(m.ReconciliationAct.id)))


# Dates: «01.11.2026» as the inputs ask, ISO from older links


def test_a_russian_date_shows_the_same_payments_as_iso(client, signed_in, today):
    russian = client.get("/business/payments?from=01.11.2026&to=30.11.2026")
    iso = client.get("/business/payments?from=2026-11-01&to=2026-11-30")
    assert russian.status_code == iso.status_code == 200
    shown, linked = Page(russian.get_data(as_text=True)), Page(iso.get_data(as_text=True))
    assert rows(russian) == rows(iso) and shown.amounts == linked.amounts
    # 450.00 and 400.00 on 5 November; the pending 999.00 is not a payment yet
    assert sorted(shown.amounts) == ["400,00\u00a0₽", "450,00\u00a0₽", "850,00\u00a0₽",
                                     "850,00\u00a0₽"]
    # The old link's ISO dates come back the way people read them.
    assert (linked.inputs["from"], linked.inputs["to"]) == ("01.11.2026", "30.11.2026")
    december = page_text(client.get("/business/payments?from=01.12.2026&to=31.12.2026"))
    assert "За выбранный период платежей не поступало." in december


def test_the_payments_page_opens_on_russian_dates(client, signed_in, today):
    inputs = Page(client.get("/business/payments").get_data(as_text=True)).inputs
    assert (inputs["from"], inputs["to"]) == ("01.11.2025", "20.11.2026")


def test_a_russian_date_requests_the_same_act_as_iso(client, signed_in, session):
    _mine, _other, krd, _nvr = signed_in
    before = count_acts(session)
    done = client.post("/business/acts/request", data={
        "contract": krd.ids["Contract"], "date_from": "01.01.2026", "date_to": "31.10.2026"})
    assert done.status_code == 302
    act = session.execute(select(m.ReconciliationAct).order_by(m.ReconciliationAct.id.desc())
                          ).scalars().first()
    assert (act.contract_id, act.date_from.isoformat(), act.date_to.isoformat()) == (
        krd.ids["Contract"], "2026-01-01", "2026-10-31")
    # The same period in ISO is the same act: refused as already requested, nothing added.
    again = client.post("/business/acts/request", data={
        "contract": krd.ids["Contract"], "date_from": "2026-01-01", "date_to": "2026-10-31"})
    assert again.status_code == 400 and "за этот период уже запрошен" in page_text(again)
    assert count_acts(session) == before + 1


@pytest.mark.parametrize("date_from, date_to, message", [
    ("31.02.2026", "30.11.2026", RUSSIAN_DATE_ERROR),
    ("01/11/2026", "30.11.2026", RUSSIAN_DATE_ERROR),
    ("", "30.11.2026", "Укажите дату «с»."),
    ("01.11.2026", "завтра", "Дата «по» указывается в виде ДД.ММ.ГГГГ, например 05.12.2026."),
    ("30.11.2026", "01.11.2026", "Дата «с» не может быть позже даты «по»."),
])
def test_a_bad_period_of_payments_is_refused_in_russian(client, signed_in, today, date_from,
                                                        date_to, message):
    response = client.get("/business/payments", query_string={"from": date_from, "to": date_to})
    assert response.status_code == 400
    page = Page(response.get_data(as_text=True))
    assert message in page_text(response) and page.cells == []
    # What was typed stays in the field, to be corrected.
    assert (page.inputs["from"], page.inputs["to"]) == (date_from, date_to)


@pytest.mark.parametrize("date_from, date_to, message", [
    ("31.13.2026", "31.10.2026", "Дата начала периода указывается в виде ДД.ММ.ГГГГ, "
                                 "например 05.12.2026."),
    ("01.01.2026", "", "Укажите дату окончания периода."),
    ("01.01.2026", "2026/10/31", "Дата окончания периода указывается в виде ДД.ММ.ГГГГ, "
                                 "например 05.12.2026."),
])
def test_a_bad_date_of_an_act_is_refused_in_russian_and_nothing_saved(
        client, signed_in, session, date_from, date_to, message):
    _mine, _other, krd, _nvr = signed_in
    before = count_acts(session)
    response = client.post("/business/acts/request", data={
        "contract": krd.ids["Contract"], "date_from": date_from, "date_to": date_to})
    assert response.status_code == 400 and message in page_text(response)
    assert count_acts(session) == before
    inputs = Page(response.get_data(as_text=True)).inputs
    assert (inputs["date_from"], inputs["date_to"]) == (date_from, date_to)


def test_the_payment_report_reads_russian_dates_and_refuses_a_bad_one(client, owner, session):
    _user, krd, _nvr = owner
    url = f"/cabinet/bills/{krd.ids['PersonalAccount']}/report"
    audits = session.scalar(select(func.count(m.AuditEvent.id)))
    bad = client.get(url, query_string={"from": "32.01.2026", "to": "31.12.2026",
                                        "format": "xlsx"})
    assert bad.status_code == 400 and bad.mimetype == "text/html"
    assert RUSSIAN_DATE_ERROR in page_text(bad)
    assert session.scalar(select(func.count(m.AuditEvent.id))) == audits
    russian = client.get(url, query_string={"from": "01.01.2026", "to": "31.12.2026",
                                            "format": "xlsx"})
    iso = client.get(url, query_string={"from": "2026-01-01", "to": "2026-12-31",
                                        "format": "xlsx"})
    assert russian.status_code == iso.status_code == 200
    assert russian.headers["Content-Disposition"] == iso.headers["Content-Disposition"]
    assert "2026-01-01_2026-12-31" in russian.headers["Content-Disposition"]


# Markup: one <h1>, amounts in roubles, every cell labelled


def assert_reads_well(response, url: str) -> Page:
    assert response.status_code == 200, url
    page = Page(response.get_data(as_text=True))
    assert page.headings.count(1) == 1 and page.headings[0] == 1, (url, page.headings)
    assert all(b - a <= 1 for a, b in zip(page.headings, page.headings[1:])), (url, page.headings)
    assert all(cell.get("data-label") for cell in page.cells), (url, page.cells)
    assert all(AMOUNT.match(text) for text in page.amounts), (url, page.amounts)
    assert not OLD_RUBLES.search(page_text(response)), url
    return page


def test_each_business_page_has_one_h1_labelled_cells_and_amounts_in_roubles(
        client, signed_in, today, ready_act):
    _mine, _other, krd, _nvr = signed_in
    pages = {url: assert_reads_well(client.get(url), url) for url in business_urls(krd)}
    account = krd.ids["OrganizationAccount"]
    assert pages["/business/"].amounts[:2] == ["Задолженность 332,30\u00a0₽"] * 2
    assert "432,00\u00a0₽" in pages["/business/"].amounts
    assert "882,00\u00a0₽" in pages[f"/business/account/{account}"].amounts
    # The tables are there to be checked: rows of contracts, months, payments and acts.
    for url in business_urls(krd)[:5]:
        assert pages[url].cells, url
    labels = {cell["data-label"] for cell in pages["/business/acts/"].cells}
    assert {"Период", "Статус", "Файлы"} <= labels


def test_the_bills_page_has_one_h1_labelled_cells_and_amounts_in_roubles(client, owner):
    _user, krd, _nvr = owner
    url = f"/cabinet/bills/{krd.ids['PersonalAccount']}"
    page = assert_reads_well(client.get(url), url)
    assert page.amounts == ["735,00\u00a0₽"] and page.cells
    assert (page.inputs["from"], page.inputs["to"]) != ("", "")
    assert all(re.fullmatch(r"\d\d\.\d\d\.\d{4}", page.inputs[name]) for name in ("from", "to"))


def test_the_checks_catch_old_markup():
    """The markup checks are real: a second <h1>, a cell without a label and «руб.» fail."""
    old = ('<h1>Договоры</h1><h1>Ещё</h1><table><tr><td>1</td></tr></table>'
           '<span class="amount">135,30 руб.</span>')
    page = Page(old)
    assert page.headings.count(1) == 2 and not page.cells[0].get("data-label")
    assert not AMOUNT.match(page.amounts[0]) and OLD_RUBLES.search(old)


# In a browser: a phone and a desktop


SIZES = {"phone": {"width": 360, "height": 740}, "desktop": {"width": 1366, "height": 900}}
#: Per page: the selectors that must be wholly on screen (the amount, the main action).
MUST_SHOW = {
    "/business/": (".cell-lead .amount", "a.btn-primary[href*='/business/readings/']"),
    "account": (".cell-lead .amount", "a[href*='/business/invoice/']"),
    "/business/payments?from=01.01.2026&to=31.12.2026": (".cell-lead .amount", None),
    "/business/acts/": ("button[type=submit]", "a[href$='.pdf']"),
    "bills": (".cell-lead .amount", "a[href*='/cabinet/bills/invoice/']"),
}


def off_screen(page, selector: str, width: int) -> str | None:
    element = page.locator(selector).first
    if element.count() == 0 or not element.is_visible():
        return f"{selector}: not shown"
    box = element.bounding_box()
    if box["x"] < 0 or box["x"] + box["width"] > width + 0.5:
        return f"{selector}: at x {box['x']:.0f}–{box['x'] + box['width']:.0f} of {width}"
    return None


def problems_on(page, url: str, key: str, width: int) -> list[str]:
    page.goto(url)
    problems = []
    scroll = page.evaluate("document.documentElement.scrollWidth")
    if scroll > width:
        problems.append(f"{url}: {scroll} px wide at {width}")
    for selector in filter(None, MUST_SHOW.get(key, ())):
        wrong = off_screen(page, selector, width)
        if wrong:
            problems.append(f"{url}: {wrong}")
    return problems


@pytest.mark.browser
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_pages_fit_and_show_the_amount_and_the_main_action(browser, live_server, session,
                                                           org_users, make_user_fn, size):
    mine, _other, krd, _nvr = org_users
    acts.decide(session, session.get(m.ReconciliationAct, krd.ids["ReconciliationAct"]), None,
                "ready")
    resident = make_user_fn("bills-resident", "Resident", kind="resident")
    bind_accounts(session, resident.id, [("230000000001", "SN-KRD-1")], None)
    session.commit()
    context = browser.new_context(base_url=live_server, locale="ru-RU", viewport=size)
    context.set_default_timeout(45_000)
    page = context.new_page()
    problems = []
    try:
        page.goto("/business/login")
        page.fill("input[name=login]", mine.username)
        page.fill("input[name=password]", PASSWORD)
        page.select_option("select[name=branch]", value=str(krd.branch_id))
        with page.expect_navigation():
            page.locator("button[type=submit]").first.click()
        point = f"/business/account/{krd.ids['OrganizationAccount']}"
        for url in business_urls(krd):
            key = "account" if url == point else url
            problems += problems_on(page, url, key, size["width"])
        context.clear_cookies()
        page.goto("/auth/")
        page.fill("input[name=login]", resident.username)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.locator("button[type=submit]").first.click()
        problems += problems_on(page, f"/cabinet/bills/{krd.ids['PersonalAccount']}", "bills",
                                size["width"])
    finally:
        context.close()
    assert not problems, "\n".join(problems)
