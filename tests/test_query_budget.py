"""Every page issues a bounded number of SQL statements whatever the number of accounts its
user holds: the resident cabinet, the organization's cabinet, the back office's lists and the
API, each opened by a user with one account and by one with twenty (each account with its
meter, readings, charges, invoices and payments). The statements are counted at the engine
(``before_cursor_execute``); the two counts must be equal and within the page's budget, so a
query inside a loop over rows fails here."""
from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from sqlalchemy import event

from app import models as m
from app.extensions import db
from app.views.access import ADMIN, ROLE_POLICY, STAFF
from tests.factories import PASSWORD, make_user
from tests.signins import session_user_id

#: The statements are counted on the measured app's own engine: its sessions must use it.
pytestmark = pytest.mark.committed

SMALL, LARGE = 1, 20
NUMBERS = itertools.count(700000000001)
MONTHS = [dt.date(2026, month, 1) for month in (8, 9, 10)]

#: Statements a page may issue, whatever the accounts. Every page reads the signed-in user
#: with roles (and an organization's user's organization) in one; the rest is the page's own.
RESIDENT_PAGES = {
    "/cabinet/": 4,  # accounts with balances and last bills, meters with readings, tariffs
    "/cabinet/bind": 1,
    "/cabinet/readings/{account}": 4,
    "/cabinet/bills/{account}": 3,
    "/cabinet/pay/{account}": 3,
    "/cabinet/consumption/{account}": 4,
    "/cabinet/charges/list/": 3,  # histories: the user's accounts (the filter's choices),
    "/cabinet/invoices/list/": 3,  # and a page of rows (or months) with their number
    "/cabinet/payments/list/": 3,
    "/cabinet/readings-history/list/": 3,
    "/cabinet/meters/list/": 3,
    "/cabinet/profile/": 2,  # the user's live sign-ins
    "/cabinet/applications/": 2,
    "/cabinet/feedback/": 3,
}
BUSINESS_PAGES = {
    "/business/": 4,
    "/business/account/{account}": 7,
    "/business/readings/{account}": 3,
    "/business/payments": 2,
    "/business/feedback": 3,
    "/business/acts/": 4,  # with ready acts, one more: the large ones' background files
    "/business/sessions/": 2,
}
API_PAGES = {
    "/api/v1/account/": 3,  # the page with its total, and the balances
    "/api/v1/account/{account}": 3,
    "/api/v1/contract/": 2,
    "/api/v1/charge/": 2,
    "/api/v1/invoice/": 2,
    "/api/v1/invoice/{invoice}": 2,
    "/api/v1/payment/": 2,
    "/api/v1/meter/": 2,
    "/api/v1/meter/{meter}": 2,
    "/api/v1/reading/": 2,
}
#: Back-office list pages: the user; for Admin (a database role) its permissions, read once;
#: the page of rows with the total and the relations the list shows (joined); and for each
#: relation of the search form its choices with their total.
STAFF_LIST_BUDGET = 7


class Counter:
    """The SQL statements an engine executes while ``counting`` is on."""

    def __init__(self):
        self.statements: list[str] = []
        self.counting = False

    def __call__(self, conn, cursor, statement, *args):
        if self.counting:
            self.statements.append(statement)

    def run(self, client, url: str, **kwargs) -> int:
        self.statements.clear()
        self.counting = True
        try:
            response = client.get(url, **kwargs)
        finally:
            self.counting = False
        assert response.status_code == 200, (url, response.status_code,
                                              response.get_data(as_text=True)[:500])
        return len(self.statements)


@pytest.fixture
def portal(app, make_app):
    """A second app over the test's database. Its requests each get a fresh app context, so a
    fresh session and ``g`` as under gunicorn (the ``app`` fixture keeps one context for the
    whole test, whose requests share the user and the identity map); yields (app, counter)."""
    measured = make_app()
    counter = Counter()
    with measured.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", counter)
    try:
        yield measured, counter
    finally:
        event.remove(engine, "before_cursor_execute", counter)


def add_accounts(session, world, count: int, prefix: str, contract_id: int | None = None):
    """``count`` accounts in the world's branch, each with a meter and three months of
    readings, charges, invoices and payments; returns them."""
    group = session.get(m.TariffGroup, world.ids["TariffGroup"])
    created = []
    for i in range(count):
        premises = m.Premises(branch_id=world.branch_id, locality="Краснодар",
                              locality_type="urban", street="ул. Северная", house=str(i + 1),
                              flat=prefix)
        session.add(premises)
        session.flush()
        account = m.PersonalAccount(
            number=str(next(NUMBERS)), holder_name=f"Абонент {i}",
            premises_id=premises.id, branch_id=world.branch_id, tariff_group_id=group.id,
            contract_id=contract_id, status="active", opened_on=dt.date(2024, 1, 1))
        session.add(account)
        session.flush()
        meter = m.Meter(serial=f"Q-{prefix}-{i}", account_id=account.id, zones=1,
                        digit_capacity=6)
        session.add(meter)
        session.flush()
        for k, period in enumerate(MONTHS):
            amount = Decimal("735.00") + k
            session.add_all([
                m.Reading(meter_id=meter.id, period=period, t1=Decimal(1000 + 100 * k),
                          source="web", status="accepted"),
                m.Charge(account_id=account.id, period=period, meter_id=meter.id, zone="T1",
                         range_no=1, kwh=Decimal("100"), rate=Decimal("7.35"), amount=amount,
                         kind="metered"),
                m.Invoice(number=f"Q-{prefix}-{i}-{k}", account_id=account.id, period=period,
                          opening_balance=Decimal("0"), charged=amount, paid=Decimal("0"),
                          amount_due=amount, due_date=period + dt.timedelta(days=40)),
                m.Payment(account_id=account.id, amount=amount, method="card",
                          status="succeeded", external_id=f"Q-{prefix}-{i}-{k}",
                          paid_at=dt.datetime(2026, period.month + 1, 5,
                                              tzinfo=dt.timezone.utc)),
            ])
        created.append(account)
    session.commit()
    return created


