"""The billing run over a ledger with history: the periods it refuses (before the first billed
one, after a gap, the current month while readings are taken), and opening balances carried
from each account's last invoice that equal the whole history's sum, whatever came after it."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from app import models as m
from app.services import billing

AUG, SEP, OCT, NOV, DEC = (dt.date(2026, month, 1) for month in (8, 9, 10, 11, 12))


def run(session, period, today=dt.date(2026, 12, 28), **options):
    return billing.run_period(session, period, norm_kwh=100, estimate_months=3, due_day=10,
                              today=today, **options)


def utc(day: int, month: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=dt.timezone.utc)


def whole_history_opening(session, account_id: int, period: dt.date) -> D:
    """The definition: everything charged before the period minus everything paid before it."""
    charged = session.execute(select(func.coalesce(func.sum(m.Charge.amount), 0)).where(
        m.Charge.account_id == account_id, m.Charge.period < period)).scalar_one()
    start = dt.datetime.combine(period, dt.time(), dt.timezone.utc)
    paid = session.execute(select(func.coalesce(func.sum(m.Payment.amount), 0)).where(
        m.Payment.account_id == account_id, m.Payment.status == "succeeded",
        m.Payment.paid_at < start)).scalar_one()
    return D(charged) - D(paid)


def invoice(session, account_id, period):
    return session.execute(select(m.Invoice).where(
        m.Invoice.account_id == account_id, m.Invoice.period == period)).scalar_one()


def pay(session, account_id, amount, paid_at):
    session.add(m.Payment(account_id=account_id, amount=D(amount), method="card",
                          status="succeeded", paid_at=paid_at))
    session.commit()


@pytest.fixture
def fresh(session, two_branches):
    """Two branches' accounts with no ledger at all: nothing was ever billed."""
    for table in (m.Invoice, m.Charge, m.Payment):
        session.execute(table.__table__.delete())
    session.commit()
    return two_branches


def test_refused_periods_say_why_and_bill_nothing(session, two_branches):
    """The factories' ledger holds October's invoices."""
    with pytest.raises(billing.BillingError, match="раньше первого рассчитанного"):
        run(session, SEP)
    with pytest.raises(billing.BillingError, match="Сначала рассчитайте 11.2026"):
        run(session, DEC)
    with pytest.raises(billing.BillingError, match="принимаются до 25-го числа"):
        run(session, NOV, today=dt.date(2026, 11, 25))
    with pytest.raises(billing.BillingError, match="будущий период"):
        run(session, DEC, today=dt.date(2026, 11, 30))
    assert session.execute(select(func.count()).select_from(m.Invoice)
                           .where(m.Invoice.period != OCT)).scalar_one() == 0
    assert run(session, NOV, today=dt.date(2026, 11, 26)).invoices == 4


def test_the_current_month_early_only_with_a_reason_in_the_audit_journal(session,
                                                                         two_branches):
    with pytest.raises(billing.BillingError, match="укажите причину"):
        run(session, NOV, today=dt.date(2026, 11, 20), force_reason="   ")
    result = run(session, NOV, today=dt.date(2026, 11, 20),
                 force_reason="Закрытие года по приказу № 12")
    assert result.invoices == 4
    event = session.execute(select(m.AuditEvent).where(m.AuditEvent.action == "billing.run")
                            ).scalar_one()
    assert "Закрытие года по приказу № 12" in str(event.details)


def test_with_nothing_billed_any_past_period_may_start(session, fresh):
    assert run(session, AUG).invoices == 4
    with pytest.raises(billing.BillingError, match="раньше первого"):
        run(session, dt.date(2026, 7, 1))


def test_cli_and_back_office_refuse_a_gap(app, runner, client, login, make_user_fn, session,
                                          two_branches):
    out = runner.invoke(args=["billing", "run", "--period", "2026-12"])
    assert out.exit_code != 0 and "Сначала рассчитайте 11.2026" in out.output
    make_user_fn("finance", "Finance")
    login("finance")
    page = client.post("/billingrunview/add/", data={"period": "2026-12"},
                       follow_redirects=True).get_data(as_text=True)
    assert "Сначала рассчитайте 11.2026" in page
    assert session.execute(select(func.count()).select_from(m.BackgroundJob)).scalar_one() == 0
    assert session.execute(select(func.count()).select_from(m.Invoice)
                           .where(m.Invoice.period == DEC)).scalar_one() == 0


