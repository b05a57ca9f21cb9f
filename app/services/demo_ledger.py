"""The demo's generated rows: households and businesses with premises and meters, a year of
readings, the charges the tariffs give, bills and payments that reconcile, made in Python chunk
by chunk as uniform tuples for ``demo_bulk``."""
from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from itertools import accumulate

from faker import Faker

from app.services.demo_bulk import BulkWriter
from app.services.demo_reference import (
    BRANCHES,
    KOPECK,
    SERIAL_SPACE,
    SERIAL_STEP,
    account_number,
    inn10_check,
    landline,
    ogrn_check,
)
from app.services.ledger import SUCCEEDED
from app.services.periods import add_months
from app.services.phones import normalize_phone
from app.services.tariffs import HEATING_MONTHS, TariffBook, price_consumption

KWH = Decimal("0.001")
ZERO = Decimal("0")


PREMISES_COLUMNS = ("id", "branch_id", "locality", "locality_type", "street", "house", "flat",
                    "postcode", "electric_stove", "residents")
ACCOUNT_COLUMNS = ("id", "number", "holder_name", "premises_id", "branch_id", "tariff_group_id",
                   "contract_id", "status", "large_family", "opened_on")
METER_COLUMNS = ("id", "serial", "account_id", "model", "zones", "digit_capacity",
                 "installed_on", "verification_due", "active")
READING_COLUMNS = ("meter_id", "period", "t1", "t2", "t3", "source", "status", "submitted_at")
CHARGE_COLUMNS = ("account_id", "period", "meter_id", "zone", "range_no", "kwh", "rate",
                  "amount", "kind", "created_at")
INVOICE_COLUMNS = ("number", "account_id", "period", "opening_balance", "charged", "paid",
                   "amount_due", "due_date", "issued_at")
PAYMENT_COLUMNS = ("account_id", "amount", "method", "gateway", "external_id", "status",
                   "created_at", "paid_at", "updated_at")

#: Meter models by number of zones, with the interval between verifications in years.
METER_MODELS = {
    1: (("Меркурий 201.8", 16), ("Энергомера СЕ101", 16), ("Нева 103", 16),
        ("Милур 104", 16)),
    2: (("Меркурий 200.04", 16), ("Энергомера СЕ102М", 16), ("Нева МТ 114", 16)),
    3: (("Меркурий 231 AT", 10), ("Энергомера СЕ301", 10), ("Милур 307", 16)),
}
#: Share of each register in a zone meter's consumption (T1 takes the rest).
ZONE_SHARES = {1: (), 2: ((0.28, 0.42),), 3: ((0.25, 0.35), (0.35, 0.45))}  # T2, T3
#: Seasonal factor of household consumption by month (heating, and air conditioning in summer).
SEASONAL = {1: 1.30, 2: 1.25, 3: 1.10, 4: 0.95, 5: 0.85, 6: 1.00, 7: 1.20, 8: 1.20, 9: 0.90,
            10: 0.95, 11: 1.10, 12: 1.30}
RESIDENTS = (1, 1, 2, 2, 2, 3, 3, 4, 5)
DIGITS = (5,) * 10 + (6,) * 55 + (7,) * 25 + (8,) * 10  # digit capacity of meters, by share
READING_SOURCES = ("web", "web", "web", "web", "app", "app", "app", "staff", "controller")
#: Payer profiles of households and their shares (see _payment_amount); businesses are regular.
PAYER_PROFILES = {"regular": 0.70, "forgetful": 0.12, "debtor": 0.08, "overpayer": 0.07,
                  "silent": 0.03}
METHODS = ("card", "card", "card", "card", "sbp", "sbp", "sbp", "bank", "bank", "cash")
MONTHS = 12  # months of bills, ending with the last complete month
#: Months without a reading in a row at most: within ESTIMATE_BY_AVERAGE_MONTHS (3 or more),
#: so that every missing month is charged by average, never by the norm.
MAX_MISSING_IN_A_ROW = 3


def last_complete_month(today: dt.date) -> dt.date:
    """The first day of the month before ``today``'s."""
    return add_months(today.replace(day=1), -1)


