"""The monthly billing run: charges for every account of a period, then one invoice each.

Set-based: a handful of INSERT ... SELECT statements over all accounts, the same on SQLite and
PostgreSQL, never a Python loop over rows. Energy is carried as whole thousandths of a kWh and
rates as ten-thousandths of a ruble, so that every product is an exact integer in either
database; each line's amount is rounded half-up to kopecks once.

The rules (domain.md, sections 5 and 6):
- a meter with an accepted reading in the period is charged its consumption since the last
  accepted reading (a rollover of its digit capacity counts), less what was already charged
  for it as an estimate since then (the recalculation when a real reading arrives);
- a meter without one is charged its average month (history of at least 3 months, at most 6)
  for up to ESTIMATE_BY_AVERAGE_MONTHS months in a row, then the consumption norm; an account
  without an active meter is charged the norm every month (BILLING_NORM_KWH per account,
  the same value as for meters);
- consumption ranges apply to an account's total of all meters and registers, each range's kWh
  shared between the registers in proportion to their consumption (the same arithmetic as
  app.services.tariffs.price_consumption); large families pay range 1 for everything;
- an invoice: opening balance (charges before the period minus payments before it), charged,
  paid within the period, amount due, due date, a unique number.

Idempotent: accounts that already have the period's invoice are skipped, so running a period
twice changes nothing and a billed (closed) period is never billed again; later corrections
go into the open period through the recalculation above.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session
from sqlalchemy.types import Date, DateTime

from app.services import audit, background
from app.services.periods import add_months
from app.services.tariffs import season_of

#: Temporary tables of one run, dropped at its end.
SCRATCH = ("bill_accounts", "bill_readings", "bill_estimated", "bill_u", "bill_caps",
           "bill_lines")


class BillingError(Exception):
    """A run that must not happen (a period in the future, ...); safe to show."""


@dataclass(frozen=True)
class RunResult:
    period: dt.date
    accounts: int
    charges: int
    invoices: int


def first_of_month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def parse_period(text_value: str) -> dt.date:
    """'2026-10' or '10.2026' -> 2026-10-01, with a Russian message otherwise."""
    raw = (text_value or "").strip()
    for fmt in ("%Y-%m", "%m.%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(raw, fmt).date().replace(day=1)
        except ValueError:
            continue
    raise BillingError(f"Период «{raw}» не распознан: укажите месяц как 2026-10.")


def _month_index(dialect: str, column: str) -> str:
    """An integer month number (year * 12 + month) of a date column, per dialect."""
    if dialect == "sqlite":
        return (f"(CAST(strftime('%Y', {column}) AS INTEGER) * 12 "
                f"+ CAST(strftime('%m', {column}) AS INTEGER))")
    return f"(CAST(EXTRACT(YEAR FROM {column}) AS INTEGER) * 12 " \
           f"+ CAST(EXTRACT(MONTH FROM {column}) AS INTEGER))"


def _milli(expr: str) -> str:
    """A kWh value as whole thousandths."""
    return f"CAST(ROUND({expr} * 1000) AS BIGINT)"


def _kopecks(product: str) -> str:
    """Round half-up (away from zero) a kWh-thousandths x rate-ten-thousandths product
    (units of 1e-7 ruble) to kopecks."""
    return (f"(CASE WHEN ({product}) >= 0 THEN (({product}) + 50000) / 100000 "
            f"ELSE -((50000 - ({product})) / 100000) END)")


def _value(dialect: str, expr: str, places: int) -> str:
    """Whole units of 10^-places back to a decimal value for a Numeric column."""
    scale = 10 ** places
    if dialect == "postgresql":
        return f"(CAST({expr} AS NUMERIC) / {scale})"
    return f"(({expr}) / {float(scale)!r})"


#: Indexes of the scratch tables, created right after each is filled (joins stay linear).
SCRATCH_INDEXES = {
    "bill_accounts": "account_id",
    "bill_u": "account_id",
    "bill_readings": "meter_id",
    "bill_estimated": "meter_id, zone",
    "bill_caps": "scheme, range_no",
}


def _with_indexes(dialect: str, statements: list[str]) -> list[str]:
    out = []
    for sql in statements:
        out.append(sql)
        match = re.match(r"\s*CREATE TEMP TABLE (\w+)", sql)
        if match and match[1] in SCRATCH_INDEXES:
            out.append(f"CREATE INDEX ix_{match[1]} ON {match[1]} ({SCRATCH_INDEXES[match[1]]})")
        if match and dialect == "postgresql":
            out.append(f"ANALYZE {match[1]}")
    return out


def _statements(dialect: str) -> list[str]:
    """The run's SQL, in order. Parameters: :period, :prev_start (6 months back), :start and
    :end (the period's first instant and the next month's), :norm (kWh), :estimate_months,
    :season, :due."""
    zone_value = ("CASE z.zone_no WHEN 1 THEN r.{t}_t1 WHEN 2 THEN r.{t}_t2 "
                  "ELSE r.{t}_t3 END")
    return [
        # Accounts to bill: active, not yet invoiced for the period.
        """CREATE TEMP TABLE bill_accounts AS
        SELECT a.id AS account_id, a.tariff_group_id,
          CASE WHEN a.large_family = :yes THEN 0 ELSE a.tariff_group_id END AS scheme
        FROM personal_account a
        WHERE a.status = 'active' AND a.opened_on < :end_date
          AND NOT EXISTS (SELECT 1 FROM invoice i
                          WHERE i.account_id = a.id AND i.period = :period)""",
        _readings_statement(dialect),
        # kWh already charged as estimates since the last reading, per meter and register.
        """CREATE TEMP TABLE bill_estimated AS
        SELECT c.meter_id, c.zone, SUM(c.kwh) AS kwh, COUNT(DISTINCT c.period) AS months
        FROM charge c JOIN bill_readings p ON p.meter_id = c.meter_id
        WHERE c.kind IN ('average', 'norm') AND c.period > p.prev_period
          AND c.period < :period
        GROUP BY c.meter_id, c.zone""",
        # Each active meter's consumption per register, in kWh thousandths; an account
        # without an active meter gets one register charged by the norm.
        f"""CREATE TEMP TABLE bill_u AS
        SELECT m.account_id, b.tariff_group_id, m.id AS meter_id, m.zones, b.scheme,
          'T' || CAST(z.zone_no AS VARCHAR(1)) AS zone,
          CASE
            WHEN r.has_cur = 1 AND r.has_prev IS NULL THEN 0
            WHEN r.has_cur = 1 THEN
              {_milli(zone_value.format(t='cur'))} - {_milli(zone_value.format(t='prev'))}
              + CASE WHEN {zone_value.format(t='cur')} < {zone_value.format(t='prev')}
                     THEN {_capacity_milli('m.digit_capacity')} ELSE 0 END
              - COALESCE({_milli('e.kwh')}, 0)
            WHEN r.has_old = 1 AND r.has_cur IS NULL AND r.prev_month - r.old_month >= 3
                 AND COALESCE(e.months, 0) < :estimate_months
                 AND {zone_value.format(t='prev')} >= {zone_value.format(t='old')} THEN
              ({_milli(zone_value.format(t='prev'))} - {_milli(zone_value.format(t='old'))})
              / (r.prev_month - r.old_month)
            WHEN z.zone_no = 1 THEN {_milli(':norm')}
            ELSE 0
          END AS kwh,
          CASE
            WHEN r.has_cur = 1 THEN 'metered'
            WHEN r.has_old = 1 AND r.has_cur IS NULL AND r.prev_month - r.old_month >= 3
                 AND COALESCE(e.months, 0) < :estimate_months
                 AND {zone_value.format(t='prev')} >= {zone_value.format(t='old')}
              THEN 'average'
            ELSE 'norm'
          END AS kind
        FROM meter m
        JOIN bill_accounts b ON b.account_id = m.account_id
        JOIN (SELECT 1 AS zone_no UNION ALL SELECT 2 UNION ALL SELECT 3) z
          ON z.zone_no <= m.zones
        LEFT JOIN bill_readings r ON r.meter_id = m.id
        LEFT JOIN bill_estimated e
          ON e.meter_id = m.id AND e.zone = 'T' || CAST(z.zone_no AS VARCHAR(1))
        WHERE m.active = :yes
        UNION ALL
        SELECT b.account_id, b.tariff_group_id, NULL, 1, b.scheme, 'T1', {_milli(':norm')},
          'norm'
        FROM bill_accounts b
        WHERE NOT EXISTS (SELECT 1 FROM meter m
                          WHERE m.account_id = b.account_id AND m.active = :yes)""",
        # The season's range bounds of every tariff group, and scheme 0 (large families, and
        # groups without limits): one range without an upper bound.
        f"""CREATE TEMP TABLE bill_caps AS
        SELECT tariff_group_id AS scheme, range_no,
          COALESCE(LAG(upper_milli) OVER (PARTITION BY tariff_group_id ORDER BY range_no), 0)
            AS lower_milli,
          upper_milli
        FROM (SELECT r.tariff_group_id, r.range_no, {_milli('r.upper_kwh')} AS upper_milli
              FROM consumption_range r
              WHERE r.season = :season AND r.effective_from <= :period
                AND (r.effective_to IS NULL OR r.effective_to > :period)
                AND r.upper_kwh IS NOT NULL
              UNION ALL
              SELECT g.tariff_group_id, COUNT(*) + 1, NULL
              FROM consumption_range g
              WHERE g.season = :season AND g.effective_from <= :period
                AND (g.effective_to IS NULL OR g.effective_to > :period)
                AND g.upper_kwh IS NOT NULL
              GROUP BY g.tariff_group_id
              UNION ALL
              SELECT id, 1, NULL FROM tariff_group
              WHERE id NOT IN (SELECT tariff_group_id FROM consumption_range
                               WHERE season = :season AND upper_kwh IS NOT NULL)
              UNION ALL
              SELECT 0, 1, NULL) caps""",
        # Charge lines: registers x the ranges their account's total reaches, with the corner
        # arithmetic of app.services.tariffs.price_consumption over the running consumption
        # (registers in meter and zone order). A window function would do the running sum,
        # but costs SQLite more than the rest of the statement: most accounts have one
        # register, and the rest sum their few rows through the index. Division happens only
        # for a positive total: the first register (nothing before it) and the last (all of
        # the total) fall out of the same expressions exactly.
        f"""CREATE TEMP TABLE bill_lines AS
        SELECT account_id, tariff_group_id, meter_id, zones, zone, kind, range_no,
          (CASE WHEN cum = total THEN upper_cum WHEN last = 1 THEN cum
                ELSE (2 * cum * upper_cum + total) / (2 * total) END)
          - (CASE WHEN cum_before = 0 THEN 0 WHEN last = 1 THEN cum_before
                  ELSE (2 * cum_before * upper_cum + total) / (2 * total) END)
          - (CASE WHEN lower_cum = 0 THEN 0 WHEN cum = total THEN lower_cum
                  ELSE (2 * cum * lower_cum + total) / (2 * total) END)
          + (CASE WHEN cum_before = 0 OR lower_cum = 0 THEN 0
                  ELSE (2 * cum_before * lower_cum + total) / (2 * total) END)
          AS kwh
        FROM (SELECT u.account_id, u.tariff_group_id, u.meter_id, u.zones, u.zone, u.kind,
                c.range_no, u.cum, u.cum - u.kwh AS cum_before, u.total,
                CASE WHEN c.upper_milli IS NULL OR c.upper_milli >= u.total THEN u.total
                     ELSE c.upper_milli END AS upper_cum,
                CASE WHEN u.total <= 0 THEN 0 ELSE c.lower_milli END AS lower_cum,
                CASE WHEN c.upper_milli IS NULL OR c.upper_milli >= u.total THEN 1 ELSE 0 END
                  AS last
              FROM (SELECT r.account_id, r.tariff_group_id, r.meter_id, r.zones, r.zone,
                      r.kind, r.kwh, r.scheme, a.total,
                      CASE WHEN a.n = 1 THEN r.kwh
                           ELSE (SELECT CAST(SUM(v.kwh) AS BIGINT) FROM bill_u v
                                 WHERE v.account_id = r.account_id
                                   AND (v.meter_id < r.meter_id
                                        OR v.meter_id = r.meter_id AND v.zone <= r.zone))
                      END AS cum
                    FROM (SELECT account_id, CAST(SUM(kwh) AS BIGINT) AS total,
                            COUNT(*) AS n
                          FROM bill_u GROUP BY account_id) a
                    JOIN bill_u r ON r.account_id = a.account_id) u
              JOIN bill_caps c ON c.scheme = u.scheme
              WHERE c.range_no = 1 OR c.lower_milli < u.total) corners""",
        # The charges, priced at the tariff in force.
        f"""INSERT INTO charge (account_id, period, meter_id, zone, range_no, kwh, rate, amount,
                                kind, note, created_at)
        SELECT l.account_id, :period, l.meter_id, l.zone, l.range_no,
          {_value(dialect, 'l.kwh', 3)}, t.rate,
          {_value(dialect, _kopecks(f"l.kwh * {_milli_rate('t.rate')}"), 2)},
          l.kind,
          CASE WHEN l.kind = 'average' THEN 'По среднему: показания не переданы'
               WHEN l.kind = 'norm' AND l.meter_id IS NULL
                 THEN 'По нормативу: прибора учёта нет'
               WHEN l.kind = 'norm' THEN 'По нормативу: показания не переданы' END,
          :now
        FROM bill_lines l
        JOIN tariff t ON t.tariff_group_id = l.tariff_group_id AND t.zones = l.zones
          AND t.zone = l.zone AND t.range_no = l.range_no AND t.effective_from <= :period
          AND (t.effective_to IS NULL OR t.effective_to > :period)
        WHERE l.kwh <> 0""",
        # One invoice per account: opening + charged - paid = amount due.
        f"""INSERT INTO invoice (number, account_id, period, opening_balance, charged, paid,
                                 amount_due, due_date, issued_at)
        SELECT :number_prefix || {_padded(dialect, 'b.account_id')},
          b.account_id, :period,
          COALESCE(ch.before, 0) - COALESCE(pay.before, 0),
          COALESCE(ch.now, 0),
          COALESCE(pay.now, 0),
          COALESCE(ch.before, 0) - COALESCE(pay.before, 0) + COALESCE(ch.now, 0)
            - COALESCE(pay.now, 0),
          :due, :now
        FROM bill_accounts b
        LEFT JOIN (SELECT account_id,
                     SUM(CASE WHEN period < :period THEN amount END) AS before,
                     SUM(CASE WHEN period = :period THEN amount END) AS now
                   FROM charge WHERE period <= :period
                   GROUP BY account_id) ch ON ch.account_id = b.account_id
        LEFT JOIN (SELECT account_id,
                     SUM(CASE WHEN paid_at < :start THEN amount END) AS before,
                     SUM(CASE WHEN paid_at >= :start THEN amount END) AS now
                   FROM payment WHERE status = 'succeeded' AND paid_at < :end
                   GROUP BY account_id) pay ON pay.account_id = b.account_id""",
    ]


def _readings_statement(dialect: str) -> str:
    """For each meter: the period's reading (the latest accepted), the last accepted one before
    it, and the oldest of the six months before that (for the average).

    PostgreSQL: one pass with window functions. SQLite: three index probes per meter of the
    billed accounts into (meter_id, period, ...), cheaper there than sorting the readings;
    the unary plus keeps the planner off the (period, status) index, which would scan a
    whole month per meter."""
    month = lambda column: _month_index(dialect, column)  # noqa: E731
    if dialect == "sqlite":
        accepted = "FROM reading x WHERE x.meter_id = m.id AND +x.status = 'accepted'"
        return f"""CREATE TEMP TABLE bill_readings AS
        SELECT ids.meter_id,
          CASE WHEN c.id IS NOT NULL THEN 1 END AS has_cur,
          c.t1 AS cur_t1, c.t2 AS cur_t2, c.t3 AS cur_t3,
          CASE WHEN p.id IS NOT NULL THEN 1 END AS has_prev, p.period AS prev_period,
          {month('p.period')} AS prev_month, p.t1 AS prev_t1, p.t2 AS prev_t2, p.t3 AS prev_t3,
          CASE WHEN o.id IS NOT NULL THEN 1 END AS has_old, {month('o.period')} AS old_month,
          o.t1 AS old_t1, o.t2 AS old_t2, o.t3 AS old_t3
        FROM (SELECT m.id AS meter_id,
                (SELECT MAX(x.id) {accepted} AND x.period = :period) AS cur_id,
                (SELECT x.id {accepted} AND x.period < :period
                 ORDER BY x.period DESC, x.id DESC LIMIT 1) AS prev_id,
                (SELECT x.id {accepted} AND x.period >= :prev_start AND x.period < :period
                 ORDER BY x.period, x.id LIMIT 1) AS old_id
              FROM meter m JOIN bill_accounts b ON b.account_id = m.account_id
              WHERE m.active = :yes) ids
        LEFT JOIN reading c ON c.id = ids.cur_id
        LEFT JOIN reading p ON p.id = ids.prev_id
        LEFT JOIN reading o ON o.id = ids.old_id"""
    return f"""CREATE TEMP TABLE bill_readings AS
        SELECT meter_id,
          MAX(CASE WHEN is_cur = 1 AND newest = 1 THEN 1 END) AS has_cur,
          MAX(CASE WHEN is_cur = 1 AND newest = 1 THEN t1 END) AS cur_t1,
          MAX(CASE WHEN is_cur = 1 AND newest = 1 THEN t2 END) AS cur_t2,
          MAX(CASE WHEN is_cur = 1 AND newest = 1 THEN t3 END) AS cur_t3,
          MAX(CASE WHEN is_cur = 0 AND newest = 1 THEN 1 END) AS has_prev,
          MAX(CASE WHEN is_cur = 0 AND newest = 1 THEN period END) AS prev_period,
          MAX(CASE WHEN is_cur = 0 AND newest = 1 THEN {month('period')} END) AS prev_month,
          MAX(CASE WHEN is_cur = 0 AND newest = 1 THEN t1 END) AS prev_t1,
          MAX(CASE WHEN is_cur = 0 AND newest = 1 THEN t2 END) AS prev_t2,
          MAX(CASE WHEN is_cur = 0 AND newest = 1 THEN t3 END) AS prev_t3,
          MAX(CASE WHEN recent = 1 AND oldest = 1 THEN 1 END) AS has_old,
          MAX(CASE WHEN recent = 1 AND oldest = 1 THEN {month('period')} END) AS old_month,
          MAX(CASE WHEN recent = 1 AND oldest = 1 THEN t1 END) AS old_t1,
          MAX(CASE WHEN recent = 1 AND oldest = 1 THEN t2 END) AS old_t2,
          MAX(CASE WHEN recent = 1 AND oldest = 1 THEN t3 END) AS old_t3
        FROM (
          SELECT meter_id, period, t1, t2, t3, is_cur, recent,
            ROW_NUMBER() OVER (PARTITION BY meter_id, is_cur
                               ORDER BY period DESC, id DESC) AS newest,
            ROW_NUMBER() OVER (PARTITION BY meter_id, recent ORDER BY period, id) AS oldest
          FROM (SELECT meter_id, period, id, t1, t2, t3,
                  CASE WHEN period = :period THEN 1 ELSE 0 END AS is_cur,
                  CASE WHEN period >= :prev_start AND period < :period THEN 1 ELSE 0 END
                    AS recent
                FROM reading WHERE period <= :period AND status = 'accepted') r
        ) ranked
        GROUP BY meter_id"""


def _capacity_milli(column: str) -> str:
    """10 ** digit capacity, in kWh thousandths (no POWER() in every SQLite build)."""
    cases = " ".join(f"WHEN {d} THEN {10 ** d * 1000}" for d in range(1, 11))
    return f"(CASE {column} {cases} END)"


def _padded(dialect: str, column: str) -> str:
    """An id as eight digits with leading zeros (longer ids are kept whole)."""
    if dialect == "postgresql":
        return f"LPAD(CAST({column} AS TEXT), GREATEST(8, LENGTH(CAST({column} AS TEXT))), '0')"
    return (f"(CASE WHEN LENGTH(CAST({column} AS TEXT)) >= 8 THEN CAST({column} AS TEXT) "
            f"ELSE SUBSTR('00000000' || CAST({column} AS TEXT), -8, 8) END)")


#: Charge lines to price; the INSERT must have priced every one of them.
LINES_TO_PRICE = "SELECT COUNT(*) FROM bill_lines WHERE kwh <> 0"


def _milli_rate(expr: str) -> str:
    """A rate as whole ten-thousandths of a ruble."""
    return f"CAST(ROUND({expr} * 10000) AS BIGINT)"


def settings(config) -> dict:
    """The run's configurable rules (config.py)."""
    return {"norm_kwh": int(config["BILLING_NORM_KWH"]),
            "estimate_months": int(config["ESTIMATE_BY_AVERAGE_MONTHS"]),
            "due_day": int(config["PAYMENT_DUE_DAY"])}


