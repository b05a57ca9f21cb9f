"""The demo's reference data (docs: domain.md sections 6 and 7): the supplier's 11 branches,
the tariff groups, rates and consumption ranges, and numbers that pass the checks real ones do
(Luhn, INN, OGRN, account numbers); loaded into the database when missing."""
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from faker import Faker
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import models as m
from app.services.phones import normalize_phone

KOPECK = Decimal("0.01")


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
ACCOUNT_SPACE, ACCOUNT_STEP = 10**7, 7_919_731
MAX_ACCOUNTS = 9_000_000
SERIAL_SPACE, SERIAL_STEP = 10**8, 48_271_477


def account_number(branch_no: int, seq: int, offset: int) -> str:
    """A 12-digit personal account number: 23 (the region), the branch, 7 digits unique per
    sequence number, a Luhn check digit."""
    body = f"23{branch_no:02d}{(seq * ACCOUNT_STEP + offset) % ACCOUNT_SPACE:07d}"
    return body + luhn_digit(body)


# ---------------------------------------------------------------------------------------------
# Into the database, when missing


def ensure_branches(session: Session, fake: Faker, rng: random.Random) -> list[int]:
    """The 11 branches, created when missing; their ids in BRANCHES order."""
    existing = {b.code: b for b in session.scalars(select(m.Branch))}
    ids = []
    for spec in BRANCHES:
        branch = existing.get(spec.code)
        if branch is None:
            local = landline(rng, spec.area_code)[2 + len(spec.area_code):]
            grouped = "-".join(filter(None, (local[:-4], local[-4:-2], local[-2:])))
            branch = m.Branch(code=spec.code, name=spec.name, city=spec.city,
                              address=f"г. {spec.city}, {fake.street_name()}, "
                                      f"д. {rng.randint(1, 120)}",
                              phone=f"+7 ({spec.area_code}) {grouped}")
            session.add(branch)
            session.flush()
        ids.append(branch.id)
    return ids


def landline(rng: random.Random, area_code: str) -> str:
    """A valid-looking landline number of a town: +7, the area code, the local number."""
    rest = 10 - len(area_code) - 1  # digits after the first of the local number
    while True:
        number = f"+7{area_code}{rng.randint(2, 9)}{rng.randrange(10 ** rest):0{rest}d}"
        if normalize_phone(number):
            return number


def ensure_tariffs(session: Session) -> dict[str, int]:
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