def resident(app, session, world, count: int):
    """A resident bound to ``count`` new accounts; returns (user, first account)."""
    user = make_user(session, app.appbuilder.sm, username=f"resident{count}", role="Resident",
                     kind="resident")
    created = add_accounts(session, world, count, f"r{count}")
    session.add_all([m.AccountBinding(user_id=user.id, account_id=a.id) for a in created])
    session.commit()
    return user, created[0]


def organization_user(app, session, world, count: int):
    """An organization's user whose one contract has ``count`` new accounts."""
    contract = m.Contract(number=f"Д-Q-{count}", organization_id=world.ids["Organization"],
                          branch_id=world.branch_id, signed_on=dt.date(2024, 1, 1),
                          valid_from=dt.date(2024, 1, 1), status="active")
    session.add(contract)
    session.flush()
    created = add_accounts(session, world, count, f"b{count}", contract_id=contract.id)
    organization = session.get(m.Organization, world.ids["Organization"])
    organization.id  # noqa: B018  (loaded before the user is made)
    user = make_user(session, app.appbuilder.sm, username=f"org{count}", role="Business",
                     kind="business", organization_id=organization.id)
    return user, created[0]


def signed_in(measured, user):
    client = measured.test_client()
    with client.session_transaction() as cookie:
        cookie["_user_id"] = session_user_id(user)
        cookie["_fresh"] = True
    return client


def token_for(client, username: str) -> dict:
    response = client.post("/api/v1/security/login",
                           json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def counts(counter, client, pages: dict[str, int], ids: dict[str, int], **kwargs):
    """Statements per page; each page is opened once before (whatever runs once per process,
    such as reading the tariffs' column types, is not the page's)."""
    found = {}
    for page in pages:
        url = page.format(**ids)
        counter.run(client, url, **kwargs)
        found[page] = counter.run(client, url, **kwargs)
    return found


def assert_bounded(small: dict[str, int], large: dict[str, int], budget: dict[str, int]):
    grows = {page: (small[page], large[page]) for page in small if large[page] != small[page]}
    assert not grows, f"statements grow with the accounts ({SMALL} -> {LARGE}): {grows}"
    over = {page: (large[page], budget[page]) for page in large if large[page] > budget[page]}
    assert not over, f"over budget (found, budget): {over}"


@pytest.fixture
def in_window(monkeypatch):
    """Readings are open (the readings form then shows every step's data)."""
    today = dt.date(2026, 11, 20)
    monkeypatch.setattr("app.views.formats.local_today", lambda: today)
    monkeypatch.setattr("app.views.readings.local_today", lambda: today)


def test_resident_cabinet_pages(app, session, two_branches, portal, in_window):
    measured, counter = portal
    krd, _nvr = two_branches
    found = []
    for count in (SMALL, LARGE):
        user, account = resident(app, session, krd, count)
        found.append(counts(counter, signed_in(measured, user), RESIDENT_PAGES,
                            {"account": account.id}))
    assert_bounded(*found, RESIDENT_PAGES)


def test_business_cabinet_pages(app, session, two_branches, portal, in_window):
    measured, counter = portal
    krd, _nvr = two_branches
    found = []
    for count in (SMALL, LARGE):
        user, account = organization_user(app, session, krd, count)
        found.append(counts(counter, signed_in(measured, user), BUSINESS_PAGES,
                            {"account": account.id}))
    assert_bounded(*found, BUSINESS_PAGES)


def test_api_reads(app, session, two_branches, portal):
    measured, counter = portal
    krd, _nvr = two_branches
    found = []
    for count in (SMALL, LARGE):
        user, account = resident(app, session, krd, count)
        client = measured.test_client()
        ids = {"account": account.id, "meter": account.meters[0].id,
               "invoice": session.query(m.Invoice.id).filter_by(account_id=account.id)
               .limit(1).scalar()}
        found.append(counts(counter, client, API_PAGES, ids,
                            headers=token_for(client, user.username)))
    assert_bounded(*found, API_PAGES)


def back_office_lists(measured, role: str) -> list[str]:
    """Every list page of the back office that ``role`` may open."""
    from flask import url_for

    from app.views import MENU

    if role == ADMIN:
        names = [view.__name__ for view, *_ in MENU] + ["SubscriberView"]
    else:
        names = ROLE_POLICY[role]["crud"] + ROLE_POLICY[role]["read"]
    with measured.test_request_context():
        return [url_for(f"{name}.list") for name in names
                if f"{name}.list" in measured.view_functions]


@pytest.mark.parametrize("role", [ADMIN, STAFF])
def test_back_office_lists(app, session, two_branches, portal, role):
    measured, counter = portal
    krd, _nvr = two_branches
    pages = dict.fromkeys(back_office_lists(measured, role), STAFF_LIST_BUDGET)
    assert len(pages) >= 20
    found = []
    for count in (SMALL, LARGE):
        resident(app, session, krd, count)
        organization_user(app, session, krd, count)
        user = make_user(session, app.appbuilder.sm, username=f"{role.lower()}{count}",
                         role=role, branch_id=krd.branch_id)
        found.append(counts(counter, signed_in(measured, user), pages, {}))
    assert_bounded(*found, pages)
