"""The monthly billing run: metered, estimated and norm charges, ranges and zones priced as
app.services.tariffs prices them, rollovers, recalculation, invoices that reconcile, and
idempotence."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from app import models as m
from app.services import billing
from app.services.tariffs import price_consumption

NOV = dt.date(2026, 11, 1)
TODAY = dt.date(2026, 11, 29)


def run(session, period=NOV, **overrides):
    options = {"norm_kwh": 100, "estimate_months": 3, "due_day": 10, "today": TODAY}
    return billing.run_period(session, period, **{**options, **overrides})


def charges(session, account_id, period=NOV):
    return session.execute(
        select(m.Charge.zone, m.Charge.range_no, m.Charge.kwh, m.Charge.rate, m.Charge.amount,
               m.Charge.kind)
        .where(m.Charge.account_id == account_id, m.Charge.period == period)
        .order_by(m.Charge.range_no, m.Charge.zone)).all()


def invoice(session, account_id, period=NOV):
    return session.execute(select(m.Invoice).where(m.Invoice.account_id == account_id,
                                                   m.Invoice.period == period)).scalar_one()


def add_reading(session, meter_id, period, t1, t2=None, t3=None):
    session.add(m.Reading(meter_id=meter_id, period=period, t1=D(t1),
                          t2=D(t2) if t2 else None, t3=D(t3) if t3 else None, source="web"))
    session.commit()


@pytest.fixture
def world(session, two_branches):
    krd, nvr = two_branches
    session.execute(m.Payment.__table__.update().values(
        paid_at=dt.datetime(2026, 10, 15, 9, tzinfo=dt.timezone.utc)))
    session.commit()
    return krd, nvr


def test_metered_and_norm_charges_and_invoices_that_reconcile(session, world):
    krd, nvr = world
    add_reading(session, krd.ids["Meter"], NOV, "1334")
    result = run(session)
    assert (result.accounts, result.invoices) == (4, 4)  # households and points of supply
    assert charges(session, krd.ids["PersonalAccount"]) == [
        ("T1", 1, D("100.000"), D("7.3500"), D("735.00"), "metered")]
    assert charges(session, nvr.ids["PersonalAccount"]) == [
        ("T1", 1, D("100.000"), D("7.3500"), D("735.00"), "norm")]
    bill = invoice(session, krd.ids["PersonalAccount"])
    assert (bill.opening_balance, bill.charged, bill.paid, bill.amount_due) == (
        D("235.00"), D("735.00"), D("0.00"), D("970.00"))
    assert bill.due_date == dt.date(2026, 12, 10) and bill.number.startswith("202611-")
    for inv in session.execute(select(m.Invoice).where(m.Invoice.period == NOV)).scalars():
        assert inv.opening_balance + inv.charged - inv.paid == inv.amount_due


def test_accounts_without_a_meter_are_billed_by_the_norm(session, world):
    krd, nvr = world
    premises = m.Premises(branch_id=krd.branch_id, locality="Краснодар", street="ул. Мира",
                          house="7", residents=3)
    session.add(premises)
    session.flush()
    group = session.get(m.PersonalAccount, krd.ids["PersonalAccount"]).tariff_group_id
    meterless = m.PersonalAccount(number="230000000099", holder_name="Сидоров",
                                  premises_id=premises.id, branch_id=krd.branch_id,
                                  tariff_group_id=group, status="active",
                                  opened_on=dt.date(2025, 1, 1))
    session.add(meterless)
    session.get(m.Meter, nvr.ids["Meter"]).active = False  # removed: no meter any more
    session.commit()
    result = run(session, norm_kwh=120)
    assert (result.accounts, result.charges, result.invoices) == (5, 5, 5)
    for account_id in (meterless.id, nvr.ids["PersonalAccount"]):
        assert charges(session, account_id) == [
            ("T1", 1, D("120.000"), D("7.3500"), D("882.00"), "norm")]
        line = session.execute(select(m.Charge).where(m.Charge.account_id == account_id,
                                                      m.Charge.period == NOV)).scalar_one()
        assert (line.meter_id, line.note) == (None, "По нормативу: прибора учёта нет")
    bill = invoice(session, meterless.id)
    assert (bill.opening_balance, bill.charged, bill.paid, bill.amount_due) == (
        D("0.00"), D("882.00"), D("0.00"), D("882.00"))
    again = run(session, norm_kwh=120)
    assert (again.accounts, again.charges, again.invoices) == (0, 0, 0)


def test_a_norm_above_range_one_is_split_over_the_ranges(session, two_zone):
    krd, _rates = two_zone
    for group_id in set(session.scalars(select(m.PersonalAccount.tariff_group_id))):
        session.add(m.Tariff(tariff_group_id=group_id, zones=1, zone="T1", range_no=2,
                             rate=D("10.00"), effective_from=dt.date(2025, 7, 1)))
    session.get(m.Meter, krd.ids["Meter"]).active = False
    session.commit()
    run(session, norm_kwh=1500)
    assert charges(session, krd.ids["PersonalAccount"]) == [
        ("T1", 1, D("1100.000"), D("7.3500"), D("8085.00"), "norm"),
        ("T1", 2, D("400.000"), D("10.0000"), D("4000.00"), "norm")]


def test_a_second_run_changes_nothing(session, world):
    run(session)
    counts = [session.execute(select(func.count()).select_from(t)).scalar_one()
              for t in (m.Charge, m.Invoice)]
    again = run(session)
    assert (again.accounts, again.charges, again.invoices) == (0, 0, 0)
    assert [session.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (m.Charge, m.Invoice)] == counts


def test_future_periods_and_missing_tariffs_are_refused(session, world):
    krd, _nvr = world
    with pytest.raises(billing.BillingError, match="будущий период"):
        run(session, dt.date(2026, 12, 1))
    add_reading(session, krd.ids["Meter"], NOV, "3234")  # 2,000 kWh: range 2 has no tariff
    with pytest.raises(billing.BillingError, match="Нет тарифа"):
        run(session)
    assert session.execute(select(func.count()).select_from(m.Invoice)
                           .where(m.Invoice.period == NOV)).scalar_one() == 0


@pytest.fixture
def two_zone(session, world):
    """Krasnodar's meter made day/night, with zone rates for ranges 1-3 and limits 1100/6000."""
    krd, _nvr = world
    meter = session.get(m.Meter, krd.ids["Meter"])
    meter.zones = 2
    session.get(m.Reading, krd.ids["Reading"]).t2 = D("500")
    group = session.get(m.PersonalAccount, krd.ids["PersonalAccount"]).tariff_group_id
    rates = {("T1", 1): D("7.35"), ("T2", 1): D("4.41"), ("T1", 2): D("10.00"),
             ("T2", 2): D("6.00"), ("T1", 3): D("14.64"), ("T2", 3): D("8.78")}
    for (zone, range_no), rate in rates.items():
        session.add(m.Tariff(tariff_group_id=group, zones=2, zone=zone, range_no=range_no,
                             rate=rate, effective_from=dt.date(2025, 7, 1)))
    session.add(m.ConsumptionRange(tariff_group_id=group, season="heating", range_no=2,
                                   upper_kwh=D("6000"), effective_from=dt.date(2025, 7, 1)))
    session.commit()
    return krd, rates


