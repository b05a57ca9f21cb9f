"""Demo data: the supplier's branches and tariffs, customers with a year of readings, charges,
bills and payments that reconcile, and one sign-in per role.

``seed()`` loads everything once into a database without personal accounts (an audit event
marks it); ``issue_demo_logins()`` (re)creates the demo users with fresh random passwords that
are returned to the caller, never stored in clear. Bulk rows are generated in Python in chunks
of uniform tuples and written set-based (``BulkWriter``: PostgreSQL ``COPY``, SQLite multi-row
``INSERT``) by a background thread while the next chunk is generated; secondary indexes and
PostgreSQL's foreign keys are rebuilt once at the end. No ORM objects, no query per row.

The tariff arithmetic lives in ``app.services.tariffs``.
"""
from __future__ import annotations

import datetime as dt
import math
import random
import secrets
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from itertools import accumulate

from faker import Faker
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app import models as m
from app.services import audit
from app.services.accounts import open_to_residents
from app.services.auth import CONSENT_VERSION
from app.services.periods import add_months
from app.services.phones import normalize_phone
from app.services.russian import plural
from app.services.tariffs import (
    HEATING_MONTHS,
    TariffBook,
    load_tariff_book,
    price_consumption,
    season_of,
)

KWH = Decimal("0.001")
KOPECK = Decimal("0.01")
ZERO = Decimal("0")

#: Action of the audit event that marks a database as holding the demo data.
SEED_ACTION = "demo.seed"


class DemoError(Exception):
    """The demo data cannot be loaded or its logins issued; the text is shown to the user."""


# ---------------------------------------------------------------------------------------------
# Reference data (docs: domain.md sections 6 and 7)

@dataclass(frozen=True)
class BranchSpec:
    code: str
    name: str
    city: str
    area_code: str  # telephone code of the town, without the trunk prefix
    postcode: int  # first postcode of the town
    tax_office: str  # 4-digit code of the town's tax office (first digits of an INN)
    villages: tuple[str, ...]
    weight: float  # share of the customers


BRANCHES: tuple[BranchSpec, ...] = (
    BranchSpec("krd", "Краснодарэнергосбыт", "Краснодар", "861", 350000, "2310",
               ("ст-ца Елизаветинская", "пос. Знаменский", "ст-ца Старокорсунская",
                "пос. Белозёрный", "х. Ленина"), 0.32),
    BranchSpec("nvr", "Новороссийскэнергосбыт", "Новороссийск", "8617", 353900, "2315",
               ("ст-ца Натухаевская", "ст-ца Раевская", "с. Абрау-Дюрсо", "с. Мысхако",
                "с. Цемдолина"), 0.10),
    BranchSpec("tua", "Туапсеэнергосбыт", "Туапсе", "86167", 352800, "2365",
               ("пгт Джубга", "пгт Новомихайловский", "с. Ольгинка", "с. Небуг", "с. Агой"),
               0.05),
    BranchSpec("tim", "Тимашевскэнергосбыт", "Тимашевск", "86130", 352700, "2353",
               ("ст-ца Медведовская", "ст-ца Роговская", "ст-ца Днепровская",
                "ст-ца Новокорсунская"), 0.06),
    BranchSpec("krp", "Кропоткинэнергосбыт", "Кропоткин", "86138", 352380, "2364",
               ("ст-ца Казанская", "ст-ца Кавказская", "ст-ца Темижбекская", "пос. Мирской"),
               0.06),
    BranchSpec("arm", "Армавирэнергосбыт", "Армавир", "86137", 352900, "2302",
               ("ст-ца Прочноокопская", "с. Успенское", "пос. Заветный", "пос. Степной"),
               0.09),
    BranchSpec("gel", "Геленджикэнергосбыт", "Геленджик", "86141", 353460, "2304",
               ("с. Кабардинка", "с. Дивноморское", "с. Архипо-Осиповка", "с. Пшада",
                "с. Возрождение"), 0.06),
    BranchSpec("gk", "Горячеключэнергосбыт", "Горячий Ключ", "86159", 353290, "2305",
               ("ст-ца Саратовская", "ст-ца Бакинская", "пос. Приреченский", "пос. Кутаис"),
               0.04),
    BranchSpec("anp", "Анапаэнергосбыт", "Анапа", "86133", 353440, "2301",
               ("ст-ца Анапская", "ст-ца Гостагаевская", "ст-ца Джигинская", "с. Витязево",
                "с. Сукко"), 0.09),
    BranchSpec("eys", "Ейскэнергосбыт", "Ейск", "86132", 353680, "2306",
               ("ст-ца Должанская", "ст-ца Камышеватская", "пос. Широчанка",
                "с. Александровка"), 0.07),
    BranchSpec("slv", "Славянскэнергосбыт", "Славянск-на-Кубани", "86146", 353560, "2349",
               ("ст-ца Петровская", "ст-ца Анастасиевская", "х. Галицын", "пос. Совхозный"),
               0.06),
)

