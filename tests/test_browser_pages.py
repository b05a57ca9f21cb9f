"""Every public, resident and business page in headless Chromium on a phone (360×740) and a
desktop (1366×900), over the demo data (long addresses, a year of bills): the page never scrolls
sideways, axe-core finds no serious or critical WCAG 2.1 AA violation, and on the histories, the
home page and the pay page the amount and the main action are on screen, not cut off or hidden
in a scrolling table. A test per audience and width, so xdist spreads them."""
from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from app import models as m
from app.services import demo, demo_logins

pytestmark = pytest.mark.browser

SIZES = {"phone": {"width": 360, "height": 740}, "desktop": {"width": 1366, "height": 900}}
#: WCAG 2.1 A and AA rules of axe-core (best practices are advice, not the standard).
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
               "resultTypes": ["violations"]}
SEVERE = {"serious", "critical"}

PUBLIC = ["/", "/auth/", "/auth/register", "/auth/recover", "/auth/consent", "/business/login",
          "/feedback/", "/contacts/", "/readings/", "/pay/", "/no-such-page"]

#: (selector of the amount, selector of the main action) that must be fully on screen.
MUST_SHOW = {
    "/cabinet/": (".account-balance", ".account-pay"),
    "/cabinet/invoices/list/": (".history-amount", ".history-actions a"),
    "/cabinet/payments/list/": (".history-amount", None),
    "/cabinet/charges/list/": (".history-amount", None),
    "pay": (".pay-amount", "button[type=submit]"),
}


#: Controls a thumb must hit: at least 44 px high (WCAG 2.5.5; axe-core checks it only in 2.2).
TAP_TARGETS = """() => [...document.querySelectorAll(
    "a.btn, label.btn, button, .bottom-nav a, .bottom-nav summary, .tabs a, .site-action, "
    + "select, textarea, input:not([type=hidden]):not([type=checkbox]):not([type=radio])"
    + ":not(.file-picker-input)")]
  .filter(element => element.offsetParent !== null && !element.closest("[aria-hidden=true]"))
  .map(element => [element.tagName.toLowerCase() + " «" + element.textContent.trim().slice(0, 30)
                   + "»", Math.round(element.getBoundingClientRect().height)])
  .filter(([, height]) => height < 44)"""


@dataclass
class Demo:
    resident: demo_logins.DemoLogin
    business: demo_logins.DemoLogin
    branch: str
    accounts: list[int]
    invoice: int
    business_account: int
    account_number: str
    meter_serial: str


@pytest.fixture
def live_overrides():
    """Readings are taken every day, so the reading form is open whatever day the test runs."""
    return {"READING_WINDOW_FIRST_DAY": 1, "READING_WINDOW_LAST_DAY": 31}


@pytest.fixture
def demo_world(app, session) -> Demo:
    demo.seed(session, accounts=30, organizations=3)
    issued = demo_logins.issue_demo_logins(app.appbuilder, session)
    logins = {login.username: login for login in issued}
    session.commit()
    resident = session.scalar(select(m.PortalUser).where(m.PortalUser.username == "resident"))
    business = session.scalar(select(m.PortalUser).where(m.PortalUser.username == "business"))
    accounts = sorted(session.scalars(select(m.AccountBinding.account_id).where(
        m.AccountBinding.user_id == resident.id)))
    invoice = session.scalar(select(m.Invoice.id).where(m.Invoice.account_id == accounts[0])
                             .order_by(m.Invoice.period.desc()).limit(1))
    business_account = session.scalar(
        select(m.PersonalAccount.id)
        .join(m.Contract, m.PersonalAccount.contract_id == m.Contract.id)
        .where(m.Contract.organization_id == business.organization_id).limit(1))
    meter = session.scalar(select(m.Meter).where(m.Meter.account_id == accounts[0],
                                                 m.Meter.active.is_(True)).limit(1))
    return Demo(logins["resident"], logins["business"],
                session.get(m.Branch, business.branch_id).name, accounts, invoice,
                business_account, meter.account.number, meter.serial)


def resident_pages(world: Demo) -> list[str]:
    account = world.accounts[0]
    return ["/cabinet/", "/cabinet/bind", f"/cabinet/readings/{account}",
            f"/cabinet/pay/{account}", f"/cabinet/bills/{account}",
            f"/cabinet/consumption/{account}", "/cabinet/charges/list/",
            "/cabinet/invoices/list/", f"/cabinet/invoices/show/{world.invoice}",
            "/cabinet/payments/list/", "/cabinet/readings-history/list/",
            "/cabinet/meters/list/", "/cabinet/profile/", "/cabinet/profile/name",
            "/cabinet/profile/password", "/cabinet/profile/notifications",
            "/cabinet/profile/contact/email", "/cabinet/applications/",
            "/cabinet/applications/new", "/cabinet/feedback/"]


def business_pages(world: Demo) -> list[str]:
    account = world.business_account
    return ["/business/", f"/business/account/{account}", f"/business/readings/{account}",
            "/business/payments", "/business/acts/", "/business/feedback",
            "/business/sessions/"]


def sign_in_resident(page, world: Demo) -> None:
    page.goto("/auth/")
    page.fill("input[name=login]", world.resident.login)
    page.fill("input[name=password]", world.resident.password)
    with page.expect_navigation():
        page.locator("button[type=submit]").first.click()
    assert "/cabinet/" in page.url, page.url