@pytest.mark.parametrize("day, night", [("1333", "577"), ("5234", "2501"), ("8234", "833")])
def test_zones_and_ranges_are_priced_like_price_consumption(session, two_zone, day, night):
    krd, rates = two_zone
    add_reading(session, krd.ids["Meter"], NOV, day, night)
    run(session)
    used = {"T1": D(day) - D("1234"), "T2": D(night) - D("500")}
    expected = price_consumption(used, (D("1100"), D("6000"), None), rates)
    got = charges(session, krd.ids["PersonalAccount"])
    assert [(z, r, k, a) for z, r, k, _rate, a, _kind in got] == [
        (line.zone, line.range_no, line.kwh, line.amount)
        for line in sorted(expected, key=lambda x: (x.range_no, x.zone))]
    assert sum(k for _z, _r, k, *_ in got) == sum(used.values())


def test_an_account_with_two_meters_shares_the_ranges_over_all_their_registers(session,
                                                                              two_zone):
    """Ranges apply to the account's total: registers of both meters, in meter and zone
    order, share each range as price_consumption shares it."""
    krd, rates = two_zone
    account = krd.ids["PersonalAccount"]
    group = session.get(m.PersonalAccount, account).tariff_group_id
    second = m.Meter(serial="SN-krd-second", account_id=account, zones=1, digit_capacity=6)
    session.add(second)
    for range_no, rate in ((2, D("10.00")), (3, D("14.64"))):
        session.add(m.Tariff(tariff_group_id=group, zones=1, zone="T1", range_no=range_no,
                             rate=rate, effective_from=dt.date(2025, 7, 1)))
    session.commit()
    add_reading(session, second.id, dt.date(2026, 10, 1), "100")
    # 601 day, 302 night and 700: shares that round differently in another register order.
    add_reading(session, krd.ids["Meter"], NOV, "1835", "802")
    add_reading(session, second.id, NOV, "800")
    run(session)
    first = krd.ids["Meter"]
    used = {(first, "T1"): D("601"), (first, "T2"): D("302"), (second.id, "T1"): D("700")}
    key = {register: f"{register[0]:012d}{register[1]}" for register in used}
    prices = {(key[(first, z)], r): rate for (z, r), rate in rates.items()}
    prices.update({(key[(second.id, "T1")], r): rate
                   for r, rate in ((1, D("7.35")), (2, D("10.00")), (3, D("14.64")))})
    expected = price_consumption({key[r]: kwh for r, kwh in used.items()},
                                 (D("1100"), D("6000"), None), prices)
    got = session.execute(
        select(m.Charge.meter_id, m.Charge.zone, m.Charge.range_no, m.Charge.kwh,
               m.Charge.amount)
        .where(m.Charge.account_id == account, m.Charge.period == NOV)).all()
    by_key = {key[r]: r for r in used}
    assert sorted(got) == sorted(
        (*by_key[line.zone], line.range_no, line.kwh, line.amount) for line in expected)
    assert {line.range_no for line in expected} == {1, 2}
    for register, kwh in used.items():
        assert sum(k for meter, zone, _r, k, _a in got if (meter, zone) == register) == kwh


