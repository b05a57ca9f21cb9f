"""Load benchmark of the portal under gunicorn against a bare Flask route, on PostgreSQL.

Creates a PostgreSQL database of its own (``--database NAME``, by default ``lk_load_<pid>``)
and seeds it set-based with N resident accounts: a user bound to each (every 50th user also to
the next two accounts, a family's), a meter, six months of readings, charges, invoices and
payments. Every user has the same known password, hashed once. Then serves, each with gunicorn
and the project's gunicorn.conf.py (2 sync workers, loopback), with ``make serve``'s settings
(PRODUCTION=1: keys from the environment, rate-limit counters and the job queue in an empty
Redis database of the run's own, CSRF on, Secure cookies; the client stands for the TLS proxy
and sends ``X-Forwarded-Proto: https``):

- the portal (``run:app``);
- the baseline, a bare Flask app (``bench.load:bare_app()``) returning one personal account
  by primary key as JSON through one indexed query,

and drives them from an asyncio client (aiohttp, one cookie jar per virtual user), each phase
bounded in time and in count: web and API sign-ins; then rounds of the bare route, the
cabinet main page and API reads (alternating, so that the machine's other load falls on all
three alike); then a realistic mix (cabinet main page, readings submission, bills page and PDF
download, history lists, API reads with pages of 6 and of 20 rows, new sign-ins). It prints
requests/s and p50/p95/p99 per request type, counting only the answers each request expects
(2xx, or its redirect), and last

    ratio cabinet_page <cabinet main page req/s / bare req/s>
    ratio api_read <API GET req/s / bare req/s>

When any request failed (sign-in, rounds or the mix) it prints instead how many, and no ratio,
and exits with status 1.

Its data stays its own: the database it created is dropped at the end, also on error or
SIGTERM (``--keep`` keeps it); one that exists already is never dropped, and is refused unless
``--reuse`` is given and it holds exactly --accounts accounts. Redis: ``--redis-url URL``
(default BENCH_REDIS_URL) must be an empty database, else a free one of 1-15 is leased
(tests/redis_lease.py); either is flushed at the end. Every process it starts is stopped at the
end (or at exit).

    .venv/bin/python bench/load.py                      # 100,000 accounts, about 4 minutes
    .venv/bin/python bench/load.py --accounts 10000 --seconds 6 --concurrency 8
    .venv/bin/python bench/load.py --database lk_load --keep     # seed once, keep it
    .venv/bin/python bench/load.py --database lk_load --reuse    # then measure on it again
"""
from __future__ import annotations

import argparse
import asyncio
import atexit
import datetime as dt
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "Нагрузка-2026-пароль"
#: The six billed months; readings for the current month come from the benchmark itself.
MONTHS = [dt.date(2026, m, 1) for m in range(5, 11)]
FAMILY_EVERY = 50
WORKERS = 2

SEED_SMALL = [
    "INSERT INTO branch (id, code, name, city) VALUES "
    "(1, 'krd', 'Краснодарэнергосбыт', 'Краснодар')",
    "INSERT INTO tariff_group (id, code, name) VALUES (1, 'urban', 'Городское население')",
    "INSERT INTO tariff (tariff_group_id, zones, zone, range_no, rate, effective_from) VALUES "
    "(1, 1, 'T1', 1, 7.35, '2025-07-01'), (1, 1, 'T1', 2, 10.00, '2025-07-01'), "
    "(1, 1, 'T1', 3, 14.64, '2025-07-01')",
    "INSERT INTO consumption_range (tariff_group_id, season, range_no, upper_kwh, "
    "effective_from) VALUES (1, 'heating', 1, 1100, '2025-07-01'), "
    "(1, 'heating', 2, 6000, '2025-07-01'), (1, 'summer', 1, 1100, '2025-07-01'), "
    "(1, 'summer', 2, 6000, '2025-07-01')",
]


def username(i: int) -> str:
    return f"load{i:06d}"


def invoice_id(n: int, account_id: int, month_index: int) -> int:
    """Invoices are numbered month by month: the ids of an account's bills are known."""
    return month_index * n + account_id


# ---------------------------------------------------------------------------------------------
# Seeding


