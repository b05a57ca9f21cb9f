"""Demo data: the supplier's branches and tariffs, customers with a year of readings, charges,
bills and payments that reconcile, and one sign-in per role.

``seed()`` loads everything once into a database without personal accounts (an audit event
marks it); ``demo_logins.issue_demo_logins()`` (re)creates the demo users with fresh random
passwords that are returned to the caller, never stored in clear. The parts: reference data and
valid-looking numbers (``demo_reference``), the generated rows of customers and their ledgers
(``demo_ledger``), writing them set-based (``demo_bulk``) and the logins (``demo_logins``).

The tariff arithmetic lives in ``app.services.tariffs``.
"""
from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from faker import Faker
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import models as m
from app.services import audit, ledger_partitions
from app.services.demo_bulk import BulkWriter, Pipeline, fast_load, sync_sequences
from app.services.demo_ledger import (
    MONTHS,
    Calendar,
    Context,
    Customer,
    add_organizations,
    build_chunk,
    last_complete_month,
)
from app.services.demo_reference import (
    ACCOUNT_SPACE,
    BRANCHES,
    MAX_ACCOUNTS,
    SERIAL_SPACE,
    ensure_branches,
    ensure_tariffs,
)
from app.services.periods import add_months
from app.services.russian import plural
from app.services.tariffs import load_tariff_book, season_of

#: Action of the audit event that marks a database as holding the demo data.
SEED_ACTION = "demo.seed"


class DemoError(Exception):
    """The demo data cannot be loaded or its logins issued; the text is shown to the user."""


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
        # Each billed month into its own ledger tables (PostgreSQL), not the default one.
        ledger_partitions.ensure_months(connection, periods[1:])
        with fast_load(connection), Pipeline(ctx.writer) as pipeline:
            business = add_organizations(ctx, fake, organizations)
            total = accounts + len(business)
            weights = [b.weight for b in BRANCHES]
            done = 0
            while done < accounts:
                size = min(chunk_size, accounts - done)
                branch_nos = ctx.rng.choices(range(1, len(BRANCHES) + 1), weights=weights,
                                             k=size)
                pipeline.put(build_chunk(ctx, [Customer(no, False) for no in branch_nos]))
                done += size
                if progress:
                    progress(done, total)
            pipeline.put(build_chunk(ctx, business))
        sync_sequences(connection, ("premises", "personal_account", "meter", "organization",
                                     "contract"))
        for period in periods[1:]:  # billed months, complete as in service: keys validated
            ledger_partitions.check_month(connection, period)
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
             due_day: int) -> tuple[Context, Faker]:
    """Reference data (branches, tariffs), the tariffs read back as data, Faker's name and
    street lists, and the next free ids of the tables whose ids the generator assigns."""
    rng = random.Random(seed_value)
    fake = Faker("ru_RU")
    fake.seed_instance(seed_value)
    branch_ids = ensure_branches(session, fake, rng)
    group_ids = ensure_tariffs(session)
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
    ctx = Context(rng=rng, writer=writer, calendar=Calendar.make(periods, writer, due_day),
                   branch_ids=branch_ids, group_ids=group_ids, books=books, names=names,
                   streets=sorted({fake.street_name() for _ in range(600)}),
                   number_offset=rng.randrange(ACCOUNT_SPACE),
                   serial_offset=rng.randrange(SERIAL_SPACE), next_ids=next_ids,
                   month_keys=month_keys)
    return ctx, fake


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