def test_the_latest_accepted_reading_of_a_month_counts(session, world):
    """Several readings of one month (from the cabinet and from staff): the latest accepted
    one is the month's reading, for the period billed and for the month before it."""
    krd, _nvr = world
    meter = krd.ids["Meter"]
    session.add(m.Reading(meter_id=meter, period=dt.date(2026, 10, 1), t1=D("1250"),
                          source="staff"))
    session.add(m.Reading(meter_id=meter, period=NOV, t1=D("1300"), source="web"))
    session.add(m.Reading(meter_id=meter, period=NOV, t1=D("1400"), source="app",
                          status="rejected"))
    session.add(m.Reading(meter_id=meter, period=NOV, t1=D("1340"), source="staff"))
    session.commit()
    run(session)
    assert charges(session, krd.ids["PersonalAccount"]) == [
        ("T1", 1, D("90.000"), D("7.3500"), D("661.50"), "metered")]


def test_large_families_pay_range_one_for_everything(session, two_zone):
    krd, rates = two_zone
    session.get(m.PersonalAccount, krd.ids["PersonalAccount"]).large_family = True
    session.commit()
    add_reading(session, krd.ids["Meter"], NOV, "5234", "2500")
    run(session)
    assert {(z, r) for z, r, *_ in charges(session, krd.ids["PersonalAccount"])} == {
        ("T1", 1), ("T2", 1)}


def test_a_rollover_counts_the_digits_the_counter_passed(session, world):
    krd, _nvr = world
    session.get(m.Meter, krd.ids["Meter"]).digit_capacity = 4
    session.get(m.Reading, krd.ids["Reading"]).t1 = D("9990")
    session.commit()
    add_reading(session, krd.ids["Meter"], NOV, "30")
    run(session)
    assert charges(session, krd.ids["PersonalAccount"])[0][2] == D("40.000")


def test_no_reading_average_then_norm_then_recalculation(session, world):
    krd, _nvr = world
    meter, account = krd.ids["Meter"], krd.ids["PersonalAccount"]
    session.execute(m.Invoice.__table__.delete())
    session.execute(m.Charge.__table__.delete())
    session.execute(m.Reading.__table__.delete())
    for month, value in ((4, "1000"), (5, "1090"), (6, "1180"), (7, "1270")):
        add_reading(session, meter, dt.date(2026, month, 1), value)
    kinds = []
    for month in (8, 9, 10, 11):
        run(session, dt.date(2026, month, 1))
        kinds.append(charges(session, account, dt.date(2026, month, 1)))
    assert [rows[0][5] for rows in kinds] == ["average", "average", "average", "norm"]
    assert [rows[0][2] for rows in kinds] == [D("90.000")] * 3 + [D("100.000")]
    add_reading(session, meter, dt.date(2026, 12, 1), "1700")
    run(session, dt.date(2026, 12, 1), today=dt.date(2026, 12, 26))
    # 430 kWh since July, 370 of them already charged as estimates.
    assert charges(session, account, dt.date(2026, 12, 1))[0][2] == D("60.000")
    bills = session.execute(select(m.Invoice).where(m.Invoice.account_id == account)
                            .order_by(m.Invoice.period)).scalars().all()
    for earlier, later in zip(bills, bills[1:], strict=False):
        assert later.opening_balance == earlier.amount_due - later.paid + later.paid
    assert sum(b.charged for b in bills) == session.execute(
        select(func.sum(m.Charge.amount)).where(m.Charge.account_id == account)).scalar_one()


def test_cli_runs_a_period(app, runner, session, world):
    out = runner.invoke(args=["billing", "run", "--period", "2026-11"])
    assert out.exit_code == 0, out.output
    assert "Период 11.2026: лицевых счетов 4, строк начислений 4, счетов 4." in out.output
    bad = runner.invoke(args=["billing", "run", "--period", "ноябрь"])
    assert bad.exit_code != 0 and "не распознан" in bad.output