#: Tariff groups: code -> name. "rural" is also the group of town homes with electric stoves.
TARIFF_GROUPS = {
    "urban": "Население, проживающее в городах",
    "rural": "Население в сельских населённых пунктах и в домах с электроплитами",
}
#: Order 24/2024-э of the regional tariff department, single-rate, by consumption range.
TARIFFS_FROM = dt.date(2025, 7, 1)
SINGLE_RATES = {
    "urban": (Decimal("7.35"), Decimal("10.00"), Decimal("14.64")),
    "rural": (Decimal("5.15"), Decimal("7.00"), Decimal("14.64")),
}
#: Zone rates as a share of the single rate: demo values (domain.md: *unconfirmed*).
ZONE_FACTORS = {
    1: {"T1": Decimal("1")},
    2: {"T1": Decimal("1"), "T2": Decimal("0.6")},
    3: {"T1": Decimal("1.2"), "T2": Decimal("0.6"), "T3": Decimal("1")},
}
#: Upper limits (kWh a month) of ranges 1 and 2 per group and season; range 3 has none.
#: Demo values within domain.md: range 1 up to about 1,100 kWh, less in summer; range 3 from 6,000.
RANGE_LIMITS = {
    ("urban", "heating"): (Decimal("1100"), Decimal("6000")),
    ("urban", "summer"): (Decimal("750"), Decimal("6000")),
    ("rural", "heating"): (Decimal("1100"), Decimal("6000")),
    ("rural", "summer"): (Decimal("900"), Decimal("6000")),
}


def tariff_rows() -> list[dict]:
    """The Tariff rows: every group, zone scheme, register and range."""
    rows = []
    for group, single in SINGLE_RATES.items():
        for zones, factors in ZONE_FACTORS.items():
            for zone, factor in factors.items():
                for range_no, rate in enumerate(single, start=1):
                    rows.append(dict(group=group, zones=zones, zone=zone, range_no=range_no,
                                     rate=(rate * factor).quantize(KOPECK, ROUND_HALF_UP)))
    return rows


# ---------------------------------------------------------------------------------------------
# Numbers and requisites


