"""Demo data: reference data, ledgers that reconcile, charges that follow the tariffs, and demo
logins that work, are issued afresh on every run and are stored nowhere in clear."""
from __future__ import annotations

import datetime as dt
import random
import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from flask_appbuilder import Model
from sqlalchemy import String, Text, func, inspect, select

from app import models as m
from app.extensions import db
from app.services import demo, demo_logins, demo_reference
from app.services.tariffs import ChargeLine, price_consumption, split_by_ranges

D = Decimal
TODAY = dt.date(2026, 11, 25)
#: The months the command bills when run today: 12 ending with the last complete month.
LAST = demo.last_complete_month(dt.date.today())
FIRST = demo.add_months(LAST, -11)
BASELINE = demo.add_months(LAST, -12)
ACCOUNTS = 30
LOGINS = {"admin": "Admin", "operator": "Staff", "finance": "Finance", "resident": "Resident",
          "business": "Business"}


def money(value) -> Decimal:
    return D(value).quantize(D("0.01"), ROUND_HALF_UP)


# ---------------------------------------------------------------------------------------------
# Tariff arithmetic


@pytest.mark.parametrize("kwh, limits, parts", [
    (D("0"), (D("1100"), D("6000"), None), [D("0")]),
    (D("300"), (D("1100"), D("6000"), None), [D("300")]),
    (D("1100"), (D("1100"), D("6000"), None), [D("1100")]),
    (D("1100.5"), (D("1100"), D("6000"), None), [D("1100"), D("0.5")]),
    (D("7000"), (D("1100"), D("6000"), None), [D("1100"), D("4900"), D("1000")]),
    (D("7000"), (None,), [D("7000")]),
    (D("7000"), (D("1100"), D("6000")), [D("1100"), D("4900"), D("1000")]),
])
def test_split_by_ranges(kwh, limits, parts):
    assert split_by_ranges(kwh, limits) == parts


def test_split_by_ranges_refuses_negative():
    with pytest.raises(ValueError):
        split_by_ranges(D("-1"), (D("1100"), None))


URBAN_1 = {("T1", 1): D("7.35"), ("T1", 2): D("10.00"), ("T1", 3): D("14.64")}


def test_single_zone_within_range_1():
    assert price_consumption({"T1": D("250")}, (D("1100"), D("6000"), None), URBAN_1) == [
        ChargeLine("T1", 1, D("250"), D("7.35"), D("1837.50"))]


def test_single_zone_over_three_ranges():
    lines = price_consumption({"T1": D("7000")}, (D("1100"), D("6000"), None), URBAN_1)
    assert [(ln.range_no, ln.kwh, ln.amount) for ln in lines] == [
        (1, D("1100"), D("8085.00")), (2, D("4900"), D("49000.00")),
        (3, D("1000"), D("14640.00"))]


def test_amounts_round_half_up_once_per_line():
    lines = price_consumption({"T1": D("0.001")}, (None,), {("T1", 1): D("5.00")})
    assert lines[0].amount == D("0.01")  # 0.005 rounds up, not to even


def test_zero_consumption_has_no_lines():
    assert price_consumption({"T1": D("0"), "T2": D("0")}, (D("1100"), None), {}) == []


def test_zones_share_each_range_in_proportion():
    rates = {(z, r): D(rate) for (z, r), rate in {
        ("T1", 1): "7.35", ("T2", 1): "4.41", ("T1", 2): "10.00", ("T2", 2): "6.00"}.items()}
    lines = price_consumption({"T1": D("900"), "T2": D("600")}, (D("1100"), None), rates)
    cells = {(ln.zone, ln.range_no): ln.kwh for ln in lines}
    assert cells == {("T1", 1): D("660"), ("T2", 1): D("440"), ("T1", 2): D("240"),
                     ("T2", 2): D("160")}
    assert sum(ln.amount for ln in lines) == D("660") * D("7.35") + D("440") * D("4.41") + \
        D("240") * D("10.00") + D("160") * D("6.00")