def test_openings_carried_from_the_last_invoice_equal_the_whole_history(session, fresh):
    krd, nvr = fresh
    home, shop = krd.ids["PersonalAccount"], krd.ids["OrganizationAccount"]
    away = nvr.ids["PersonalAccount"]
    pay(session, away, "300.00", utc(20, 7))  # before anything was ever billed
    run(session, AUG)
    # After August was issued: a payment dated in August, and a correction of August.
    pay(session, home, "250.00", utc(31, 8, 20))
    session.add(m.Charge(account_id=home, period=AUG, kind="adjustment", amount=D("-40.00"),
                         note="Перерасчёт"))
    # The shop closes for September: its next invoice carries from August, two months back.
    session.get(m.PersonalAccount, shop).status = "closed"
    session.commit()
    run(session, SEP)
    pay(session, shop, "120.50", utc(15, 9))
    pay(session, home, "99.99", utc(1, 10, 0))
    session.get(m.PersonalAccount, shop).status = "active"
    session.commit()
    run(session, OCT)
    for account in (home, shop, away):
        for period in (AUG, OCT):
            bill = invoice(session, account, period)
            assert bill.opening_balance == whole_history_opening(session, account, period)
            assert bill.amount_due == bill.opening_balance + bill.charged - bill.paid
    assert invoice(session, away, AUG).opening_balance == D("-300.00")
    assert invoice(session, home, SEP).opening_balance == (
        invoice(session, home, AUG).amount_due - D("250.00") - D("40.00"))
    assert invoice(session, home, OCT).paid == D("99.99")


def test_a_correction_goes_into_an_open_period_only(client, login, make_user_fn, session,
                                                    two_branches):
    """The account's October is billed: a correction dated October would never reach a bill."""
    krd, _nvr = two_branches
    account = krd.ids["PersonalAccount"]
    make_user_fn("finance", "Finance")
    login("finance")

    def add(period: str):
        return client.post("/chargeview/add", data={
            "account": account, "period": period, "kind": "adjustment", "amount": "-10.00",
            "kwh": "0", "note": "Перерасчёт по обращению"}, follow_redirects=True)

    def corrections() -> int:
        return session.execute(select(func.count()).select_from(m.Charge).where(
            m.Charge.account_id == account, m.Charge.kind == "adjustment")).scalar_one()

    refused = add("2026-10-01").get_data(as_text=True)
    assert "Счёт за 10.2026 уже выставлен: период закрыт." in refused
    assert corrections() == 0
    add("2026-11-01")
    assert corrections() == 1


@pytest.mark.parametrize("verified_until", [None, dt.date(2026, 8, 15)])
def test_after_the_verification_date_readings_stop_counting(session, fresh, verified_until):
    """Правила 354, п. 59-60: past its verification date a meter is billed by the average for
    three months, then by the norm, whatever it shows; a verified meter by its readings."""
    krd, _nvr = fresh
    meter = session.get(m.Meter, krd.ids["Meter"])
    meter.verification_due = verified_until
    session.execute(m.Reading.__table__.delete().where(m.Reading.meter_id == meter.id))
    for month in range(4, 13):
        session.add(m.Reading(meter_id=meter.id, period=dt.date(2026, month, 1),
                              t1=D(1000 + 100 * (month - 4)), source="web"))
    session.commit()
    kinds = []
    for period in (SEP, OCT, NOV, DEC):
        run(session, period)
        kinds.append(session.execute(select(m.Charge.kind, func.sum(m.Charge.kwh)).where(
            m.Charge.meter_id == meter.id, m.Charge.period == period)
            .group_by(m.Charge.kind)).one())
    if verified_until is None:
        assert kinds == [("metered", D("100.000"))] * 4
    else:
        # Average of the trusted months April..August, then the norm.
        assert kinds == [("average", D("100.000"))] * 3 + [("norm", D("100.000"))]