def seeded_accounts(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM personal_account")).scalar_one()
    except Exception:  # no such database or table yet
        return -1
    finally:
        engine.dispose()


def seed(url: str, n: int, instance: str) -> None:
    """The schema, the roles, then every row set-based, foreign-key triggers off (the rows are
    consistent by construction), then ANALYZE."""
    from flask_appbuilder import Model
    from werkzeug.security import generate_password_hash

    import app.models  # noqa: F401  (the tables)
    from app import create_app
    from app.extensions import db
    from app.views.access import RESIDENT, sync_roles

    engine = create_engine(url)
    Model.metadata.create_all(engine)
    flask_app = create_app({"SQLALCHEMY_DATABASE_URI": url, "DEV_OUTBOX_DIR": instance,
                            "RATELIMIT_ENABLED": False})
    with flask_app.app_context():
        sync_roles(flask_app.appbuilder)
        db.session.remove()
        db.engine.dispose()
    password_hash = generate_password_hash(PASSWORD)  # scrypt, once for every user
    rows = f"generate_series(1, {n}) AS i"
    months = ", ".join(f"({k}, DATE '{p.isoformat()}')" for k, p in enumerate(MONTHS))
    with engine.begin() as conn:
        conn.execute(text("SET session_replication_role = replica"))
        for sql in SEED_SMALL:
            conn.execute(text(sql))
        conn.execute(text(
            f"INSERT INTO premises (id, branch_id, locality, locality_type, street, house, flat, "
            f"electric_stove, residents) SELECT i, 1, 'Краснодар', 'urban', 'ул. Красная', "
            f"CAST(1 + i / 200 AS VARCHAR), CAST(1 + i % 200 AS VARCHAR), false, 2 FROM {rows}"))
        conn.execute(text(
            f"INSERT INTO personal_account (id, number, holder_name, premises_id, branch_id, "
            f"tariff_group_id, status, large_family, opened_on) "
            f"SELECT i, CAST(230000000000 + i AS VARCHAR), 'Абонент ' || i, i, 1, 1, 'active', "
            f"false, '2024-01-01' FROM {rows}"))
        conn.execute(text(
            f"INSERT INTO meter (id, serial, account_id, zones, digit_capacity, active) "
            f"SELECT i, 'LD' || i, i, 1, 6, true FROM {rows}"))
        # Monthly consumption 150 .. 349 kWh, readings growing by it from 10,000.
        usage = "(150 + i % 200)"
        conn.execute(text(
            f"INSERT INTO reading (meter_id, period, t1, source, status, submitted_at) "
            f"SELECT i, m.period, 10000 + (m.k + 1) * {usage}, 'web', 'accepted', "
            f"m.period + INTERVAL '20 days' FROM {rows} CROSS JOIN (VALUES {months}) m(k, period)"))
        conn.execute(text(
            f"INSERT INTO charge (account_id, period, meter_id, zone, range_no, kwh, rate, "
            f"amount, kind, created_at) SELECT i, m.period, i, 'T1', 1, {usage}, 7.35, "
            f"{usage} * 7.35, 'metered', m.period + INTERVAL '1 month' "
            f"FROM {rows} CROSS JOIN (VALUES {months}) m(k, period)"))
        conn.execute(text(
            f"INSERT INTO invoice (id, number, account_id, period, opening_balance, charged, "
            f"paid, amount_due, due_date, issued_at) "
            f"SELECT m.k * {n} + i, 'Л-' || i || '-' || to_char(m.period, 'YYYYMM'), i, "
            f"m.period, 0, {usage} * 7.35, 0, {usage} * 7.35, "
            f"m.period + INTERVAL '1 month 9 days', m.period + INTERVAL '1 month' "
            f"FROM {rows} CROSS JOIN (VALUES {months}) m(k, period)"))
        conn.execute(text(
            f"INSERT INTO payment (account_id, amount, method, gateway, external_id, status, "
            f"user_id, created_at, paid_at, updated_at) "
            f"SELECT i, {usage} * 7.35, 'card', 'sandbox', 'load-' || m.k || '-' || i, "
            f"'succeeded', i, m.period + INTERVAL '1 month 5 days', "
            f"m.period + INTERVAL '1 month 5 days', m.period + INTERVAL '1 month 5 days' "
            f"FROM {rows} CROSS JOIN (VALUES {months}) m(k, period)"))
        conn.execute(text(
            f"INSERT INTO ab_user (id, first_name, last_name, username, password, active, email, "
            f"created_on, changed_on, login_count, fail_login_count, kind, "
            f"email_is_placeholder, must_change_password, pd_consent_at, pd_consent_version) "
            f"SELECT i, 'Житель', 'Нагрузочный', 'load' || lpad(CAST(i AS VARCHAR), 6, '0'), "
            f":hash, true, 'load' || i || '@load.test', now(), now(), 0, 0, 'resident', false, "
            f"false, now(), '1' FROM {rows}"), {"hash": password_hash})
        conn.execute(text(
            f"INSERT INTO ab_user_role (id, user_id, role_id) SELECT i, i, "
            f"(SELECT id FROM ab_role WHERE name = :role) FROM {rows}"), {"role": RESIDENT})
        conn.execute(text(
            f"INSERT INTO account_binding (user_id, account_id, bound_at, method) "
            f"SELECT i, i, now(), 'meter_serial' FROM {rows} UNION ALL "
            f"SELECT i, i + d, now(), 'meter_serial' FROM {rows} CROSS JOIN (VALUES (1), (2)) x(d) "
            f"WHERE i % {FAMILY_EVERY} = 0 AND i + d <= {n}"))
        conn.execute(text("SET session_replication_role = origin"))
        for sequence, table in (("ab_user_id_seq", "ab_user"),
                                ("ab_user_role_id_seq", "ab_user_role")):
            conn.execute(text(f"SELECT setval('{sequence}', (SELECT max(id) FROM {table}))"))
        for table in ("branch", "tariff_group", "premises", "personal_account", "meter",
                      "invoice"):
            conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


# ---------------------------------------------------------------------------------------------
# The baseline app and the servers


def bare_app():
    """The baseline: one indexed query by primary key, the row as JSON (gunicorn factory)."""
    from flask import Flask, abort, jsonify

    engine = create_engine(os.environ["DATABASE_URL"], pool_size=5)
    query = text("SELECT id, number, holder_name, status FROM personal_account WHERE id = :id")
    app = Flask("bare")

    @app.get("/account/<int:account_id>")
    def account(account_id: int):
        with engine.connect() as conn:
            row = conn.execute(query, {"id": account_id}).mappings().first()
        if row is None:
            abort(404)
        return jsonify(dict(row))

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with the project's gunicorn.conf.py (as ``make serve``), 2 sync workers on a
    loopback port, in its own process group; ``stop()`` (from ``finally`` and, should that be
    skipped, at exit) ends it and removes its log unless it failed."""

    def __init__(self, name: str, target: str, env: dict[str, str]):
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix=f"lk-load-{name}-", suffix=".log",
                                               delete=False)
        settings = {
            "BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(WORKERS),
            "WEB_THREADS": "1",
            # No recycling within a run: a new worker builds the whole app again (seconds of
            # CPU), which would be measured as the portal's cost.
            "WEB_MAX_REQUESTS": "0",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
             "--chdir", str(ROOT), target],
            env={**os.environ, **env, **settings}, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        atexit.register(self.stop)

    def wait_ready(self, path: str, timeout: float = 90) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        request = urllib.request.Request(self.url + path, headers=PROXY_HEADERS)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} server exited; see {self.log.name}")
            try:
                urllib.request.urlopen(request, timeout=5).read()
                return
            except Exception:
                time.sleep(0.3)
        raise SystemExit(f"{self.name} server did not answer in {timeout} s; see {self.log.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            if self.process.returncode == 0:
                Path(self.log.name).unlink(missing_ok=True)


def production_env(url: str, instance: str, redis_url: str) -> dict[str, str]:
    """``make serve``'s settings: PRODUCTION on, keys from the environment, counters in Redis.
    The benchmark's client stands for the TLS proxy (``X-Forwarded-Proto: https``). The
    development outbox is admitted explicitly (DEV_OUTBOX_ENABLED): no code or letter is sent
    here, and there is no SMTP server or SMS gateway to configure."""
    from app.services import vapid

    return {
        "PRODUCTION": "1",
        "DATABASE_URL": url,
        "INSTANCE_PATH": instance,
        "SECRET_KEY": secrets.token_hex(32),
        "OTP_HASH_KEY": secrets.token_hex(32),
        "VAPID_PRIVATE_KEY": vapid.generate()[0],
        "RATELIMIT_STORAGE_URI": redis_url,
        # Jobs would be queued there (none is started here; the database is flushed after).
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "DEV_OUTBOX_ENABLED": "1",
        "FLASK_DEBUG": "0",
        # Readings are taken every day of the month here, so that submissions are real.
        "READING_WINDOW_FIRST_DAY": "1",
        "READING_WINDOW_LAST_DAY": "31",
    }


# ---------------------------------------------------------------------------------------------
# The client


CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
#: What the TLS reverse proxy in front of gunicorn adds to every request.
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}


def referer(url: str, path: str = "") -> dict[str, str]:
    """The page a browser posts from, as it saw it (over HTTPS): CSRF checks it then."""
    return {"Referer": url.replace("http://", "https://", 1) + path}


@dataclass
class Stats:
    """Latencies (s) and failures per request type, and the time they were measured over."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    elapsed: float = 0.0

    def add(self, other: Stats) -> None:
        for kind, values in other.latencies.items():
            self.latencies[kind].extend(values)
        for kind, count in other.failures.items():
            self.failures[kind] += count
        self.elapsed += other.elapsed

    def rate(self, kinds=None) -> float:
        """Successful requests per second."""
        if not self.elapsed:
            return 0.0
        return sum(len(v) for k, v in self.latencies.items()
                   if kinds is None or k in kinds) / self.elapsed

    def failed(self) -> int:
        return sum(self.failures.values())


class Phase:
    """Requests of one kind of load, until the time or the count runs out."""

    def __init__(self, seconds: float, max_requests: int):
        self.seconds, self.max_requests = seconds, max_requests
        self.stats = Stats()
        self.count = 0
        self.deadline = time.monotonic() + seconds

    def running(self) -> bool:
        return time.monotonic() < self.deadline and self.count < self.max_requests

    async def request(self, http, kind: str, method: str, url: str, expect=(200,), **kwargs):
        """One timed request; returns the body (bytes) or None on failure. Only an answer with
        an expected status counts in the latencies (and so in requests/s): an error page is
        often faster than the page, and would flatter the figures."""
        self.count += 1
        headers = {**PROXY_HEADERS, **kwargs.pop("headers", {})}
        started = time.perf_counter()
        try:
            async with http.request(method, url, allow_redirects=False, headers=headers,
                                    **kwargs) as response:
                body = await response.read()
                status = response.status
        except Exception:
            self.stats.failures[kind] += 1
            return None
        if status not in expect:
            self.stats.failures[kind] += 1
            return None
        self.stats.latencies[kind].append(time.perf_counter() - started)
        return body

    async def run(self, workers) -> Stats:
        self.deadline = time.monotonic() + self.seconds
        started = time.perf_counter()
        await asyncio.gather(*workers)
        self.stats.elapsed = time.perf_counter() - started
        return self.stats


def new_session(aiohttp, origin: str, limit: int = 1):
    """A client with its own cookies; the portal's cookies are Secure, and the client is the
    TLS end here, so its origin counts as secure."""
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[origin]),
        connector=aiohttp.TCPConnector(limit=limit, force_close=True),
        timeout=aiohttp.ClientTimeout(total=60))