def test_zone_and_range_sums_are_exact():
    rng = random.Random(7)
    rates = {(z, r): D("1.2345") for z in ("T1", "T2", "T3") for r in (1, 2, 3)}
    for _ in range(300):
        zones = {z: D(rng.randint(0, 4_000_000)) / 1000 for z in ("T1", "T2", "T3")[
            :rng.randint(1, 3)]}
        limits = (D(rng.randint(1, 3000)), D(rng.randint(3000, 6000)), None)
        lines = price_consumption(zones, limits, rates)
        for zone, kwh in zones.items():
            assert sum((ln.kwh for ln in lines if ln.zone == zone), D(0)) == kwh
        parts = split_by_ranges(sum(zones.values(), D(0)), limits)
        for range_no, part in enumerate(parts, start=1):
            assert sum((ln.kwh for ln in lines if ln.range_no == range_no), D(0)) == part
        for ln in lines:
            assert ln.kwh > 0 and ln.amount == money(ln.kwh * ln.rate)


def test_requisites_check_digits():
    assert demo_reference.is_valid_inn10("7707083893")  # a real, published INN
    assert not demo_reference.is_valid_inn10("7707083894")
    assert demo_reference.is_valid_ogrn("1027700132195")
    assert not demo_reference.is_valid_ogrn("1027700132196")
    assert demo_reference.luhn_digit("7992739871") == "3"


def test_account_numbers_are_unique_12_digits():
    numbers = {demo_reference.account_number(1 + seq % 11, seq, 12345) for seq in range(1, 200_001)}
    assert len(numbers) == 200_000
    assert all(len(n) == 12 and n.isdigit() and n.startswith("23") for n in numbers)


# ---------------------------------------------------------------------------------------------
# The seeded database


def parse_logins(output: str) -> dict[str, str]:
    """username -> password from the table the command prints (rows in DEMO_USERS order)."""
    labels = {label: username for username, _, label, _ in demo_logins.DEMO_USERS}
    found = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in labels and " " not in cells[2]:
            found[labels[cells[0]]] = cells[2]
    return found