def run_period(session: Session, period: dt.date, *, norm_kwh: int, estimate_months: int,
               due_day: int, actor_id: int | None = None, today: dt.date | None = None,
               progress=None) -> RunResult:
    """Bill one period for every account not yet billed for it. ``progress(done, total)`` is
    called after each statement (the CLI's bar, the admin view's figure)."""
    period = first_of_month(period)
    today = today or dt.date.today()
    if period > first_of_month(today):
        raise BillingError(f"Нельзя выставить счета за будущий период {period:%m.%Y}.")
    connection = session.connection()
    dialect = connection.dialect.name
    start = dt.datetime.combine(period, dt.time(), dt.timezone.utc)
    end_date = add_months(period, 1)
    end = dt.datetime.combine(end_date, dt.time(), dt.timezone.utc)
    prev_start = (period.replace(day=1) - dt.timedelta(days=183)).replace(day=1)
    params = {
        "period": period, "prev_start": prev_start, "start": start, "end": end,
        "end_date": end_date, "norm": norm_kwh, "estimate_months": estimate_months,
        "season": season_of(period), "due": end_date.replace(day=due_day),
        "now": dt.datetime.now(dt.timezone.utc), "yes": True, "no": False,
        "number_prefix": f"{period:%Y%m}-",
    }
    types = [bindparam(name, type_=Date()) for name in ("period", "prev_start", "end_date",
                                                        "due")]
    types += [bindparam(name, type_=DateTime(timezone=True)) for name in ("start", "end",
                                                                          "now")]
    statements = _with_indexes(dialect, _statements(dialect))
    if dialect == "postgresql":
        # The scratch tables look tiny to the planner until analysed: JIT then spent seconds
        # compiling each statement, and hash aggregates of the invoices spilled to disk.
        connection.execute(text("SET LOCAL jit = off"))
        connection.execute(text("SET LOCAL work_mem = '64MB'"))
    _drop_scratch(connection)
    counts = {}
    try:
        for done, sql in enumerate(statements, start=1):
            names = set(re.findall(r":(\w+)", sql))
            statement = text(sql).bindparams(*[b for b in types if b.key in names])
            used = {k: v for k, v in params.items() if k in names}
            result = connection.execute(statement, used)
            counts[done] = result.rowcount
            if sql.lstrip().startswith("INSERT INTO charge"):
                _refuse_unpriced(connection, period, result.rowcount)
            if progress:
                progress(done, len(statements))
        accounts = connection.execute(text("SELECT COUNT(*) FROM bill_accounts")).scalar_one()
        _drop_scratch(connection)
    except Exception:
        session.rollback()
        raise
    result = RunResult(period, accounts, max(counts[len(statements) - 1], 0),
                       max(counts[len(statements)], 0))
    audit.record(session, "billing.run", actor_id=actor_id, object_type="period",
                 object_id=period.isoformat(), commit=False,
                 details={"accounts": result.accounts, "charges": result.charges,
                          "invoices": result.invoices})
    session.commit()
    return result