def luhn_digit(digits: str) -> str:
    """The Luhn check digit of a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str(-total % 10)


def inn10_check(first9: str) -> str:
    weights = (2, 4, 10, 3, 5, 9, 4, 6, 8)
    return str(sum(w * int(d) for w, d in zip(weights, first9)) % 11 % 10)


def is_valid_inn10(inn: str) -> bool:
    return len(inn) == 10 and inn.isdigit() and inn10_check(inn[:9]) == inn[9]


def ogrn_check(first12: str) -> str:
    return str(int(first12) % 11 % 10)


def is_valid_ogrn(ogrn: str) -> bool:
    return len(ogrn) == 13 and ogrn.isdigit() and ogrn_check(ogrn[:12]) == ogrn[12]


#: Bijections of a sequence number onto 7 and 8 digits: unique numbers that do not look serial.
_ACCOUNT_SPACE, _ACCOUNT_STEP = 10**7, 7_919_731
MAX_ACCOUNTS = 9_000_000
_SERIAL_SPACE, _SERIAL_STEP = 10**8, 48_271_477


def account_number(branch_no: int, seq: int, offset: int) -> str:
    """A 12-digit personal account number: 23 (the region), the branch, 7 digits unique per
    sequence number, a Luhn check digit."""
    body = f"23{branch_no:02d}{(seq * _ACCOUNT_STEP + offset) % _ACCOUNT_SPACE:07d}"
    return body + luhn_digit(body)


# ---------------------------------------------------------------------------------------------
# Bulk writing


class BulkWriter:
    """Writes uniform tuples of wire values (str, int, None; booleans as ``true``/``false``,
    timestamps as a day plus ``clock()``) to a table, the fastest way the connection allows:
    COPY on PostgreSQL with psycopg 3, multi-row INSERT ... VALUES on SQLite (one statement
    per few hundred rows: SQLite re-evaluates the CHECK constraints' IN lists per statement, so
    executemany would pay that per row), Core executemany elsewhere."""

    SQLITE_MAX_PARAMS = 30_000

    def __init__(self, connection: Connection):
        self.connection = connection
        dialect = connection.dialect
        if dialect.name == "sqlite":
            self.mode, self.true, self.false = "sqlite", 1, 0
        elif dialect.name == "postgresql" and dialect.driver == "psycopg":
            self.mode, self.true, self.false = "copy", True, False
        else:
            self.mode, self.true, self.false = "core", True, False

    def clock(self) -> list[str]:
        """The time part of a UTC timestamp for each second of a day, as this database takes
        it after the date (SQLAlchemy's own format on SQLite)."""
        tail = ".000000" if self.mode == "sqlite" else "+00"
        return [f" {h:02d}:{mnt:02d}:{sec:02d}{tail}"
                for h in range(24) for mnt in range(60) for sec in range(60)]

    def _dbapi(self):
        return self.connection.connection.driver_connection

    def write(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        if not rows:
            return
        names = ", ".join(columns)
        if self.mode == "sqlite":
            batch = max(1, min(500, self.SQLITE_MAX_PARAMS // len(columns)))
            one = "(" + ", ".join("?" * len(columns)) + ")"
            cursor = self._dbapi().cursor()
            try:
                for start in range(0, len(rows), batch):
                    part = rows[start:start + batch]
                    cursor.execute(f"INSERT INTO {table} ({names}) VALUES "
                                   + ", ".join([one] * len(part)),
                                   [v for row in part for v in row])
            finally:
                cursor.close()
        elif self.mode == "copy":
            with self._dbapi().cursor() as cursor:
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        else:
            target = m.Model.metadata.tables[table]
            self.connection.execute(insert(target), [dict(zip(columns, r)) for r in rows])


# ---------------------------------------------------------------------------------------------
# Generation of customers, readings, charges, bills and payments


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
class _Customer:
    """What is decided about one account before its rows are made."""

    branch_no: int
    business: bool
    holder_name: str = ""
    contract_id: int | None = None


@dataclass
class _Context:
    """Everything the generator needs that does not change from chunk to chunk."""

    rng: random.Random
    writer: BulkWriter
    calendar: _Calendar  # the baseline month, then MONTHS billed months
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


def _priced(ctx: _Context, month: int, group_id: int, zones: int, large_family: bool,
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
class _Calendar:
    """Wire strings of the dates and times the generator uses, made once."""

    periods: list[dt.date]
    period: list[str]
    yyyymm: list[str]
    issued_at: list[str]  # the bill of a month is issued on the 1st of the next, 03:00 UTC
    due: list[str]
    days: list[list[str]]  # days[i][d]: day d (1-28) of month i
    clock: list[str]  # clock[s]: the time part of a timestamp s seconds after midnight UTC

    @classmethod
    def make(cls, periods: list[dt.date], writer: BulkWriter, due_day: int) -> _Calendar:
        nxt = [add_months(p, 1) for p in periods]
        clock = writer.clock()
        return cls(periods=periods, period=[p.isoformat() for p in periods],
                   yyyymm=[f"{p:%Y%m}" for p in periods],
                   issued_at=[d.isoformat() + clock[3 * 3600] for d in nxt],
                   due=[d.replace(day=due_day).isoformat() for d in nxt],
                   days=[[""] + [p.replace(day=d).isoformat() for d in range(1, 29)]
                         for p in periods],
                   clock=clock)


def _build_chunk(ctx: _Context, customers: list[_Customer]) -> list[tuple[str, tuple, list]]:
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
        meters.append((mid, f"{(ctx.seq * _SERIAL_STEP + ctx.serial_offset) % _SERIAL_SPACE:08d}",
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
                                     f"demo-{aid:08d}-{cal.yyyymm[i]}", "succeeded", at, at, at))
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


# ---------------------------------------------------------------------------------------------
# Seeding


@dataclass
class SeedSummary:
    """What seed() did: ``loaded`` False when demo data was there already."""

    loaded: bool
    reason: str = ""
    accounts: int = 0
    business_accounts: int = 0
    organizations: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    first_period: dt.date | None = None
    last_period: dt.date | None = None
    seconds: float = 0.0


def demo_loaded(session: Session) -> bool:
    return session.scalar(select(m.AuditEvent.id).where(m.AuditEvent.action == SEED_ACTION)
                          .limit(1)) is not None


def seed(
    session: Session,
    *,
    accounts: int = 300,
    seed: int = 2025,
    organizations: int = 50,
    today: dt.date | None = None,
    due_day: int = 10,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int = 5000,
) -> SeedSummary:
    """Load the demo data once, in one transaction: ``accounts`` household accounts and
    ``organizations`` businesses with a few points of supply each, all billed for the 12 months
    ending with the last complete month before ``today``, bills due on ``due_day`` of the next
    month. ``progress(done, total)`` follows the accounts. The same ``seed`` gives the same
    data."""
    started = time.perf_counter()
    if demo_loaded(session):
        return SeedSummary(False, "loaded")
    if session.scalar(select(m.PersonalAccount.id).limit(1)) is not None:
        return SeedSummary(False, "not_empty")
    if not 1 <= due_day <= 28:
        raise DemoError("День оплаты счёта должен быть от 1 до 28.")
    if not 0 <= accounts <= MAX_ACCOUNTS or organizations < 0:
        raise DemoError(f"Число лицевых счетов: от 0 до {_thousands(MAX_ACCOUNTS)}.")

    last = last_complete_month(today or dt.date.today())
    periods = [add_months(last, k - MONTHS) for k in range(MONTHS + 1)]
    try:
        ctx, fake = _prepare(session, seed, periods, due_day)
        connection = ctx.writer.connection
        with _fast_load(connection), _Pipeline(ctx.writer) as pipeline:
            business = _organizations(ctx, fake, organizations)
            total = accounts + len(business)
            weights = [b.weight for b in BRANCHES]
            done = 0
            while done < accounts:
                size = min(chunk_size, accounts - done)
                branch_nos = ctx.rng.choices(range(1, len(BRANCHES) + 1), weights=weights,
                                             k=size)
                pipeline.put(_build_chunk(ctx, [_Customer(no, False) for no in branch_nos]))
                done += size
                if progress:
                    progress(done, total)
            pipeline.put(_build_chunk(ctx, business))
        _sync_sequences(connection, ("premises", "personal_account", "meter", "organization",
                                     "contract"))
        audit.record(session, SEED_ACTION, object_type="demo",  # commits
                     details={"accounts": accounts, "organizations": organizations,
                              "seed": seed, "periods": f"{periods[1]:%m.%Y}-{last:%m.%Y}"})
    except BaseException:
        session.rollback()
        raise
    if progress:
        progress(total, total)
    return SeedSummary(True, accounts=accounts, business_accounts=len(business),
                       organizations=organizations, rows=dict(ctx.totals),
                       first_period=periods[1], last_period=last,
                       seconds=time.perf_counter() - started)


def _prepare(session: Session, seed_value: int, periods: list[dt.date],
             due_day: int) -> tuple[_Context, Faker]:
    """Reference data (branches, tariffs), the tariffs read back as data, Faker's name and
    street lists, and the next free ids of the tables whose ids the generator assigns."""
    rng = random.Random(seed_value)
    fake = Faker("ru_RU")
    fake.seed_instance(seed_value)
    branch_ids = _ensure_branches(session, fake, rng)
    group_ids = _ensure_tariffs(session)
    session.flush()
    books = [load_tariff_book(session, p) for p in periods[1:]]
    for book in books:
        if not book.rates or not book.limits:
            raise DemoError(f"Нет тарифов на {book.on:%m.%Y}.")
    signatures: dict = {}
    month_keys = [None] + [
        signatures.setdefault((repr(sorted(book.rates.items())),
                               repr(sorted(book.limits.items())), season_of(book.on)),
                              len(signatures))
        for book in books]
    names = {f"{part}_{sex}": sorted({getattr(fake, f"{part}_name_{sex}")() for _ in range(400)})
             for part in ("last", "first", "middle") for sex in ("male", "female")}
    next_ids = {model.__tablename__: (session.scalar(select(func.max(model.id))) or 0) + 1
                for model in (m.Premises, m.PersonalAccount, m.Meter, m.Organization,
                              m.Contract)}
    writer = BulkWriter(session.connection())
    ctx = _Context(rng=rng, writer=writer, calendar=_Calendar.make(periods, writer, due_day),
                   branch_ids=branch_ids, group_ids=group_ids, books=books, names=names,
                   streets=sorted({fake.street_name() for _ in range(600)}),
                   number_offset=rng.randrange(_ACCOUNT_SPACE),
                   serial_offset=rng.randrange(_SERIAL_SPACE), next_ids=next_ids,
                   month_keys=month_keys)
    return ctx, fake


def _ensure_branches(session: Session, fake: Faker, rng: random.Random) -> list[int]:
    """The 11 branches, created when missing; their ids in BRANCHES order."""
    existing = {b.code: b for b in session.scalars(select(m.Branch))}
    ids = []
    for spec in BRANCHES:
        branch = existing.get(spec.code)
        if branch is None:
            local = _landline(rng, spec.area_code)[2 + len(spec.area_code):]
            grouped = "-".join(filter(None, (local[:-4], local[-4:-2], local[-2:])))
            branch = m.Branch(code=spec.code, name=spec.name, city=spec.city,
                              address=f"г. {spec.city}, {fake.street_name()}, "
                                      f"д. {rng.randint(1, 120)}",
                              phone=f"+7 ({spec.area_code}) {grouped}")
            session.add(branch)
            session.flush()
        ids.append(branch.id)
    return ids


def _landline(rng: random.Random, area_code: str) -> str:
    """A valid-looking landline number of a town: +7, the area code, the local number."""
    rest = 10 - len(area_code) - 1  # digits after the first of the local number
    while True:
        number = f"+7{area_code}{rng.randint(2, 9)}{rng.randrange(10 ** rest):0{rest}d}"
        if normalize_phone(number):
            return number


def _ensure_tariffs(session: Session) -> dict[str, int]:
    """Tariff groups, rates and consumption ranges in force from TARIFFS_FROM."""
    groups = {g.code: g for g in session.scalars(select(m.TariffGroup))}
    for code, name in TARIFF_GROUPS.items():
        if code not in groups:
            groups[code] = m.TariffGroup(code=code, name=name)
            session.add(groups[code])
    session.flush()
    have = set(session.execute(select(m.Tariff.tariff_group_id, m.Tariff.zones, m.Tariff.zone,
                                      m.Tariff.range_no, m.Tariff.effective_from)))
    for row in tariff_rows():
        gid = groups[row["group"]].id
        if (gid, row["zones"], row["zone"], row["range_no"], TARIFFS_FROM) not in have:
            session.add(m.Tariff(tariff_group_id=gid, zones=row["zones"], zone=row["zone"],
                                 range_no=row["range_no"], rate=row["rate"],
                                 effective_from=TARIFFS_FROM))
    have = set(session.execute(select(m.ConsumptionRange.tariff_group_id,
                                      m.ConsumptionRange.season, m.ConsumptionRange.range_no,
                                      m.ConsumptionRange.effective_from)))
    for (code, season), limits in RANGE_LIMITS.items():
        gid = groups[code].id
        for range_no, upper in enumerate((*limits, None), start=1):
            if (gid, season, range_no, TARIFFS_FROM) not in have:
                session.add(m.ConsumptionRange(tariff_group_id=gid, season=season,
                                               range_no=range_no, upper_kwh=upper,
                                               effective_from=TARIFFS_FROM))
    return {code: g.id for code, g in groups.items()}


def _organizations(ctx: _Context, fake: Faker, count: int) -> list[_Customer]:
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
        phone = normalize_phone(_landline(rng, spec.area_code))
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
            points.append(_Customer(branch_no, True, holder_name=name, contract_id=cid))
    ctx.next_ids["organization"] += count
    ctx.next_ids["contract"] += count
    w.write("organization", ("id", "name", "inn", "kpp", "ogrn", "address", "email", "phone",
                             "director", "branch_id"), orgs)
    w.write("contract", ("id", "number", "organization_id", "branch_id", "signed_on",
                         "valid_from", "status"), contracts)
    ctx.totals["organization"], ctx.totals["contract"] = len(orgs), len(contracts)
    return points


class _Pipeline:
    """Writes a chunk in a background thread while the next one is generated: SQLite lets go
    of the GIL inside its steps and PostgreSQL works in its own process, so both cores work.
    A SQLite database in memory cannot change threads: it is written in line."""

    def __init__(self, writer: BulkWriter):
        self.writer = writer
        url = writer.connection.engine.url
        in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
        self.pool = None if in_memory else ThreadPoolExecutor(1, "demo-writer")
        self.pending: Future | None = None

    def _write(self, tables: list[tuple[str, tuple, list]]) -> None:
        for table, columns, rows in tables:
            self.writer.write(table, columns, rows)

    def put(self, tables: list[tuple[str, tuple, list]]) -> None:
        self.wait()
        if self.pool is None:
            self._write(tables)
        else:
            self.pending = self.pool.submit(self._write, tables)

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> _Pipeline:
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.wait()
            elif self.pending is not None:
                self.pending.exception()  # let the write finish before the rollback
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
        return False


class _fast_load:  # noqa: N801 - used as a context manager
    """Make a big load cheap, inside the load's transaction (a failure rolls it all back):
    drop the secondary indexes of the bulk tables and build them again at the end (one sort
    each instead of millions of B-tree inserts); on PostgreSQL also drop the foreign keys and
    add them back, validated in one pass each, then ANALYZE; on SQLite give the page cache
    room."""

    BULK_TABLES = ("premises", "personal_account", "meter", "reading", "charge", "invoice",
                   "payment")

    def __init__(self, connection: Connection):
        self.connection = connection
        self.indexes: list[tuple[str, str]] = []  # (name, CREATE INDEX statement)
        self.foreign_keys: list[tuple[str, str, str]] = []  # (table, name, definition)
        self.cache_size = None

    def __enter__(self):
        c, tables = self.connection, list(self.BULK_TABLES)
        if c.dialect.name == "postgresql":
            self.foreign_keys = [tuple(row) for row in c.execute(text(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(:t)"
            ), {"t": tables})]
            self.indexes = [tuple(row) for row in c.execute(text(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i "
                "WHERE i.schemaname = current_schema() AND i.tablename = ANY(:t) "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname "
                "AND k.conrelid = i.tablename::regclass)"), {"t": tables})]
            for table, name, _ in self.foreign_keys:
                c.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
        elif c.dialect.name == "sqlite":
            if not c.connection.driver_connection.in_transaction:
                c.exec_driver_sql("BEGIN")  # pysqlite begins only before DML, not DDL
            marks = ", ".join("?" * len(tables))
            self.indexes = [tuple(row) for row in c.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                f"AND tbl_name IN ({marks})", tuple(tables))]
            self.cache_size = c.exec_driver_sql("PRAGMA cache_size").scalar()
            c.exec_driver_sql("PRAGMA cache_size = -262144")  # 256 MiB
        for name, _ in self.indexes:
            c.exec_driver_sql(f'DROP INDEX "{name}"')
        return self

    def __exit__(self, exc_type, exc, tb):
        c = self.connection
        if exc_type is None:
            for _, statement in self.indexes:
                c.exec_driver_sql(statement)
            for table, name, definition in self.foreign_keys:
                c.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
            if c.dialect.name == "postgresql":  # the planner knows nothing of the new rows yet
                c.exec_driver_sql(f"ANALYZE {', '.join(self.BULK_TABLES)}, organization, contract")
        if self.cache_size is not None:
            c.exec_driver_sql(f"PRAGMA cache_size = {int(self.cache_size)}")
        return False


def _sync_sequences(connection: Connection, tables: Sequence[str]) -> None:
    """Move PostgreSQL's id sequences past the ids the seed gave explicitly."""
    if connection.dialect.name != "postgresql":
        return
    for table in tables:
        connection.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"))


# ---------------------------------------------------------------------------------------------
# Demo logins


@dataclass(frozen=True)
class DemoLogin:
    role: str  # Russian label
    username: str
    password: str | None  # None: the username belongs to someone else, left alone
    login: str  # what to type at the entrance: the username, or the resident's phone
    entrance: str  # where to sign in


#: The demo users: username, FAB role, Russian label of the role, entrance.
DEMO_USERS = (
    ("admin", "Admin", "Администратор", "/login/"),
    ("operator", "Staff", "Оператор (Краснодарэнергосбыт)", "/login/"),
    ("finance", "Finance", "Финансист", "/login/"),
    ("resident", "Resident", "Житель (2 лицевых счёта)", "/auth/"),
    ("business", "Business", "Организация", "/business/login"),
)
DEMO_EMAIL_DOMAIN = "nesk.example"


def demo_email(username: str) -> str:
    """The e-mail of a demo user: what tells a demo user from a real one of the same name."""
    return f"{username}@{DEMO_EMAIL_DOMAIN}"

_PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_password() -> str:
    """A random password of four groups of four characters (about 92 bits)."""
    return "-".join("".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(4))
                    for _ in range(4))


def issue_demo_logins(appbuilder, session: Session) -> list[DemoLogin]:
    """Give every demo user a fresh random password, creating missing users through the
    security manager (the resident bound to two accounts, the business user to an
    organization). Returns the passwords; nothing keeps them in clear. A user with a demo
    username but another e-mail is not a demo user: it is left alone."""
    if not demo_loaded(session):
        raise DemoError("Демо-данные не загружены: сначала выполните «flask demo seed».")
    sm = appbuilder.sm
    logins = []
    for username, role_name, label, entrance in DEMO_USERS:
        password = new_password()
        user = session.scalar(select(m.PortalUser).where(m.PortalUser.username == username))
        if user is not None and user.email != demo_email(username):
            logins.append(DemoLogin(label, username, None, username, entrance))
            continue
        if user is None:
            role = sm.find_role(role_name)
            if role is None:
                raise DemoError(f"Нет роли {role_name}: выполните «flask roles sync».")
            _create_demo_user(sm, session, username, role, password)
            action = "user.created"
        else:
            sm.reset_password(user.id, password)
            action = "password.reset"
        user = session.scalar(select(m.PortalUser).where(m.PortalUser.username == username))
        audit.record(session, action, object_type="user", object_id=user.id,
                     details={"reason": "demo logins"})
        login = user.phone if user.kind == "resident" and user.phone else username
        if user.kind == "business" and user.branch_id:
            entrance += f" ({session.get(m.Branch, user.branch_id).name})"
        logins.append(DemoLogin(label, username, password, login, entrance))
    return logins


def _create_demo_user(sm, session: Session, username: str, role, password: str) -> None:
    fake = Faker("ru_RU")
    extra: dict = {"kind": "staff"}
    bind: list[int] = []
    last_name, first_name = fake.last_name(), fake.first_name()
    if username == "operator":
        extra["branch_id"] = session.scalar(select(m.Branch.id).where(m.Branch.code == "krd"))
    elif username == "resident":
        bind = _resident_accounts(session)
        holder = session.get(m.PersonalAccount, bind[0]).holder_name
        last_name, first_name = holder.split()[:2]
        for account_id in bind[1:]:
            session.get(m.PersonalAccount, account_id).holder_name = holder
        phone = None
        while phone is None:
            phone = normalize_phone(f"8 918 {secrets.randbelow(10**7):07d}")
            if session.scalar(select(m.PortalUser.id).where(m.PortalUser.phone == phone)):
                phone = None
        extra.update(kind="resident", phone=phone, pd_consent_at=m.utcnow(),
                     pd_consent_version=CONSENT_VERSION)
    elif username == "business":
        org = session.scalars(
            select(m.Organization).join(m.Contract).join(m.PersonalAccount)
            .group_by(m.Organization.id).order_by(func.count(m.PersonalAccount.id).desc(),
                                                  m.Organization.id).limit(1)).first()
        if org is None:
            raise DemoError("В демо-данных нет организаций.")
        extra.update(kind="business", organization_id=org.id, branch_id=org.branch_id)
        if org.director:
            last_name, first_name = org.director.split()[:2]
    user = sm.add_user(username=username, first_name=first_name, last_name=last_name,
                       email=demo_email(username), role=role, password=password,
                       commit=False)
    if not user:
        raise DemoError(f"Не удалось создать пользователя {username}.")
    for key, value in extra.items():
        setattr(user, key, value)
    session.flush()
    for account_id in bind:
        session.add(m.AccountBinding(user_id=user.id, account_id=account_id,
                                     method="meter_serial"))
    session.commit()


def _resident_accounts(session: Session) -> list[int]:
    """A town flat in Krasnodar and a village house: the first of each among households (never
    an organization's point of supply, which the residents' cabinet does not show)."""
    base = (select(m.PersonalAccount.id).join(m.Premises)
            .where(open_to_residents())
            .order_by(m.PersonalAccount.id).limit(1))
    krd = select(m.Branch.id).where(m.Branch.code == "krd").scalar_subquery()
    town = session.scalar(base.where(m.Premises.locality_type == "urban",
                                     m.Premises.branch_id == krd,
                                     m.Premises.flat.is_not(None)))
    village = session.scalar(base.where(m.Premises.locality_type == "rural"))
    ids = [i for i in (town, village) if i is not None]
    if len(ids) < 2:
        ids = list(session.scalars(base.limit(2)))
    if len(ids) < 2:
        raise DemoError("Для жителя нужны два лицевых счёта: загрузите хотя бы два.")
    return ids


# ---------------------------------------------------------------------------------------------
# Messages


def _thousands(n: int) -> str:
    return f"{n:,}".replace(",", "\u00a0")


def describe(summary: SeedSummary, session: Session | None = None) -> str:
    """What seed() did, in Russian."""
    if not summary.loaded:
        if summary.reason == "not_empty":
            return ("В базе уже есть лицевые счета, но не демо-данные: демо-данные не "
                    "загружаются и демо-входы не выдаются.")
        count = session.scalar(select(func.count(m.PersonalAccount.id))) if session else None
        tail = (f" ({_thousands(count)} "
                f"{plural(count, 'лицевой счёт', 'лицевых счёта', 'лицевых счетов')})"
                if count is not None else "")
        return (f"Демо-данные уже загружены{tail}: повторная загрузка не нужна. "
                "Паролям демо-пользователей выданы новые значения.")
    n, b = summary.accounts, summary.business_accounts
    rows = summary.rows
    speed = (n + b) / summary.seconds if summary.seconds else 0
    return "\n".join((
        f"Демо-данные загружены за {summary.seconds:.1f} с"
        + (f", {_thousands(round(speed))} "
           f"{plural(round(speed), 'лицевой счёт', 'лицевых счёта', 'лицевых счетов')} в секунду"
           if n >= 5000 else "")
        + ".",
        f"Филиалов: {len(BRANCHES)}; лицевых счетов физических лиц: {_thousands(n)}; "
        f"организаций: {summary.organizations} с {b} "
        f"{plural(b, 'точкой', 'точками', 'точками')} поставки.",
        f"Период: {summary.first_period:%m.%Y} – {summary.last_period:%m.%Y}; показаний: "
        f"{_thousands(rows.get('reading', 0))}, начислений: {_thousands(rows.get('charge', 0))}, "
        f"счетов: {_thousands(rows.get('invoice', 0))}, "
        f"платежей: {_thousands(rows.get('payment', 0))}.",
    ))


def format_logins(logins: Sequence[DemoLogin]) -> str:
    """A table of role / login / password / entrance for the terminal."""
    header = ("Роль", "Логин", "Пароль", "Где входить")
    rows = [header] + [(x.role, x.login, x.password or "не изменён: это не демо-пользователь",
                        x.entrance) for x in logins]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def fmt(row):
        return "| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |"

    return "\n".join([
        "Демо-входы (пароли показаны один раз и нигде не сохраняются; при следующем "
        "запуске будут выданы новые):",
        line, fmt(header), line, *(fmt(r) for r in rows[1:]), line,
    ])