@dataclass
class Resident:
    """A virtual user: a web session and an API token, both signed in."""

    user: int
    accounts: list[int]
    web: object = None
    token: str | None = None


async def web_signin(phase: Phase, portal: str, resident: Resident) -> bool:
    page = await phase.request(resident.web, "signin_form", "GET", f"{portal}/auth/")
    match = CSRF.search(page.decode()) if page else None
    if not match:
        return False
    done = await phase.request(
        resident.web, "signin", "POST", f"{portal}/auth/", expect=(302,),
        headers=referer(portal, "/auth/"),
        data={"csrf_token": match.group(1), "method": "phone", "login": username(resident.user),
              "password": PASSWORD})
    return done is not None


async def api_signin(phase: Phase, http, portal: str, resident: Resident) -> bool:
    import json

    body = await phase.request(http, "api_login", "POST", f"{portal}/api/v1/security/login",
                               json={"username": username(resident.user), "password": PASSWORD})
    if body is None:
        return False
    resident.token = json.loads(body)["access_token"]
    return True


def accounts_of(user: int, n: int) -> list[int]:
    extra = [user + d for d in (1, 2) if user % FAMILY_EVERY == 0 and user + d <= n]
    return [user, *extra]


def api_reads(portal: str, resident: Resident) -> list[tuple[str, str]]:
    account = resident.accounts[0]
    return [
        ("api_accounts", f"{portal}/api/v1/account/"),
        ("api_account", f"{portal}/api/v1/account/{account}"),
        ("api_invoices", f"{portal}/api/v1/invoice/?q=(page_size:6)"),
        ("api_invoices_20", f"{portal}/api/v1/invoice/?q=(page_size:20)"),
        ("api_charges", f"{portal}/api/v1/charge/?q=(page_size:6)"),
        ("api_charges_20", f"{portal}/api/v1/charge/?q=(page_size:20)"),
        ("api_meters", f"{portal}/api/v1/meter/"),
    ]