@dataclass
class Customer:
    """What is decided about one account before its rows are made."""

    branch_no: int
    business: bool
    holder_name: str = ""
    contract_id: int | None = None


@dataclass
class Context:
    """Everything the generator needs that does not change from chunk to chunk."""

    rng: random.Random
    writer: BulkWriter
    calendar: Calendar  # the baseline month, then MONTHS billed months
    branch_ids: list[int]
    group_ids: dict[str, int]
    books: list[TariffBook]  # per billed month
    names: dict[str, list[str]]
    streets: list[str]
    number_offset: int
    serial_offset: int
    next_ids: dict[str, int]
    month_keys: list = field(default_factory=list)  # months with equal tariffs and season
    seq: int = 0
    price_cache: dict = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)


def _person_name(pick: Callable[[Sequence], object], names: dict[str, list[str]]) -> str:
    """Surname, first name and patronymic of one sex, from Faker's ru_RU lists."""
    sex = pick(("male", "female"))
    return " ".join((pick(names[f"last_{sex}"]), pick(names[f"first_{sex}"]),
                     pick(names[f"middle_{sex}"])))


def _priced(ctx: Context, month: int, group_id: int, zones: int, large_family: bool,
            kwh: tuple[Decimal, ...]) -> tuple[list[tuple], Decimal]:
    """Charge line fragments (zone, range, kWh, rate, amount) and their total. Single-zone
    results are memoized: most months of most accounts repeat a (tariffs, season, group, kWh)
    seen before."""
    key = (ctx.month_keys[month], group_id, large_family, kwh) if zones == 1 else None
    hit = ctx.price_cache.get(key) if key else None
    if hit is None:
        book = ctx.books[month - 1]
        period = ctx.calendar.periods[month]
        zone_names = ("T1", "T2", "T3")[:zones]
        lines = price_consumption(dict(zip(zone_names, kwh)),
                                  book.range_limits(group_id, period, large_family),
                                  book.rates[(group_id, zones)])
        hit = ([(ln.zone, ln.range_no, str(ln.kwh), str(ln.rate), str(ln.amount))
                for ln in lines], sum((ln.amount for ln in lines), ZERO))
        if key and len(ctx.price_cache) < 100_000:
            ctx.price_cache[key] = hit
    return hit


def _consumption_plan(rand: Callable[[], float], business: bool, electric: bool, heavy: bool,
                      periods: list[dt.date]) -> list[int]:
    """True monthly consumption (kWh) of the billed months: a base by kind of customer, the
    season, and noise. Households stay within 100-600 kWh, heavy users (electric heating) and
    businesses reach ranges 2 and 3."""
    if business:
        base = 900 + 4300 * rand() ** 1.5
    elif heavy:
        base = 700 + 450 * rand()
    else:  # median ~230 kWh
        base = min(max(math.exp(5.45 + 0.28 * _gauss(rand)) + (60 if electric else 0), 110), 470)
    plan = []
    for period in periods[1:]:
        seasonal = SEASONAL[period.month]
        if heavy and period.month in HEATING_MONTHS:
            seasonal *= 1.25
        value = base * seasonal * (0.88 + 0.24 * rand())
        if not business and not heavy:
            value = min(max(value, 100), 600)
        plan.append(int(round(value)))
    return plan


def _gauss(rand: Callable[[], float]) -> float:
    """A standard normal deviate (Box-Muller) from the same stream as everything else."""
    return math.sqrt(-2 * math.log(1 - rand())) * math.cos(2 * math.pi * rand())


@dataclass
class Calendar:
    """Wire strings of the dates and times the generator uses, made once."""

    periods: list[dt.date]
    period: list[str]
    yyyymm: list[str]
    issued_at: list[str]  # the bill of a month is issued on the 1st of the next, 03:00 UTC
    due: list[str]
    days: list[list[str]]  # days[i][d]: day d (1-28) of month i
    clock: list[str]  # clock[s]: the time part of a timestamp s seconds after midnight UTC

    @classmethod
    def make(cls, periods: list[dt.date], writer: BulkWriter, due_day: int) -> Calendar:
        nxt = [add_months(p, 1) for p in periods]
        clock = writer.clock()
        return cls(periods=periods, period=[p.isoformat() for p in periods],
                   yyyymm=[f"{p:%Y%m}" for p in periods],
                   issued_at=[d.isoformat() + clock[3 * 3600] for d in nxt],
                   due=[d.replace(day=due_day).isoformat() for d in nxt],
                   days=[[""] + [p.replace(day=d).isoformat() for d in range(1, 29)]
                         for p in periods],
                   clock=clock)