@pytest.fixture
def seeded(app, runner):
    """The demo data for ACCOUNTS households, loaded by the command; the logins it printed."""
    result = runner.invoke(args=["demo", "seed", "--accounts", str(ACCOUNTS), "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert "Демо-данные загружены" in result.output
    logins = parse_logins(result.output)
    assert set(logins) == set(LOGINS)
    return logins


def test_branches_and_tariffs(seeded, session):
    branches = session.scalars(select(m.Branch)).all()
    assert sorted(b.name for b in branches) == sorted(b.name for b in demo_reference.BRANCHES)
    assert len(branches) == 11 and all(b.city and b.address and b.phone for b in branches)
    groups = {g.code: g.id for g in session.scalars(select(m.TariffGroup))}
    assert set(groups) == {"urban", "rural"}
    rates = {(t.tariff_group_id, t.zones, t.zone, t.range_no): t.rate
             for t in session.scalars(select(m.Tariff))}
    zone_sets = {1: ("T1",), 2: ("T1", "T2"), 3: ("T1", "T2", "T3")}
    assert set(rates) == {(g, zones, zone, r) for g in groups.values()
                          for zones, names in zone_sets.items() for zone in names
                          for r in (1, 2, 3)}
    urban, rural = groups["urban"], groups["rural"]
    assert [rates[(urban, 1, "T1", r)] for r in (1, 2, 3)] == [D("7.35"), D("10"), D("14.64")]
    assert [rates[(rural, 1, "T1", r)] for r in (1, 2, 3)] == [D("5.15"), D("7"), D("14.64")]
    assert rates[(urban, 2, "T2", 1)] == D("4.41") and rates[(urban, 3, "T1", 1)] == D("8.82")
    assert session.scalar(select(func.min(m.Tariff.effective_from))) == dt.date(2025, 7, 1)
    limits = defaultdict(dict)
    for r in session.scalars(select(m.ConsumptionRange)):
        limits[(r.tariff_group_id, r.season)][r.range_no] = r.upper_kwh
    assert len(limits) == 4
    for by_range in limits.values():
        assert by_range[1] <= D("1100") and by_range[2] == D("6000") and by_range[3] is None
    assert limits[(urban, "summer")][1] < limits[(urban, "heating")][1]


def _ledger(session):
    charges = defaultdict(lambda: defaultdict(Decimal))
    for account_id, period, amount in session.execute(
            select(m.Charge.account_id, m.Charge.period, m.Charge.amount)):
        charges[account_id][period] += amount
    payments = defaultdict(lambda: defaultdict(Decimal))
    for account_id, status, amount, paid_at in session.execute(
            select(m.Payment.account_id, m.Payment.status, m.Payment.amount,
                   m.Payment.paid_at)):
        if status == "succeeded":
            payments[account_id][paid_at.date().replace(day=1)] += amount
        else:
            assert paid_at is None
    invoices = defaultdict(list)
    for inv in session.scalars(select(m.Invoice).order_by(m.Invoice.account_id,
                                                          m.Invoice.period)):
        invoices[inv.account_id].append(inv)
    return charges, payments, invoices


def test_every_account_reconciles(seeded, session):
    charges, payments, invoices = _ledger(session)
    account_ids = set(session.scalars(select(m.PersonalAccount.id)))
    assert len(account_ids) > ACCOUNTS  # households and the organizations' points of supply
    assert set(invoices) == account_ids
    for account_id in account_ids:
        bills = invoices[account_id]
        assert [b.period for b in bills] == [demo.add_months(FIRST, k) for k in range(12)]
        previous_due = D("0.00")
        for bill in bills:
            assert money(bill.opening_balance) == money(previous_due)
            assert money(bill.charged) == money(charges[account_id][bill.period])
            assert money(bill.paid) == money(payments[account_id][bill.period])
            assert money(bill.amount_due) == money(
                bill.opening_balance + bill.charged - bill.paid)
            assert bill.due_date == demo.add_months(bill.period, 1).replace(day=10)
            previous_due = bill.amount_due
        total_charged = sum(charges[account_id].values(), D(0))
        total_paid = sum(payments[account_id].values(), D(0))
        assert money(total_charged - total_paid) == money(bills[-1].amount_due)
    numbers = session.scalars(select(m.Invoice.number)).all()
    assert len(numbers) == len(set(numbers))


def test_payers_differ(seeded, session):
    """Most accounts pay, some are in debt, some have paid in advance."""
    dues = session.scalars(select(m.Invoice.amount_due).where(
        m.Invoice.period == LAST)).all()
    charged = dict(session.execute(select(m.Invoice.account_id, m.Invoice.charged).where(
        m.Invoice.period == LAST)).all())
    paying = session.scalar(select(func.count(func.distinct(m.Payment.account_id))).where(
        m.Payment.status == "succeeded"))
    assert paying >= 0.8 * len(charged)
    overpaid = session.scalar(select(func.count(m.Invoice.id)).where(
        m.Invoice.paid > m.Invoice.opening_balance))
    assert overpaid  # overpayers pay round sums above the bill
    assert len(dues) == len(charged)
    debtors = session.execute(select(m.Invoice.account_id).where(
        m.Invoice.period == LAST,
        m.Invoice.amount_due > 2 * m.Invoice.charged + 1)).all()
    assert debtors


def _reading_series(session):
    series = defaultdict(list)
    for reading in session.scalars(select(m.Reading).order_by(m.Reading.meter_id,
                                                              m.Reading.period)):
        series[reading.meter_id].append(reading)
    return series


def test_readings_are_monotonic(seeded, session):
    meters = {mt.id: mt for mt in session.scalars(select(m.Meter))}
    series = _reading_series(session)
    assert set(series) == set(meters)
    for meter_id, readings in series.items():
        meter = meters[meter_id]
        assert readings[0].period == BASELINE  # the reading before the first bill
        assert readings[-1].period <= LAST
        assert 10 <= len(readings) <= 13
        for reg in ("t1", "t2", "t3")[:meter.zones]:
            values = [getattr(r, reg) for r in readings]
            assert all(v is not None for v in values)
            assert values == sorted(values)
            assert values[-1] < 10 ** meter.digit_capacity
        for reg in ("t2", "t3")[meter.zones - 1:]:
            assert all(getattr(r, reg) is None for r in readings)
    missing = sum(13 - len(r) for r in series.values())
    assert missing > 0  # some months are charged by average


def test_charges_follow_readings_and_tariffs(seeded, session):
    """Recompute every household's and point's charges from its readings, the Tariff and
    ConsumptionRange tables: kWh within range 1 at range 1's rate, the excess at range 2..."""
    rates = {(t.tariff_group_id, t.zones, t.zone, t.range_no): t.rate
             for t in session.scalars(select(m.Tariff))}
    limits = defaultdict(dict)
    for r in session.scalars(select(m.ConsumptionRange)):
        limits[(r.tariff_group_id, r.season)][r.range_no] = r.upper_kwh
    accounts = {a.id: a for a in session.scalars(select(m.PersonalAccount))}
    meters = {mt.account_id: mt for mt in session.scalars(select(m.Meter))}
    series = _reading_series(session)
    lines = defaultdict(list)
    for charge in session.scalars(select(m.Charge)):
        lines[(charge.account_id, charge.period)].append(charge)

    checked_ranges = set()
    for account_id, account in accounts.items():
        meter = meters[account_id]
        registers = ("t1", "t2", "t3")[:meter.zones]
        by_period = {r.period: r for r in series[meter.id]}
        last = by_period[BASELINE]
        averaged = [D(0)] * meter.zones
        for k in range(12):
            period = demo.add_months(FIRST, k)
            month = lines[(account_id, period)]
            reading = by_period.get(period)
            kinds = {c.kind for c in month}
            if reading is None:
                assert kinds == {"average"}
                per_zone = [sum((c.kwh for c in month if c.zone == z), D(0))
                            for z in ("T1", "T2", "T3")[:meter.zones]]
                averaged = [a + p for a, p in zip(averaged, per_zone)]
                continue
            assert kinds <= {"metered"}
            used = [getattr(reading, reg) - getattr(last, reg) - a
                    for reg, a in zip(registers, averaged)]
            last, averaged = reading, [D(0)] * meter.zones
            per_zone = {z: sum((c.kwh for c in month if c.zone == z), D(0))
                        for z in ("T1", "T2", "T3")[:meter.zones]}
            assert list(per_zone.values()) == used
            season = "heating" if period.month in (10, 11, 12, 1, 2, 3, 4) else "summer"
            bounds = limits[(account.tariff_group_id, season)]
            total = sum(used, D(0))
            for c in month:
                assert c.meter_id == meter.id
                assert c.rate == rates[(account.tariff_group_id, meter.zones, c.zone,
                                        c.range_no)]
                assert money(c.amount) == money(c.kwh * c.rate)
                checked_ranges.add(c.range_no)
            # the independent part: kWh per range from the total and the limits
            expected_parts, lower = {}, D(0)
            for range_no in (1, 2, 3):
                upper = None if account.large_family else bounds[range_no]
                part = (total if upper is None else min(total, upper)) - lower
                if part > 0:
                    expected_parts[range_no] = part
                if upper is None or total <= upper:
                    break
                lower = upper
            got_parts = defaultdict(Decimal)
            for c in month:
                got_parts[c.range_no] += c.kwh
            assert dict(got_parts) == expected_parts, (account.number, period)
            if meter.zones == 1:
                expected = sum((money(kwh * rates[(account.tariff_group_id, 1, "T1", r)])
                                for r, kwh in expected_parts.items()), D(0))
                assert sum(money(c.amount) for c in month) == expected
    assert {1, 2, 3} <= checked_ranges  # businesses and heavy users reach ranges 2 and 3


def test_customers_and_organizations(seeded, session):
    accounts = session.scalars(select(m.PersonalAccount)).all()
    numbers = [a.number for a in accounts]
    assert len(set(numbers)) == len(numbers)
    assert all(len(n) == 12 and n.isdigit() for n in numbers)
    assert all(demo_reference.luhn_digit(n[:-1]) == n[-1] for n in numbers)
    assert all(re.fullmatch(r"[А-ЯЁ][а-яё-]+ [А-ЯЁ][а-яё]+ [А-ЯЁ][а-яё]+", a.holder_name)
               for a in accounts if a.contract_id is None)
    meters = session.scalars(select(m.Meter)).all()
    assert sorted(mt.account_id for mt in meters) == sorted(a.id for a in accounts)
    assert len({mt.serial for mt in meters}) == len(meters)
    assert {mt.zones for mt in meters} == {1, 2, 3}
    assert all(5 <= mt.digit_capacity <= 8 and mt.verification_due for mt in meters)
    premises = session.scalars(select(m.Premises)).all()
    assert {p.locality_type for p in premises} == {"urban", "rural"}
    assert any(p.electric_stove for p in premises)
    groups = {g.id: g.code for g in session.scalars(select(m.TariffGroup))}
    by_id = {p.id: p for p in premises}
    for a in accounts:
        p = by_id[a.premises_id]
        assert p.branch_id == a.branch_id
        expected = "rural" if p.locality_type == "rural" or p.electric_stove else "urban"
        assert groups[a.tariff_group_id] == expected

    orgs = session.scalars(select(m.Organization)).all()
    assert len(orgs) == 50
    assert len({o.branch_id for o in orgs}) > 3
    for org in orgs:
        assert demo_reference.is_valid_inn10(org.inn) and org.inn.startswith("23")
        assert re.fullmatch(r"\d{9}", org.kpp) and demo_reference.is_valid_ogrn(org.ogrn)
        assert len(org.contracts) == 1 and org.contracts[0].status == "active"
        points = org.contracts[0].accounts
        assert 1 <= len(points) <= 4
        assert all(p.holder_name == org.name and p.branch_id == org.branch_id for p in points)


def _login(client, username, password):
    """Sign in at the user's own entrance: staff at FAB's /login/, the resident at /auth/ by
    phone, the organization at /business/login with its branch."""
    client.post("/logout/")
    user = db.session.scalar(select(m.PortalUser).where(m.PortalUser.username == username))
    if user.kind == "resident":
        response = client.post("/auth/", data={"method": "phone", "login": user.phone,
                                                "password": password})
    elif user.kind == "business":
        response = client.post("/business/login", data={
            "login": username, "password": password, "branch": user.branch_id})
    else:
        response = client.post("/login/", data={"username": username, "password": password})
    with client.session_transaction() as s:
        return response, s.get("_user_id")


def test_demo_users_sign_in(seeded, client, session):
    users = {u.username: u for u in session.scalars(select(m.PortalUser))}
    assert set(users) == set(LOGINS)
    for username, role in LOGINS.items():
        user = users[username]
        assert [r.name for r in user.roles] == [role]
        assert user.email and user.active
        response, user_id = _login(client, username, seeded[username])
        assert response.status_code == 302 and user_id.split(".")[0] == str(user.id), username
    _, user_id = _login(client, "admin", "wrong-" + seeded["admin"])
    assert user_id is None

    krd = session.scalar(select(m.Branch.id).where(m.Branch.code == "krd"))
    assert users["operator"].branch_id == krd and users["operator"].kind == "staff"
    resident = users["resident"]
    assert resident.kind == "resident" and re.fullmatch(r"\+79\d{9}", resident.phone)
    bound = session.scalars(select(m.AccountBinding.account_id).where(
        m.AccountBinding.user_id == resident.id)).all()
    assert len(bound) == 2
    holders = {session.get(m.PersonalAccount, a).holder_name for a in bound}
    assert len(holders) == 1
    assert holders.pop().startswith(f"{resident.last_name} {resident.first_name} ")
    business = users["business"]
    assert business.kind == "business" and business.organization_id
    assert business.branch_id == business.organization.branch_id


def _row_counts(session) -> dict[str, int]:
    return {t.name: session.scalar(select(func.count()).select_from(t))
            for t in Model.metadata.sorted_tables if t.name != "audit_event"}


def _all_text(session) -> str:
    """Every text value of every table, to look for passwords in clear."""
    chunks = []
    for table in Model.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, (String, Text))]
        if columns:
            for row in session.execute(select(*columns)):
                chunks.extend(str(v) for v in row if v is not None)
    return "\n".join(chunks)