def sign_in_business(page, world: Demo) -> None:
    page.goto("/business/login")
    page.fill("input[name=login]", world.business.login)
    page.fill("input[name=password]", world.business.password)
    page.select_option("select[name=branch]", label=world.branch)
    with page.expect_navigation():
        page.locator("button[type=submit]").first.click()
    assert "/business/" in page.url, page.url


def fully_on_screen(page, selector: str, width: int) -> str | None:
    """None when the first element matching ``selector`` is visible and lies within the
    viewport's width; otherwise what is wrong."""
    element = page.locator(selector).first
    if element.count() == 0:
        return f"{selector}: absent"
    if not element.is_visible():
        return f"{selector}: hidden"
    box = element.bounding_box()
    if box["x"] < 0 or box["x"] + box["width"] > width + 0.5:
        return f"{selector}: spans x {box['x']:.0f}–{box['x'] + box['width']:.0f} of {width}"
    return None


def problems_here(page, url: str, size: dict) -> list[str]:
    """What is wrong with the page now open: its width, the amount and main action off
    screen, and serious or critical axe-core violations."""
    from axe_playwright_python.sync_playwright import Axe

    problems = []
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    if scroll_width > size["width"]:
        problems.append(f"{url}: the page is {scroll_width} px wide at {size['width']}")
    key = "pay" if url.startswith("/cabinet/pay/") else url
    for selector in filter(None, MUST_SHOW.get(key, ())):
        wrong = fully_on_screen(page, selector, size["width"])
        if wrong:
            problems.append(f"{url}: {wrong}")
    for label, height in page.evaluate(TAP_TARGETS):
        problems.append(f"{url}: {label} is {height} px high, less than a thumb's 44")
    for violation in Axe().run(page, options=AXE_OPTIONS).response["violations"]:
        if violation["impact"] in SEVERE:
            targets = [" ".join(node["target"]) for node in violation["nodes"][:3]]
            problems.append(f"{url}: axe {violation['id']} ({violation['impact']}): "
                            f"{violation['help']} — {targets}")
    return problems


def check_pages(page, urls: list[str], size: dict, shots=None) -> list[str]:
    """Visit each page; return every problem found, so one run names them all."""
    problems = []
    for url in urls:
        response = page.goto(url)
        status = response.status if response else 0
        if status >= 500 or (status >= 400 and url != "/no-such-page"):
            problems.append(f"{url}: HTTP {status}")
            continue
        problems += problems_here(page, url, size)
        if shots is not None:
            shots(page, f"{size['width']}{url.replace('/', '_')}")
    return problems


def new_page(browser, live_server, size):
    context = browser.new_context(base_url=live_server, locale="ru-RU", viewport=size)
    context.set_default_timeout(45_000)
    return context, context.new_page()


def screenshots(request):
    return request.getfixturevalue("shots") if os.environ.get("SCREENSHOT_DIR") else None


def submit(page, fields: dict[str, str]) -> None:
    for name, value in fields.items():
        page.fill(f"[name={name}]", value)
    with page.expect_navigation():
        page.locator("main button[type=submit]").first.click()


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_public_pages_fit_and_pass_axe(browser, live_server, demo_world, size, request):
    """The public pages, and the later steps of passing readings and paying without signing
    in."""
    context, page = new_page(browser, live_server, size)
    try:
        problems = check_pages(page, PUBLIC, size, screenshots(request))
        page.goto("/readings/")
        submit(page, {"account": demo_world.account_number, "serial": demo_world.meter_serial})
        assert page.locator("form.readings-form").count() == 1, page.url
        problems += problems_here(page, "/readings/ (the form)", size)
        page.goto("/pay/")
        submit(page, {"account": demo_world.account_number, "amount": "1 234,56",
                      "contact": "payer@example.ru"})
        assert "1 234,56" in page.inner_text("main").replace("\xa0", " "), page.url
        problems += problems_here(page, "/pay/ (the check)", size)
    finally:
        context.close()
    assert not problems, "\n".join(problems)


AUDIENCES = {"resident": (sign_in_resident, resident_pages),
             "business": (sign_in_business, business_pages)}


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("audience", AUDIENCES)
def test_cabinet_pages_fit_and_pass_axe(browser, live_server, demo_world, audience, size,
                                        request):
    sign_in, pages = AUDIENCES[audience]
    context, page = new_page(browser, live_server, size)
    try:
        sign_in(page, demo_world)
        problems = check_pages(page, pages(demo_world), size, screenshots(request))
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def test_the_checks_catch_a_wide_page_an_unlabelled_control_and_a_tiny_button(browser,
                                                                                live_server):
    """The checks are real: a page made wider than the phone, with an input nobody labelled
    and a button too small for a thumb, is reported on all three counts."""
    size = SIZES["phone"]
    context, page = new_page(browser, live_server, size)
    try:
        page.goto("/contacts/")
        assert problems_here(page, "/contacts/", size) == []
        page.evaluate("""() => {
            document.querySelector("main").style.minWidth = "900px";
            document.querySelector("h1").after(document.createElement("input"));
            const tiny = document.createElement("button");
            tiny.textContent = "Ок";
            tiny.style.height = "20px";
            document.querySelector("h1").after(tiny);
        }""")
        problems = problems_here(page, "/contacts/", size)
    finally:
        context.close()
    assert any("px wide at 360" in problem for problem in problems), problems
    assert any("axe label (critical)" in problem for problem in problems), problems
    assert any("button «Ок» is 20 px high" in problem for problem in problems), problems