def build_chunk(ctx: Context, customers: list[Customer]) -> list[tuple[str, tuple, list]]:
    """The rows of a chunk of accounts, table by table in foreign-key order."""
    rand = ctx.rng.random
    cal = ctx.calendar
    true, false = ctx.writer.true, ctx.writer.false
    clock, days, period_str, issued_at = cal.clock, cal.days, cal.period, cal.issued_at
    baseline = cal.periods[0]
    today_ish = add_months(cal.periods[-1], 1)
    premises, accounts, meters, readings, charges, invoices, payments = ([] for _ in range(7))
    profiles, profile_weights = tuple(PAYER_PROFILES), tuple(accumulate(PAYER_PROFILES.values()))

    def ri(a: int, b: int) -> int:
        return a + int(rand() * (b - a + 1))

    def pick(seq):
        return seq[int(rand() * len(seq))]

    for cust in customers:
        ctx.seq += 1
        ids = ctx.next_ids
        pid, aid, mid = ids["premises"], ids["personal_account"], ids["meter"]
        ids["premises"], ids["personal_account"], ids["meter"] = pid + 1, aid + 1, mid + 1
        spec = BRANCHES[cust.branch_no - 1]
        branch_id = ctx.branch_ids[cust.branch_no - 1]
        business = cust.business

        # Premises and tariff group
        rural = rand() < (0.15 if business else 0.35)
        locality = pick(spec.villages) if rural else f"г. {spec.city}"
        if business or rural or rand() < 0.25:
            house, flat = str(ri(1, 180)), None
            electric = not business and rand() < (0.30 if rural else 0.05)
        else:
            house = str(ri(1, 250)) if rand() < 0.85 else f"{ri(1, 250)}/{ri(1, 9)}"
            flat, electric = str(ri(1, 320)), rand() < 0.20
        large_family = not business and rand() < 0.02
        residents = 0 if business else ri(5, 8) if large_family else pick(RESIDENTS)
        group_id = ctx.group_ids["rural" if rural or electric else "urban"]
        premises.append((pid, branch_id, locality, "rural" if rural else "urban",
                         pick(ctx.streets), house, flat, f"{spec.postcode + ri(0, 40):06d}",
                         true if electric else false, residents))

        number = account_number(cust.branch_no, ctx.seq, ctx.number_offset)
        opened = baseline - dt.timedelta(days=ri(30, 20 * 365))
        accounts.append((aid, number, cust.holder_name or _person_name(pick, ctx.names), pid,
                         branch_id, group_id, cust.contract_id, "active",
                         true if large_family else false, opened.isoformat()))

        # Meter
        r = rand()
        if business:
            zones = 1 if r < 0.6 else 2 if r < 0.85 else 3
        else:
            zones = 1 if r < 0.82 else 2 if r < 0.96 else 3
        model, interval = pick(METER_MODELS[zones])
        digits = pick(DIGITS)
        if business and digits < 6:
            digits = 6
        installed = today_ish - dt.timedelta(days=ri(200, 17 * 365))
        due_check = installed.replace(year=installed.year + interval, day=min(installed.day, 28))
        meters.append((mid, f"{(ctx.seq * SERIAL_STEP + ctx.serial_offset) % SERIAL_SPACE:08d}",
                       aid, model, zones, digits, installed.isoformat(), due_check.isoformat(),
                       true))

        # Readings: a baseline, then one a month with occasional gaps
        heavy = not business and rand() < 0.03
        plan = _consumption_plan(rand, business, electric, heavy, cal.periods)
        shares = [lo + (hi - lo) * rand() for lo, hi in ZONE_SHARES[zones]]
        headroom = sum(plan) * 2 + 10_000
        values = [ri(0, max(0, 10 ** digits - 1 - headroom)) for _ in range(zones)]
        present = [True] * 4 + [False] * (MONTHS - 3)
        run = 0
        for i in range(4, MONTHS + 1):
            present[i] = run >= MAX_MISSING_IN_A_ROW or rand() >= 0.04
            run = 0 if present[i] else run + 1

        history = {0: tuple(values)}  # month -> register values of accepted readings
        cumulative = values
        billed_since = [ZERO] * zones  # kWh charged by average since the last reading
        last = 0
        pad = (None,) * (3 - zones)
        readings.append((mid, period_str[0], *map(str, values), *pad, "controller", "accepted",
                         days[0][ri(15, 25)] + clock[ri(8, 20) * 3600]))
        if business:
            profile = "regular"
        else:
            r = rand()
            profile = next(p for p, edge in zip(profiles, profile_weights) if r < edge)
        early = profile in ("regular", "overpayer")
        opening = ZERO
        for i in range(1, MONTHS + 1):
            total = plan[i - 1]
            split = [int(round(total * share)) for share in shares]
            split.insert(0, total - sum(split))
            cumulative = [c + s for c, s in zip(cumulative, split)]
            if present[i]:
                base = history[last]
                billed = [Decimal(c - h) - b for c, h, b in zip(cumulative, base, billed_since)]
                if any(b < 0 for b in billed):  # the average overshot: the true use was higher
                    cumulative = [c + (int(-b) + 1 if b < 0 else 0)
                                  for c, b in zip(cumulative, billed)]
                    billed = [Decimal(c - h) - b
                              for c, h, b in zip(cumulative, base, billed_since)]
                history[i], last, billed_since = tuple(cumulative), i, [ZERO] * zones
                readings.append((mid, period_str[i], *map(str, cumulative), *pad,
                                 pick(READING_SOURCES), "accepted",
                                 days[i][ri(15, 25)] + clock[ri(7 * 3600, 22 * 3600)]))
                kind = "metered"
            else:
                billed = _average(history, last)
                billed_since = [s + b for s, b in zip(billed_since, billed)]
                kind = "average"
            lines, charged = _priced(ctx, i, group_id, zones, large_family, tuple(billed))
            for zone, range_no, kwh, rate, amount in lines:
                charges.append((aid, period_str[i], mid, zone, range_no, kwh, rate, amount,
                                kind, issued_at[i]))

            # A payment towards last month's bill, then this month's bill
            paid = ZERO
            if i > 1:
                method = "bank" if business else pick(METHODS)
                amount = _payment_amount(rand, profile, opening)
                if amount is not None:
                    at = days[i][ri(1, 10) if early else ri(1, 25)] + clock[
                        ri(6 * 3600, 23 * 3600)]
                    payments.append((aid, str(amount), method,
                                     None if method in ("bank", "cash") else "sandbox",
                                     f"demo-{aid:08d}-{cal.yyyymm[i]}", SUCCEEDED, at, at, at))
                    paid = amount
                if opening > 0 and method in ("card", "sbp") and rand() < 0.03:
                    at = days[i][ri(1, 25)] + clock[ri(6 * 3600, 23 * 3600)]
                    payments.append((aid, str(opening), method, "sandbox",
                                     f"demo-{aid:08d}-{cal.yyyymm[i]}-c", "canceled", at, None,
                                     at))
            due = opening + charged - paid
            invoices.append((f"{cal.yyyymm[i]}-{aid:08d}", aid, period_str[i], str(opening),
                             str(charged), str(paid), str(due), cal.due[i], issued_at[i]))
            opening = due

    tables = [
        ("premises", PREMISES_COLUMNS, premises),
        ("personal_account", ACCOUNT_COLUMNS, accounts),
        ("meter", METER_COLUMNS, meters),
        ("reading", READING_COLUMNS, readings),
        ("charge", CHARGE_COLUMNS, charges),
        ("invoice", INVOICE_COLUMNS, invoices),
        ("payment", PAYMENT_COLUMNS, payments),
    ]
    for table, _, rows in tables:
        ctx.totals[table] = ctx.totals.get(table, 0) + len(rows)
    return tables