API_KINDS = {kind for kind, _url in api_reads("", Resident(1, [1]))}


async def cabinet_worker(phase: Phase, portal: str, resident: Resident) -> None:
    while phase.running():
        await phase.request(resident.web, "cabinet_page", "GET", f"{portal}/cabinet/")


async def api_worker(phase: Phase, http, portal: str, resident: Resident) -> None:
    headers = {"Authorization": f"Bearer {resident.token}"}
    reads = api_reads(portal, resident)
    i = 0
    while phase.running():
        kind, url = reads[i % len(reads)]
        i += 1
        await phase.request(http, kind, "GET", url, headers=headers)


async def bare_worker(phase: Phase, http, bare: str, n: int, rng: random.Random) -> None:
    while phase.running():
        await phase.request(http, "bare", "GET", f"{bare}/account/{rng.randint(1, n)}")


async def submit_reading(phase: Phase, portal: str, resident: Resident, rng) -> None:
    """The readings form, the check step, then the confirmation (a real, saved reading)."""
    account = rng.choice(resident.accounts)
    url = f"{portal}/cabinet/readings/{account}"
    page = await phase.request(resident.web, "readings_form", "GET", url)
    match = CSRF.search(page.decode()) if page else None
    if not match:
        return
    # Above October's reading (at most 10,000 + 6 x 349) by about a month's usage.
    value = str(10000 + 7 * (150 + account % 200) + rng.randint(0, 30))
    form = {"csrf_token": match.group(1), f"m{account}_t1": value}
    checked = await phase.request(resident.web, "readings_check", "POST", url,
                                  headers=referer(url), data={**form, "action": "check"})
    match = CSRF.search(checked.decode()) if checked else None
    if match:
        await phase.request(resident.web, "readings_confirm", "POST", url, expect=(302,),
                            headers=referer(url),
                            data={**form, "csrf_token": match.group(1), "action": "confirm",
                                  "confirmed": "1"})