def test_seed_again_loads_nothing_and_issues_new_passwords(seeded, runner, client, session):
    before = _row_counts(session)
    result = runner.invoke(args=["demo", "seed", "--accounts", "5"])
    assert result.exit_code == 0, result.output
    assert "уже загружены" in result.output and "Демо-данные загружены" not in result.output
    fresh = parse_logins(result.output)
    assert set(fresh) == set(LOGINS)
    session.expire_all()
    assert _row_counts(session) == before
    for username in LOGINS:
        assert fresh[username] != seeded[username]
        _, user_id = _login(client, username, seeded[username])
        assert user_id is None, username
        _, user_id = _login(client, username, fresh[username])
        assert user_id is not None, username

    stored = _all_text(session)
    for password in [*seeded.values(), *fresh.values()]:
        assert len(password) >= 16 and password not in stored
    events = session.scalars(select(m.AuditEvent.action)).all()
    assert events.count(demo.SEED_ACTION) == 1
    assert events.count("password.reset") == len(LOGINS)


def test_seed_function_loads_once(app, session):
    first = demo.seed(session, accounts=5, seed=11, organizations=2, today=TODAY)
    assert first.loaded and first.last_period == dt.date(2026, 10, 1)
    numbers = session.scalars(select(m.PersonalAccount.number).order_by(
        m.PersonalAccount.id)).all()
    again = demo.seed(session, accounts=5, seed=11, organizations=2, today=TODAY)
    assert not again.loaded and again.reason == "loaded"
    assert len(numbers) == session.scalar(select(func.count(m.PersonalAccount.id)))
    assert first.rows["invoice"] == len(numbers) * 12