def _average(history: dict[int, tuple[int, ...]], last: int) -> list[Decimal]:
    """Average monthly kWh per register over up to 6 months of accepted readings ending with
    the last one (at least 3 months: the generator never leaves an earlier gap)."""
    first = min(k for k in history if k >= last - 6)
    months = last - first
    return [(Decimal(b - a) / months).quantize(KWH, ROUND_HALF_UP)
            for a, b in zip(history[first], history[last])]


def _payment_amount(rand: Callable[[], float], profile: str, due: Decimal) -> Decimal | None:
    """What a customer of a payer profile pays this month towards the bill ``due``, or None."""
    r = rand()
    if profile == "overpayer":  # round sums above the bill, sometimes in advance
        if due > 0:
            rounded = (due / 500).to_integral_value(rounding=ROUND_CEILING) * 500
            return (rounded + (0, 0, 500, 1000)[int(rand() * 4)]).quantize(KOPECK)
        return Decimal("500.00") if r < 0.3 else None
    if due <= 0:
        return None
    if profile == "regular":
        return due if r < 0.93 else None
    if profile == "forgetful":
        return due if r < 0.6 else None
    if profile == "debtor":  # part of the bill, every other month
        if r < 0.5:
            share = Decimal(20 + int(rand() * 61)) / 100
            part = (due * share).quantize(Decimal(1), ROUND_HALF_UP).quantize(KOPECK)
            return part if part > 0 else None
        return None
    return due if r < 0.05 else None  # silent