async def mixed_worker(phase: Phase, http, portal: str, resident: Resident, n: int,
                       rng: random.Random) -> None:
    """A realistic mix: mostly the main page and the app's reads, now and then readings,
    bills and history pages, and a resident signing in afresh."""
    import aiohttp

    headers = {"Authorization": f"Bearer {resident.token}"}
    reads = api_reads(portal, resident)
    actions = ["cabinet"] * 35 + ["api"] * 35 + ["readings"] * 8 + ["bill"] * 8 + \
        ["history"] * 10 + ["signin"] * 4
    while phase.running():
        action = rng.choice(actions)
        account = rng.choice(resident.accounts)
        if action == "cabinet":
            await phase.request(resident.web, "cabinet_page", "GET", f"{portal}/cabinet/")
        elif action == "api":
            kind, url = rng.choice(reads)
            await phase.request(http, kind, "GET", url, headers=headers)
        elif action == "readings":
            await submit_reading(phase, portal, resident, rng)
        elif action == "bill":
            await phase.request(resident.web, "bills_page", "GET",
                                f"{portal}/cabinet/bills/{account}")
            month = rng.randrange(len(MONTHS))
            await phase.request(resident.web, "bill_pdf", "GET",
                                f"{portal}/cabinet/bills/invoice/"
                                f"{invoice_id(n, account, month)}.pdf")
        elif action == "history":
            page = rng.choice(["charges", "invoices", "payments", "readings-history"])
            await phase.request(resident.web, f"list_{page}", "GET",
                                f"{portal}/cabinet/{page}/list/")
        else:
            newcomer = Resident(rng.randint(1, n), [])
            newcomer.web = new_session(aiohttp, portal)
            try:
                await web_signin(phase, portal, newcomer)
            finally:
                await newcomer.web.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def report(name: str, stats: Stats) -> None:
    """One line per request type: successful count, failures, req/s, p50/p95/p99 (of the
    successful ones; none when every request of the type failed)."""
    print(f"  {name}: {stats.elapsed:.1f} s")
    print(f"    {'request':<22}{'count':>7}{'failed':>7}{'req/s':>9}{'p50 ms':>9}"
          f"{'p95 ms':>9}{'p99 ms':>9}")
    for kind in sorted(set(stats.latencies) | set(stats.failures)):
        values = stats.latencies.get(kind, [])
        times = (f"{1000 * statistics.median(values):>9.1f}"
                 f"{1000 * percentile(values, 0.95):>9.1f}{1000 * percentile(values, 0.99):>9.1f}"
                 if values else f"{'-':>9}" * 3)
        print(f"    {kind:<22}{len(values):>7}{stats.failures.get(kind, 0):>7}"
              f"{stats.rate({kind}):>9.1f}{times}")
    total = sum(len(v) for v in stats.latencies.values())
    print(f"    {'all':<22}{total:>7}{stats.failed():>7}{stats.rate():>9.1f}")