def test_seed_refuses_a_database_with_other_accounts(app, session, two_branches):
    summary = demo.seed(session, accounts=5)
    assert not summary.loaded and summary.reason == "not_empty"
    with pytest.raises(demo.DemoError):
        demo_logins.issue_demo_logins(app.appbuilder, session)


def test_a_real_user_with_a_demo_name_is_left_alone(app, runner, session, make_user_fn):
    real = make_user_fn("admin", "Admin")
    hashed = real.password
    result = runner.invoke(args=["demo", "seed", "--accounts", "3"])
    assert result.exit_code == 0, result.output
    assert "не изменён" in result.output
    logins = parse_logins(result.output)
    assert "admin" not in logins and set(logins) == set(LOGINS) - {"admin"}
    session.expire_all()
    assert session.get(m.PortalUser, real.id).password == hashed


def _schema(session) -> dict:
    """Indexes and foreign keys of every table, as the database reports them."""
    inspector = inspect(session.get_bind())
    return {t: (sorted(i["name"] for i in inspector.get_indexes(t)),
                sorted(str(fk["referred_table"]) + str(fk["constrained_columns"])
                       for fk in inspector.get_foreign_keys(t)))
            for t in inspector.get_table_names()}


def test_a_failed_seed_leaves_nothing_behind(app, session, monkeypatch):
    """The load is one transaction: the dropped indexes and foreign keys come back too."""
    before = _schema(session)
    built = []
    real_build = demo.build_chunk

    def build_then_fail(ctx, customers):
        if built:
            raise RuntimeError("сбой посреди загрузки")
        built.append(len(customers))
        return real_build(ctx, customers)

    monkeypatch.setattr(demo, "build_chunk", build_then_fail)
    with pytest.raises(RuntimeError):
        demo.seed(session, accounts=20, chunk_size=10, organizations=2)
    assert built == [10]
    for model in (m.Branch, m.TariffGroup, m.Tariff, m.Organization, m.PersonalAccount,
                  m.Reading, m.Charge, m.Invoice, m.Payment):
        assert session.scalar(select(func.count()).select_from(model)) == 0, model
    assert not demo.demo_loaded(session)
    assert _schema(session) == before
    monkeypatch.undo()
    assert demo.seed(session, accounts=3, organizations=1).loaded


def test_on_postgresql_the_months_keep_their_indexes_and_are_complete(seeded, session):
    """The fast load drops the ledger's indexes and builds them again: on the partitioned
    ledger every month's table gets them back (not only the parent, invalid); and each seeded
    month is complete, its keys validated, as a month billed in service is."""
    from sqlalchemy import text

    from app.services import ledger_partitions

    connection = session.connection()
    if connection.dialect.name != "postgresql" or not ledger_partitions.partitioned(connection):
        pytest.skip("the ledger is partitioned on PostgreSQL only")
    months = session.scalars(select(m.Invoice.period).distinct()).all()
    assert len(months) >= 12
    for month in months:
        tables = [ledger_partitions.partition_name(t, month) for t in ("charge", "invoice")]
        indexed = connection.execute(text(
            "SELECT tablename, COUNT(*) FROM pg_indexes WHERE tablename = ANY(:t) "
            "GROUP BY tablename"), {"t": tables}).all()
        assert dict(indexed) == {tables[0]: 3, tables[1]: 4}, (month, indexed)
        assert ledger_partitions.is_checked(connection, month), month
    invalid = connection.execute(text(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE NOT i.indisvalid")).scalars().all()
    assert invalid == []