def add_organizations(ctx: Context, fake: Faker, count: int) -> list[Customer]:
    """Organizations with a supply contract each; returns their points of supply to bill."""
    rng, w = ctx.rng, ctx.writer
    orgs, contracts, points = [], [], []
    seen_names: set[str] = set()
    seen_inns: set[str] = set()
    weights = [b.weight for b in BRANCHES]
    for k in range(count):
        oid, cid = ctx.next_ids["organization"] + k, ctx.next_ids["contract"] + k
        branch_no = rng.choices(range(1, len(BRANCHES) + 1), weights=weights)[0]
        spec = BRANCHES[branch_no - 1]
        name = ""
        while not name or name in seen_names:
            name = fake.company()
            if name.startswith("ИП"):
                name = ""
            elif "«" not in name:
                name = f"ООО «{name}»"
        seen_names.add(name)
        inn = ""
        while not inn or inn in seen_inns:
            inn9 = f"{spec.tax_office}{rng.randint(0, 99999):05d}"
            inn = inn9 + inn10_check(inn9)
        seen_inns.add(inn)
        year = rng.randint(2, 24)
        ogrn12 = f"1{year:02d}23{spec.tax_office[2:]}{rng.randint(0, 99999):05d}"
        phone = normalize_phone(landline(rng, spec.area_code))
        orgs.append((oid, name, inn, f"{spec.tax_office}01001", ogrn12 + ogrn_check(ogrn12),
                     f"{spec.postcode + rng.randint(0, 40)}, г. {spec.city}, "
                     f"{fake.street_name()}, д. {rng.randint(1, 200)}",
                     f"info{oid}@{fake.domain_name()}", phone,
                     _person_name(rng.choice, ctx.names), ctx.branch_ids[branch_no - 1]))
        signed = dt.date(2000 + year, 1, 1) + dt.timedelta(days=rng.randint(30, 700))
        signed = min(signed, ctx.calendar.periods[0])
        contracts.append((cid, f"ЭС-{branch_no:02d}-{oid:05d}", oid, ctx.branch_ids[branch_no - 1],
                          signed.isoformat(), signed.isoformat(), "active"))
        for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
            points.append(Customer(branch_no, True, holder_name=name, contract_id=cid))
    ctx.next_ids["organization"] += count
    ctx.next_ids["contract"] += count
    w.write("organization", ("id", "name", "inn", "kpp", "ogrn", "address", "email", "phone",
                             "director", "branch_id"), orgs)
    w.write("contract", ("id", "number", "organization_id", "branch_id", "signed_on",
                         "valid_from", "status"), contracts)
    ctx.totals["organization"], ctx.totals["contract"] = len(orgs), len(contracts)
    return points