@dataclass
class Results:
    signin: Stats = field(default_factory=Stats)
    bare: Stats = field(default_factory=Stats)
    cabinet: Stats = field(default_factory=Stats)
    api: Stats = field(default_factory=Stats)
    mix: Stats = field(default_factory=Stats)

    def failed(self) -> int:
        """Failed requests of every phase: any of them makes the ratios worthless."""
        return sum(stats.failed() for stats in vars(self).values())


async def drive(portal: str, bare: str, n: int, seconds: float, concurrency: int, rounds: int,
                seed_value: int) -> Results:
    """Sign-ins, then ``rounds`` rounds of bare route / cabinet page / API reads (so that the
    machine's other load falls on all three alike), then the mix."""
    import aiohttp

    rng = random.Random(seed_value)
    cap = int(seconds * 5000)  # a bound on requests per phase beside the time
    http = new_session(aiohttp, portal, limit=concurrency)
    bare_http = new_session(aiohttp, bare, limit=concurrency)
    residents = [Resident(u, accounts_of(u, n))
                 for u in rng.sample(range(1, n + 1), concurrency)]
    results = Results()
    try:
        phase = Phase(10 * seconds, 4 * concurrency)
        for resident in residents:
            resident.web = new_session(aiohttp, portal)

        async def sign_in(resident: Resident) -> bool:
            return (await web_signin(phase, portal, resident)
                    and await api_signin(phase, http, portal, resident))

        started = time.perf_counter()
        signed_in = await asyncio.gather(*(sign_in(r) for r in residents))
        phase.stats.elapsed = time.perf_counter() - started
        results.signin = phase.stats
        report("sign-in (web form, then API token; scrypt each)", phase.stats)
        if not all(signed_in):
            raise SystemExit(f"{signed_in.count(False)} of {concurrency} residents could not "
                             f"sign in, {phase.stats.failed()} requests failed: no ratio is given")

        share = seconds / rounds
        for _ in range(rounds):
            phase = Phase(share, cap)
            results.bare.add(await phase.run(
                [bare_worker(phase, bare_http, bare, n, random.Random(rng.random()))
                 for _ in range(concurrency)]))
            phase = Phase(share, cap)
            results.cabinet.add(await phase.run(
                [cabinet_worker(phase, portal, r) for r in residents]))
            phase = Phase(share, cap)
            results.api.add(await phase.run([api_worker(phase, http, portal, r)
                                              for r in residents]))
        report(f"bare route ({rounds} rounds)", results.bare)
        report(f"cabinet main page ({rounds} rounds)", results.cabinet)
        report(f"API reads ({rounds} rounds)", results.api)

        phase = Phase(seconds, cap)
        results.mix = await phase.run(
            [mixed_worker(phase, http, portal, r, n, random.Random(rng.random()))
             for r in residents])
        report("realistic mix", results.mix)
    finally:
        await http.close()
        await bare_http.close()
        for resident in residents:
            if resident.web is not None:
                await resident.web.close()
    return results


