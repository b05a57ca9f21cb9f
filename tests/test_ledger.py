"""An account's balance (app.services.ledger): which charges and payments count and when, and
that every page showing a balance, the acts and the billing run's invoices agree with it, the
invoices also after late changes that their carried opening must see."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from sqlalchemy import event, select

from app import models as m
from app.services import accounts, acts, billing, ledger
from app.services.periods import add_months

JUN, JUL, AUG, SEP, OCT = (dt.date(2026, month, 1) for month in (6, 7, 8, 9, 10))
MSK, UTC = "Europe/Moscow", "UTC"


def utc(month: int, day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=dt.timezone.utc)


def charge(session, account_id: int, period: dt.date, amount: str, kind: str = "metered"):
    session.add(m.Charge(account_id=account_id, period=period, amount=D(amount), kind=kind))


def pay(session, account_id: int, amount: str, paid_at: dt.datetime | None,
        status: str = "succeeded", created_at: dt.datetime | None = None) -> m.Payment:
    payment = m.Payment(account_id=account_id, amount=D(amount), method="bank", status=status,
                        paid_at=paid_at, created_at=created_at or paid_at or utc(6, 1))
    session.add(payment)
    return payment


def run(session, period: dt.date):
    return billing.run_period(session, period, norm_kwh=100, estimate_months=3, due_day=10,
                              today=dt.date(2026, 12, 28))


def invoice(session, account_id: int, period: dt.date) -> m.Invoice:
    return session.execute(select(m.Invoice).where(
        m.Invoice.account_id == account_id, m.Invoice.period == period)).scalar_one()


def balance(session, account_id: int, as_of: dt.date | None = None, tz: str = MSK) -> D:
    return ledger.balances(session, [account_id], as_of, tz)[account_id].balance


@pytest.fixture
def book(session, two_branches):
    """June and July of three accounts, nothing billed yet: a household with a correction,
    a refunded and a pending payment, and one paid at 01:30 on 1 August in Moscow (still July
    in UTC); an organization's point of supply that overpaid; another household that only owes.
    """
    krd, nvr = two_branches
    for table in (m.Invoice, m.Charge, m.Payment):
        session.execute(table.__table__.delete())
    home, shop = krd.ids["PersonalAccount"], krd.ids["OrganizationAccount"]
    away = nvr.ids["PersonalAccount"]
    charge(session, home, JUN, "500.00")
    charge(session, home, JUL, "610.25")
    charge(session, home, JUL, "-35.10", kind="adjustment")
    pay(session, home, "400.00", utc(7, 10))
    pay(session, home, "300.00", utc(7, 5), status="refunded")
    pay(session, home, "99.99", None, status="pending")
    pay(session, home, "150.00", utc(7, 31, 22, 30))
    charge(session, shop, JUL, "882.00")
    pay(session, shop, "1000.00", utc(7, 20))
    charge(session, away, JUL, "200.00")
    pay(session, away, "120.50", None, status="canceled")
    session.commit()
    return {"home": home, "shop": shop, "away": away, "idle": nvr.ids["OrganizationAccount"],
            "contract": krd.ids["Contract"], "organization": krd.ids["Organization"]}


def test_a_balance_counts_charges_by_period_and_succeeded_payments_by_day(session, book):
    home, shop, away, idle = book["home"], book["shop"], book["away"], book["idle"]
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(session.get_bind(), "before_cursor_execute", listener)
    try:
        now = ledger.balances(session, [home, shop, away, idle])
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", listener)
    assert len([s for s in statements if not s.startswith(("SAVEPOINT", "RELEASE"))]) == 1
    assert now == {home: ledger.Balance(D("1075.15"), D("550.00")),
                   shop: ledger.Balance(D("882.00"), D("1000.00")),
                   away: ledger.Balance(D("200.00"), D("0.00")),
                   idle: ledger.Balance(D("0.00"), D("0.00"))}
    assert [now[a].balance for a in (home, shop, away)] == [D("525.15"), D("-118.00"),
                                                            D("200.00")]
    # A month's charges count from the end of its last day; payments from their local day.
    assert balance(session, home, dt.date(2026, 6, 29)) == D("0.00")
    assert balance(session, home, dt.date(2026, 6, 30)) == D("500.00")
    assert balance(session, home, dt.date(2026, 7, 10)) == D("100.00")
    assert balance(session, home, dt.date(2026, 7, 31)) == D("675.15")
    assert balance(session, home, dt.date(2026, 7, 31), UTC) == D("525.15")
    assert balance(session, home, dt.date(2026, 8, 1)) == D("525.15")
    # A payment registered without the day it was paid counts from its registration.
    pay(session, away, "50.00", None, created_at=utc(7, 20))
    session.commit()
    assert balance(session, away, dt.date(2026, 7, 19)) == D("0.00")
    assert balance(session, away, dt.date(2026, 7, 31)) == D("150.00")
    assert balance(session, away) == D("150.00")
    assert ledger.balances(session, []) == {}


def test_the_cabinets_and_the_api_show_the_ledgers_balance(session, book):
    ids = [book["home"], book["shop"], book["away"], book["idle"]]
    expected = {a: b.balance for a, b in ledger.balances(session, ids).items()}
    assert {s.id: s.balance for s in accounts.summarize(session, ids)} == expected
    columns = accounts.summary_columns()
    api = dict(session.execute(select(m.PersonalAccount.id, columns[-1])
                               .where(m.PersonalAccount.id.in_(ids))).all())
    assert {a: D(v).quantize(D("0.01")) for a, v in api.items()} == expected
    business = accounts.organization_balances(session, book["organization"])
    assert {a: c - p for a, (c, p) in business.items()} == {book["shop"]: D("-118.00")}


def test_an_acts_opening_and_closing_are_the_ledgers(session, book):
    contract = book["contract"]
    start, end = dt.date(2026, 7, 25), dt.date(2026, 8, 10)
    act = acts.ledgers(session, [contract], start, end, MSK)[contract]
    opening = ledger.contract_balances(session, [contract], start - dt.timedelta(days=1), MSK)
    closing = ledger.contract_balances(session, [contract], end, MSK)
    assert act.opening == opening[contract] == D("-1000.00")
    assert act.opening + act.debit_total - act.credit_total == closing[contract] == D("-118.00")


def test_the_billing_runs_invoices_carry_the_ledgers_balance(session, book):
    """Every invoice's opening and amount due is the ledger's balance in the portal's local
    months, also after a payment dated in a billed month and a correction."""
    home, shop, away = book["home"], book["shop"], book["away"]
    run(session, AUG)
    pay(session, home, "250.00", utc(8, 31, 20))
    charge(session, shop, SEP, "-40.00", kind="adjustment")
    session.commit()
    run(session, SEP)
    for account in (home, shop, away, book["idle"]):
        august, september = invoice(session, account, AUG), invoice(session, account, SEP)
        assert august.opening_balance == balance(session, account, dt.date(2026, 7, 31), MSK)
        assert september.opening_balance == balance(session, account, dt.date(2026, 8, 31), MSK)
        due = september.opening_balance + september.charged - september.paid
        assert due == september.amount_due == balance(session, account, dt.date(2026, 9, 30),
                                                      MSK)
        assert due == balance(session, account)  # the cabinet's, nothing having come since
    assert invoice(session, home, AUG).opening_balance == D("675.15")  # 01:30 on 1 Aug, MSK
    assert invoice(session, home, SEP).paid == D("0.00")
    assert invoice(session, shop, SEP).charged < invoice(session, shop, AUG).charged


def _without_paid_at(session, book):
    pay(session, book["away"], "50.00", None, created_at=utc(8, 15))
    session.commit()
    run(session, AUG)
    return book["away"], AUG, MSK


def _october_after(session, change) -> None:
    """August and September billed, then ``change()``, then October."""
    run(session, AUG)
    run(session, SEP)
    change()
    session.commit()
    run(session, OCT)


def _paid_in_a_billed_month(session, book):
    _october_after(session, lambda: pay(session, book["home"], "70.00", utc(7, 15)))
    return book["home"], OCT, MSK


def _refunded_after_the_next_bill(session, book):
    paid = session.execute(select(m.Payment).where(
        m.Payment.account_id == book["shop"], m.Payment.status == "succeeded")).scalar_one()
    _october_after(session, lambda: setattr(paid, "status", "refunded"))
    return book["shop"], OCT, MSK


def _local_month(session, book):
    run(session, AUG)
    return book["home"], AUG, MSK


@pytest.mark.parametrize("case", [
    _without_paid_at, _paid_in_a_billed_month, _refunded_after_the_next_bill, _local_month])
def test_the_billing_run_agrees_with_the_ledger_after_late_changes(session, book, case):
    """A payment without a date, one registered after its month was billed, a refund after
    the next bill, a payment in the first hours of a local month: each invoice's opening and
    amount due are still the ledger's balances."""
    account, period, tz = case(session, book)
    bill = invoice(session, account, period)
    last_day = add_months(period, 1) - dt.timedelta(days=1)
    assert bill.opening_balance == balance(session, account, period - dt.timedelta(days=1), tz)
    assert bill.amount_due == balance(session, account, last_day, tz)