@pytest.mark.committed  # a job writes its progress on a connection of its own
def test_finance_runs_a_period_from_the_back_office(client, session, login, make_user_fn,
                                                    world):
    """One job per branch, each with its progress and result, and the period's state."""
    names = sorted(session.execute(select(m.Branch.name)).scalars())
    make_user_fn("finance", "Finance")
    login("finance")
    page = client.get("/billingrunview/list/").get_data(as_text=True)
    assert "Расчёт периода" in page and "Расчётов ещё не было." in page
    refused = client.post("/billingrunview/add/", data={"period": "2027-05"},
                          follow_redirects=True).get_data(as_text=True)
    assert "Нельзя выставить счета за будущий период 05.2027." in refused
    assert session.execute(select(func.count()).select_from(m.BackgroundJob)).scalar_one() == 0
    done = client.post("/billingrunview/add/", data={"period": "2026-11"},
                       follow_redirects=True).get_data(as_text=True)
    assert "Расчёт за 11.2026: филиалов 2, готово 2." in done and "width:100%" in done
    assert "Период 11.2026:</strong>\n  рассчитаны все филиалы (2)." in done
    jobs = session.execute(select(m.BackgroundJob).order_by(m.BackgroundJob.title)).scalars()
    assert [(j.status, j.title) for j in jobs] == [
        ("done", f"Расчёт начислений за 11.2026: {name}") for name in names]
    assert all("счетов 2" in j.message for j in session.execute(
        select(m.BackgroundJob)).scalars())
    assert session.execute(select(func.count()).select_from(m.Invoice)
                           .where(m.Invoice.period == NOV)).scalar_one() == 4
    journal = client.get("/jobview/list/").get_data(as_text=True)
    assert f"Расчёт начислений за 11.2026: {names[0]}" in journal and "Готово" in journal


@pytest.mark.committed  # a job writes its progress on a connection of its own
def test_a_failed_branch_is_reported_changes_nothing_and_runs_again_alone(
        client, session, login, make_user_fn, world):
    krd, nvr = world
    add_reading(session, krd.ids["Meter"], NOV, "3234")  # 2,000 kWh: range 2 has no tariff
    make_user_fn("finance", "Finance")
    login("finance")
    page = client.post("/billingrunview/add/", data={"period": "2026-11"},
                       follow_redirects=True).get_data(as_text=True)
    assert "Расчёт за 11.2026: филиалов 2, готово 1, с ошибкой 1." in page
    assert "Нет тарифа" in page and "рассчитано филиалов: 1 из 2." in page
    failed = session.execute(select(m.BackgroundJob).where(
        m.BackgroundJob.status == "failed")).scalar_one()
    assert failed.finished_at is not None and str(krd.branch_id) in failed.params

    def billed(world_) -> int:
        return session.execute(select(func.count()).select_from(m.Invoice).join(
            m.PersonalAccount, m.PersonalAccount.id == m.Invoice.account_id).where(
            m.Invoice.period == NOV, m.PersonalAccount.branch_id == world_.branch_id)
        ).scalar_one()

    assert (billed(krd), billed(nvr)) == (0, 2)
    group = session.get(m.PersonalAccount, krd.ids["PersonalAccount"]).tariff_group_id
    session.add(m.Tariff(tariff_group_id=group, zones=1, zone="T1", range_no=2,
                         rate=D("10.0000"), effective_from=dt.date(2025, 7, 1)))
    session.commit()
    again = client.post("/billingrunview/add/", data={"period": "2026-11",
                                                      "branch": krd.branch_id},
                        follow_redirects=True).get_data(as_text=True)
    assert "Расчёт за 11.2026: филиалов 1, готово 1." in again
    assert "рассчитаны все филиалы (2)." in again
    assert (billed(krd), billed(nvr)) == (2, 2)


def test_staff_see_jobs_but_do_not_run_billing(client, login, make_user_fn, world):
    make_user_fn("operator", "Staff", branch_id=world[0].branch_id)
    login("operator")
    assert client.get("/jobview/list/").status_code == 200
    assert client.get("/billingrunview/list/").status_code in (302, 403)
    assert client.post("/billingrunview/add/", data={"period": "2026-11"}).status_code in (
        302, 403)


def test_overlapping_tariffs_are_refused_not_charged_twice(session, world):
    krd, _nvr = world
    group = session.get(m.PersonalAccount, krd.ids["PersonalAccount"]).tariff_group_id
    session.add(m.Tariff(tariff_group_id=group, zones=1, zone="T1", range_no=1,
                         rate=D("7.5000"), effective_from=dt.date(2026, 1, 1)))
    session.commit()
    add_reading(session, krd.ids["Meter"], NOV, "1334")
    with pytest.raises(billing.BillingError, match="пересекаются"):
        run(session)
    assert session.execute(select(func.count()).select_from(m.Charge)
                           .where(m.Charge.period == NOV)).scalar_one() == 0