def _refuse_unpriced(connection, period: dt.date, priced: int) -> None:
    """A line whose tariff is missing would silently drop out of the INSERT's join: refuse
    the whole run instead (the caller rolls it back)."""
    missing = connection.execute(text(LINES_TO_PRICE)).scalar_one() - priced
    if missing > 0:
        raise BillingError(f"Нет тарифа для {missing} строк начислений за {period:%m.%Y}: "
                           "заполните тарифы и диапазоны потребления, затем повторите расчёт.")
    if missing < 0:
        raise BillingError(f"Тарифы за {period:%m.%Y} пересекаются по датам действия: одной "
                           "строке начислений подходит больше одного тарифа. Исправьте "
                           "справочник тарифов, затем повторите расчёт.")


def _drop_scratch(connection) -> None:
    for name in SCRATCH:
        connection.execute(text(f"DROP TABLE IF EXISTS {name}"))


@background.handler("billing.run")
def billing_job(session: Session, params: dict, progress) -> str:
    """The billing run as a background job started from the back office."""
    from flask import current_app

    result = run_period(session, dt.date.fromisoformat(params["period"]),
                        **settings(current_app.config), actor_id=params.get("user_id"),
                        progress=progress)
    return (f"Период {result.period:%m.%Y}: лицевых счетов {result.accounts}, строк "
            f"начислений {result.charges}, счетов {result.invoices}.")