def measure(args, database, redis_url: str) -> Results:
    """Seed the database unless it is reused, serve both apps on it, and drive them."""
    with tempfile.TemporaryDirectory(prefix="lk-load-") as instance:
        if database.created:
            started = time.perf_counter()
            seed(database.url, args.accounts, instance)
            print(f"{database.name}: seeded {args.accounts:,} accounts in "
                  f"{time.perf_counter() - started:.1f} s")
        else:
            print(f"{database.name}: reusing {args.accounts:,} seeded accounts")
        env = production_env(database.url, instance, redis_url)
        servers = [Server("portal", "run:app", env),
                   Server("bare", "bench.load:bare_app()", env)]
        try:
            portal, bare = servers
            portal.wait_ready("/auth/")
            bare.wait_ready("/account/1")
            print(f"gunicorn (gunicorn.conf.py, PRODUCTION=1): {WORKERS} sync workers each; "
                  f"{args.concurrency} connections; {args.seconds:g} s per kind of load")
            return asyncio.run(drive(portal.url, bare.url, args.accounts, args.seconds,
                                     args.concurrency, args.rounds, args.seed))
        finally:
            for server in servers:
                server.stop()


def main() -> None:
    from bench import databases

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=30,
                        help="time of each kind of load (split over the rounds), and the mix's")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16,
                        help="virtual users (connections) at a time")
    parser.add_argument("--database", type=databases.database_name,
                        default=databases.own_name("lk_load"),
                        help="PostgreSQL database to create and seed, dropped at the end "
                             "(default: lk_load_<pid>); one that exists is never dropped")
    parser.add_argument("--reuse", action="store_true",
                        help="use --database when it exists and holds --accounts accounts")
    parser.add_argument("--keep", action="store_true",
                        help="do not drop the database this run created (to --reuse it later)")
    parser.add_argument("--redis-url", default=databases.REDIS_URL,
                        help="an empty Redis database for the rate-limit counters and the job "
                             "queue, flushed at the end (default: BENCH_REDIS_URL, else a free "
                             "one of 1-15 leased)")
    parser.add_argument("--seed", type=int, default=20261130, help="of the random choices")
    args = parser.parse_args()
    if args.concurrency < 1 or args.accounts < args.concurrency or args.rounds < 1:
        parser.error("need --accounts >= --concurrency >= 1 and --rounds >= 1")

    with databases.redis_database(args.redis_url) as redis_url:
        if redis_url is None:
            where = args.redis_url or "redis://127.0.0.1:6379"
            raise SystemExit(f"Redis does not answer at {where}, or no database 1-15 is free: "
                             "production settings keep rate-limit counters there")
        with databases.postgres_database(
                args.database, keep=args.keep,
                reusable=lambda url: args.reuse and seeded_accounts(url) == args.accounts,
                hint=", or --reuse one that holds exactly --accounts accounts") as database:
            results = measure(args, database, redis_url)
    bare_rate = results.bare.rate()
    cabinet = results.cabinet.rate({"cabinet_page"})
    api = results.api.rate(API_KINDS)
    failed = results.failed()
    print(f"bare route {bare_rate:.1f} req/s; cabinet main page {cabinet:.1f} req/s; "
          f"API reads {api:.1f} req/s; failed {failed}")
    if failed:
        print(f"{failed} requests failed: no ratio is given")
        sys.exit(1)
    print(f"ratio cabinet_page {cabinet / bare_rate:.3f}")
    print(f"ratio api_read {api / bare_rate:.3f}")


if __name__ == "__main__":
    main()
