"""The billing run's SQL: the scratch tables of a run, the priced charge lines, the invoices
and the charges, as text for SQLite and PostgreSQL (app.services.billing runs them in order).

Energy is carried as whole thousandths of a kWh and rates as ten-thousandths of a ruble, so
that every product is an exact integer in either database; each line's amount is rounded
half-up to kopecks once. Range pricing lives here in SQL and in app.services.tariffs in Python
(for estimates), on purpose: tests/test_billing.py holds the two to the same result.
"""
from __future__ import annotations

import re


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


def _money(dialect: str, expr: str) -> str:
    """A sum of money columns rounded to kopecks on SQLite, whose NUMERIC is a binary float:
    0.1 + 0.2 is stored as 0.30000000000000004 otherwise. PostgreSQL's numeric is exact."""
    return f"ROUND({expr}, 2)" if dialect == "sqlite" else expr


#: Indexes of SQLite's scratch tables, created right after each is filled: its joins and
#: correlated sums probe them. PostgreSQL hashes, sorts and windows instead, and only needs
#: each table ANALYZEd.
SCRATCH_INDEXES = {
    "bill_accounts": "account_id",
    "bill_charged": "account_id",
    "bill_paid": "account_id",
    "bill_u": "account_id",
    "bill_caps": "scheme, range_no",
    "bill_rates": "tariff_group_id, zones, zone, range_no",
}


def _with_indexes(dialect: str, statements: list[str]) -> list[str]:
    out = []
    for sql in statements:
        out.append(sql)
        match = re.match(r"\s*CREATE TEMP TABLE (\w+)", sql)
        if match and dialect == "sqlite" and match[1] in SCRATCH_INDEXES:
            out.append(f"CREATE INDEX ix_{match[1]} ON {match[1]} ({SCRATCH_INDEXES[match[1]]})")
        if match and dialect == "postgresql":
            out.append(f"ANALYZE {match[1]}")
    return out


def _statements(dialect: str, branch: bool = False, parts: int = 1) -> list[str]:
    """The scratch tables of a run, in order, up to the priced charge lines. Parameters:
    :period, :prev_period (the month before), :prev_start (6 months back), :end_date, :norm
    (kWh), :estimate_months, :season; :branch when ``branch`` (one branch's run); :parts and
    :part when ``parts`` > 1 (the accounts whose id leaves that remainder)."""
    one_branch = ("AND a.branch_id = :branch " if branch else "") + (
        "AND a.id % :parts = :part" if parts > 1 else "")
    return [
        # Accounts to bill: active, not yet invoiced for the period; and for those invoiced
        # the month before (nearly all), that invoice (``since``), whose opening balance is
        # carried (kept here: joined again later on a column rather than the constant month,
        # PostgreSQL would read every month's invoices). The others (never invoiced, or not
        # last month) have their opening summed over their whole history.
        f"""CREATE TEMP TABLE bill_accounts AS
        SELECT a.id AS account_id, a.tariff_group_id,
          CASE WHEN a.large_family = :yes THEN 0 ELSE a.tariff_group_id END AS scheme,
          li.period AS since, li.issued_at AS since_issued, li.opening_balance AS since_opening
        FROM personal_account a
        LEFT JOIN invoice li ON li.account_id = a.id AND li.period = :prev_period
        WHERE a.status = 'active' AND a.opened_on < :end_date {one_branch}
          AND NOT EXISTS (SELECT 1 FROM invoice i
                          WHERE i.account_id = a.id AND i.period = :period)""",
        # Nor is last month's opening carried for an account with a payment changed since that
        # invoice was issued but dated before its month: one registered late, or refunded.
        # Found through the payments changed since last month began (an index on updated_at),
        # whatever the length of the history.
        """UPDATE bill_accounts SET since = NULL
        WHERE account_id IN (
          SELECT p.account_id FROM payment p JOIN bill_accounts b ON b.account_id = p.account_id
          WHERE p.updated_at >= :prev_start_at AND p.updated_at > b.since_issued
            AND COALESCE(p.paid_at, p.created_at) < :prev_start_at)""",
        _registers_statement(dialect),
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
        # The rates in force, with how many tariffs claim each key: more than one is an
        # overlap in the tariff book, refused before anything is charged.
        f"""CREATE TEMP TABLE bill_rates AS
        SELECT tariff_group_id, zones, zone, range_no, MIN(rate) AS rate,
          MIN({_milli_rate('rate')}) AS rate_milli, COUNT(*) AS tariffs
        FROM tariff
        WHERE effective_from <= :period AND (effective_to IS NULL OR effective_to > :period)
        GROUP BY tariff_group_id, zones, zone, range_no""",
        _lines_statement(dialect),
        *_totals_statements(dialect),
        *_movement_statements(dialect),
    ]


def _totals_statements(dialect: str) -> list[str]:
    """SQLite: each account's new lines in kopecks, keyed by the account as its rowid, so that
    the invoices look them up instead of building an index over a grouped subquery."""
    if dialect != "sqlite":
        return []
    return ["CREATE TEMP TABLE bill_totals (account_id INTEGER PRIMARY KEY, kopecks BIGINT)",
            """INSERT INTO bill_totals (account_id, kopecks)
            SELECT account_id, SUM(kopecks) FROM bill_lines GROUP BY account_id"""]


def _registers_statement(dialect: str) -> str:
    """Each billed register's consumption in kWh thousandths, and how it was found (metered,
    average, norm); an account without an active meter gets one register charged by the norm.

    The readings of each meter: the period's (the latest accepted), the last accepted one
    before it, and the oldest of the six months before that (for the average, only for a
    meter without the period's). A reading for a month after the meter's verification date
    (срок поверки) is not trusted and does not count: such a meter is billed as one without
    readings, by the average while that is allowed, then by the norm (Правила 354, п. 59-60).
    Whatever the length of the history, only the period and the month before are read in
    bulk; an older reading is looked up through the index (meter_id, period) for the meters
    that need one.

    PostgreSQL reads the two months in one pass in index order: the greatest (or least) array
    of a sort key (period, id) followed by the register values carries the chosen reading's
    values along; an index probe finds an older previous reading, and the oldest one, only
    where needed: a scalar subquery under a CASE on the outer row runs only when the CASE
    takes it (a lateral subquery gated by a condition still set up its sort for every meter,
    a fifth of this statement's time). SQLite probes its index per
    billed meter, cheaper there than sorting the readings; the unary plus keeps its planner
    off the (period, status) index, which would scan a whole month per meter. SQLite also
    marks the registers that are their account's only one (one meter, one zone, the common
    case), whose totals need no sum."""
    month = lambda column: _month_index(dialect, column)  # noqa: E731
    zones = ("(SELECT 1 AS zone_no, 'T1' AS zone UNION ALL SELECT 2, 'T2' "
             "UNION ALL SELECT 3, 'T3')")
    if dialect == "postgresql":
        key = ("CAST(CAST({0}period - DATE '2000-01-01' AS BIGINT) * 4294967296 + {0}id "
               "AS NUMERIC)")
        key_date = "(DATE '2000-01-01' + CAST(FLOOR(({0})[1] / 4294967296) AS INTEGER))"
        trusted = "(m.verification_due IS NULL OR {0} <= m.verification_due)".format
        cur_ok = f"(w.cur IS NOT NULL AND {trusted(':period')})"
        window_prev = f"(w.prev IS NOT NULL AND {trusted(key_date.format('w.prev'))})"
        prev = f"(CASE WHEN {window_prev} THEN w.prev ELSE p.prev END)"
        accepted = (f"FROM reading x WHERE x.meter_id = m.id AND x.status = 'accepted' "
                    f"AND {trusted('x.period')}")
        kwh, kind = _register_rules(
            has={"cur": cur_ok, "prev": f"{prev} IS NOT NULL", "old": "o.old IS NOT NULL"},
            value=lambda t: f"({ {'cur': 'w.cur', 'prev': prev, 'old': 'o.old'}[t]})"
                            "[z.zone_no + 1]",
            months=f"({month(key_date.format(prev))} - {month(key_date.format('o.old'))})",
            prev_period=key_date.format(prev), account="b.account_id", register="m.id")
        return f"""CREATE TEMP TABLE bill_u AS
        SELECT b.account_id, b.tariff_group_id, m.id AS meter_id,
          COALESCE(m.zones, 1) AS zones, b.scheme, z.zone, {kwh} AS kwh, {kind} AS kind
        FROM bill_accounts b
        LEFT JOIN meter m ON m.account_id = b.account_id AND m.active = :yes
        JOIN {zones} z
          ON z.zone_no <= COALESCE(m.zones, 1)
        LEFT JOIN (SELECT meter_id,
                     MAX(ARRAY[CAST(id AS NUMERIC), t1, t2, t3])
                       FILTER (WHERE period = :period) AS cur,
                     MAX(ARRAY[{key.format('')}, t1, t2, t3])
                       FILTER (WHERE period < :period) AS prev
                   FROM reading WHERE status = 'accepted'
                     AND period >= :prev_period AND period <= :period
                   GROUP BY meter_id) w ON w.meter_id = m.id
        LEFT JOIN LATERAL (SELECT CASE WHEN NOT {window_prev} THEN (
          SELECT ARRAY[{key.format('x.')}, x.t1, x.t2, x.t3] {accepted}
            AND x.period < :prev_period
          ORDER BY x.period DESC, x.id DESC LIMIT 1) END AS prev) p ON TRUE
        LEFT JOIN LATERAL (SELECT CASE WHEN NOT {cur_ok} THEN (
          SELECT ARRAY[{key.format('x.')}, x.t1, x.t2, x.t3] {accepted}
            AND x.period >= :prev_start AND x.period < :period
          ORDER BY x.period, x.id LIMIT 1) END AS old) o ON TRUE"""
    accepted = ("FROM reading x WHERE x.meter_id = {0} AND +x.status = 'accepted' "
                "AND ({1}.verification_due IS NULL OR x.period <= {1}.verification_due)")
    values = "CASE z.zone_no WHEN 1 THEN {0}.t1 WHEN 2 THEN {0}.t2 ELSE {0}.t3 END"
    kwh, kind = _register_rules(
        has={"cur": "c.id IS NOT NULL", "prev": "p.id IS NOT NULL", "old": "o.id IS NOT NULL"},
        value=lambda t: values.format(t[0]),
        months=f"({month('p.period')} - {month('o.period')})",
        prev_period="p.period", account="m.account_id",
        register="m.meter_id")
    return f"""CREATE TEMP TABLE bill_u AS
        WITH ids AS MATERIALIZED (
          SELECT b.account_id, b.tariff_group_id, b.scheme, m.id AS meter_id, m.zones,
            m.digit_capacity, m.verification_due,
            (SELECT COUNT(*) FROM meter n WHERE n.account_id = b.account_id) AS meters,
            (SELECT MAX(x.id) {accepted.format('m.id', 'm')} AND x.period = :period) AS cur_id,
            (SELECT x.id {accepted.format('m.id', 'm')} AND x.period < :period
             ORDER BY x.period DESC, x.id DESC LIMIT 1) AS prev_id
          FROM bill_accounts b
          LEFT JOIN meter m ON m.account_id = b.account_id AND m.active = :yes)
        SELECT m.account_id, m.tariff_group_id, m.meter_id, COALESCE(m.zones, 1) AS zones,
          m.scheme, CASE WHEN m.meters <= 1 AND COALESCE(m.zones, 1) = 1 THEN 1 END AS single,
          z.zone, {kwh} AS kwh, {kind} AS kind
        FROM ids m
        JOIN {zones} z
          ON z.zone_no <= COALESCE(m.zones, 1)
        LEFT JOIN reading c ON c.id = m.cur_id
        LEFT JOIN reading p ON p.id = m.prev_id
        LEFT JOIN reading o ON o.id = CASE WHEN m.cur_id IS NULL THEN (
          SELECT x.id {accepted.format('m.meter_id', 'm')} AND x.period >= :prev_start
            AND x.period < :period ORDER BY x.period, x.id LIMIT 1) END"""


def _estimated(account: str, register: str, prev_period: str, what: str) -> str:
    """``SUM(c.kwh)`` or ``COUNT(DISTINCT c.period)`` of the estimates (average, norm) charged
    for a register in the months after its meter's previous reading: what a real reading
    recalculates, and how many estimates in a row were charged. There are none when the
    previous reading is the month before's, the common case: then nothing is read at all."""
    return f"""(CASE WHEN {prev_period} < :prev_period THEN (
              SELECT {what} FROM charge c
              WHERE c.account_id = {account} AND c.meter_id = {register}
                AND c.zone = z.zone AND c.kind IN ('average', 'norm')
                AND c.period > {prev_period} AND c.period < :period) END)"""


def _register_rules(has: dict, value, months: str, prev_period: str, account: str,
                    register: str) -> tuple[str, str]:
    """The kWh (thousandths) and the kind of one register, from whether the meter has the
    period's reading (cur), a previous one (prev) and one six months back at most (old), a
    register's value in each (``value('cur')``), the months between prev and old, the period
    of prev and the account's and the meter's ids.

    With the period's reading: the consumption since the previous one (a rollover of the digit
    capacity counts), less the estimates charged since; the first reading ever is charged 0.
    Without it: the average month, if the history spans 3 months at least and fewer than
    :estimate_months estimates were charged in a row; otherwise the norm (on register 1)."""
    cur, prev, old = (value(t) for t in ("cur", "prev", "old"))
    estimated_kwh = _estimated(account, register, prev_period, "SUM(c.kwh)")
    estimated_months = _estimated(account, register, prev_period, "COUNT(DISTINCT c.period)")
    average = (f"{has['old']} AND {months} >= 3 "
               f"AND COALESCE({estimated_months}, 0) < :estimate_months AND {prev} >= {old}")
    kwh = f"""CASE
            WHEN {has['cur']} AND NOT ({has['prev']}) THEN 0
            WHEN {has['cur']} THEN
              {_milli(cur)} - {_milli(prev)}
              + CASE WHEN {cur} < {prev} THEN {_capacity_milli('m.digit_capacity')} ELSE 0 END
              - COALESCE({_milli(estimated_kwh)}, 0)
            WHEN {average} THEN ({_milli(prev)} - {_milli(old)}) / {months}
            WHEN z.zone_no = 1 THEN {_milli(':norm')}
            ELSE 0
          END"""
    kind = (f"CASE WHEN {has['cur']} THEN 'metered' WHEN {average} THEN 'average' "
            f"ELSE 'norm' END")
    return kwh, kind


def _lines_statement(dialect: str) -> str:
    """Charge lines, priced: registers x the ranges their account's total reaches, with the
    corner arithmetic of app.services.tariffs.price_consumption over the running consumption
    (registers in meter and zone order). Division happens only for a positive total: the
    first register (nothing before it) and the last (all of the total) fall out of the same
    expressions exactly. Lines of 0 kWh are left out; a line without a rate (or with two)
    stays, for the run to refuse.

    The account's total and the running total over its registers: window sums on PostgreSQL;
    on SQLite, where a window costs more than the rest of the statement, the register itself
    for an account's only register (whose part of each range is then the range's whole part)
    and a sum of the account's few rows through the index for the others."""
    corner = """(CASE WHEN cum = total THEN upper_cum WHEN last = 1 THEN cum
                      ELSE (2 * cum * upper_cum + total) / (2 * total) END)
                - (CASE WHEN cum_before = 0 THEN 0 WHEN last = 1 THEN cum_before
                        ELSE (2 * cum_before * upper_cum + total) / (2 * total) END)
                - (CASE WHEN lower_cum = 0 THEN 0 WHEN cum = total THEN lower_cum
                        ELSE (2 * cum * lower_cum + total) / (2 * total) END)
                + (CASE WHEN cum_before = 0 OR lower_cum = 0 THEN 0
                        ELSE (2 * cum_before * lower_cum + total) / (2 * total) END)"""
    if dialect == "postgresql":
        registers = """(SELECT account_id, tariff_group_id, meter_id, zones, zone, kind, kwh,
                  scheme, CAST(SUM(kwh) OVER (PARTITION BY account_id) AS BIGINT) AS total,
                  CAST(SUM(kwh) OVER (PARTITION BY account_id ORDER BY meter_id, zone
                                      ROWS UNBOUNDED PRECEDING) AS BIGINT) AS cum
                FROM bill_u)"""
        single = ""
    else:
        corner = f"CASE WHEN single = 1 THEN upper_cum - lower_cum ELSE {corner} END"
        single = "u.single, "
        registers = """(SELECT r.account_id, r.tariff_group_id, r.meter_id, r.zones, r.zone,
                  r.kind, r.kwh, r.scheme, r.single,
                  CASE WHEN r.single = 1 THEN r.kwh
                       ELSE (SELECT CAST(SUM(v.kwh) AS BIGINT) FROM bill_u v
                             WHERE v.account_id = r.account_id) END AS total,
                  CASE WHEN r.single = 1 THEN r.kwh
                       ELSE (SELECT CAST(SUM(v.kwh) AS BIGINT) FROM bill_u v
                             WHERE v.account_id = r.account_id
                               AND (v.meter_id < r.meter_id
                                    OR v.meter_id = r.meter_id AND v.zone <= r.zone))
                  END AS cum
                FROM bill_u r)"""
    # Both planners would otherwise copy the kWh expression into each place that uses it
    # (the filter, the amount): a no-op OFFSET or LIMIT keeps the subquery whole, computed
    # once per line.
    fence = "OFFSET 0" if dialect == "postgresql" else "LIMIT -1"
    return f"""CREATE TEMP TABLE bill_lines AS
        SELECT l.account_id, l.meter_id, l.zone, l.range_no, l.kind, l.kwh, t.rate, t.tariffs,
          {_kopecks('l.kwh * t.rate_milli')} AS kopecks
        FROM (SELECT account_id, tariff_group_id, meter_id, zones, zone, kind, range_no,
                {corner} AS kwh
              FROM (SELECT u.account_id, u.tariff_group_id, u.meter_id, u.zones, u.zone,
                      u.kind, c.range_no, {single}u.cum, u.cum - u.kwh AS cum_before, u.total,
                      CASE WHEN c.upper_milli IS NULL OR c.upper_milli >= u.total
                           THEN u.total ELSE c.upper_milli END AS upper_cum,
                      CASE WHEN u.total <= 0 THEN 0 ELSE c.lower_milli END AS lower_cum,
                      CASE WHEN c.upper_milli IS NULL OR c.upper_milli >= u.total
                           THEN 1 ELSE 0 END AS last
                    FROM {registers} u
                    JOIN bill_caps c ON c.scheme = u.scheme
                    WHERE c.range_no = 1 OR c.lower_milli < u.total) corners
              {fence}) l
        LEFT JOIN bill_rates t ON t.tariff_group_id = l.tariff_group_id AND t.zones = l.zones
          AND t.zone = l.zone AND t.range_no = l.range_no
        WHERE l.kwh <> 0"""


def _movement_statements(dialect: str) -> list[str]:
    """What each account was charged and paid, for its opening balance and this period.

    An account whose last invoice is last month's (``since``): that month's and this one's
    charges and payments, found through the period and paid_at indexes, two months of the
    ledger whatever its length. Any other: its whole history, through its account's index
    (CROSS JOIN keeps SQLite's planner from scanning the period index over all history for
    them instead). A payment is dated by paid_at (created_at when it has none, as the
    cabinet dates it) in the portal's time zone's months.

    PostgreSQL groups them by sorting, not in a hash table: a hash of two numeric sums per
    account takes some 800 bytes each (80 MB for 100,000 accounts, past the run's work_mem at
    a million, where it spilled to disk), and sorting the month's rows halved the time."""
    when = "COALESCE(p.paid_at, p.created_at)"
    hash_off, hash_on = (["SET LOCAL enable_hashagg = off"], ["SET LOCAL enable_hashagg = on"]) \
        if dialect == "postgresql" else ([], [])
    return hash_off + [
        """CREATE TEMP TABLE bill_charged AS
        SELECT account_id,
          SUM(CASE WHEN period < :period THEN amount END) AS before,
          SUM(CASE WHEN period = :period THEN amount END) AS now
        FROM (SELECT c.account_id, c.period, c.amount
              FROM charge c JOIN bill_accounts b ON b.account_id = c.account_id
              WHERE c.period >= :prev_period AND c.period <= :period
                AND b.since = :prev_period
              UNION ALL
              SELECT c.account_id, c.period, c.amount
              FROM bill_accounts b CROSS JOIN charge c
              WHERE c.account_id = b.account_id AND b.since IS NULL
                AND c.period <= :period) moved
        GROUP BY account_id""",
        f"""CREATE TEMP TABLE bill_paid AS
        SELECT account_id,
          SUM(CASE WHEN paid_on < :start THEN amount END) AS before,
          SUM(CASE WHEN paid_on >= :start THEN amount END) AS now
        FROM (SELECT p.account_id, {when} AS paid_on, p.amount
              FROM payment p JOIN bill_accounts b ON b.account_id = p.account_id
              WHERE p.paid_at >= :prev_start_at AND p.paid_at < :end
                AND p.status = 'succeeded' AND b.since = :prev_period
              UNION ALL
              SELECT p.account_id, {when} AS paid_on, p.amount
              FROM bill_accounts b CROSS JOIN payment p
              WHERE p.account_id = b.account_id AND b.since IS NULL
                AND {when} < :end AND p.status = 'succeeded') moved
        GROUP BY account_id""",
    ] + hash_on


def invoice_statement(dialect: str) -> str:
    """One invoice per account: opening + charged - paid = amount due, the opening carried
    from last month's invoice (its opening, plus what was charged and paid since its period
    began: adjustments and payments that came after it was issued count) or summed over the
    account's history (_movement_statements says when). Run before
    the lines become charges, so the period's charges already in the ledger (adjustments) and
    the new lines add up without counting anything twice."""
    lines = "bill_totals" if dialect == "sqlite" else (
        "(SELECT account_id, SUM(kopecks) AS kopecks FROM bill_lines GROUP BY account_id)")
    return f"""INSERT INTO invoice (number, account_id, period, opening_balance, charged, paid,
                                 amount_due, due_date, issued_at)
        SELECT :number_prefix || {_padded(dialect, 'account_id')}, account_id, :period,
          {_money(dialect, 'opening')}, {_money(dialect, 'charged')}, {_money(dialect, 'paid')},
          {_money(dialect, 'opening + charged - paid')}, :due, :now
        FROM (SELECT b.account_id,
                CASE WHEN b.since IS NULL THEN 0 ELSE COALESCE(b.since_opening, 0) END
                  + COALESCE(ch.before, 0)
                  - COALESCE(pay.before, 0) AS opening,
                COALESCE(ch.now, 0) + COALESCE({_value(dialect, 'l.kopecks', 2)}, 0)
                  AS charged,
                COALESCE(pay.now, 0) AS paid
              FROM bill_accounts b
              LEFT JOIN {lines} l ON l.account_id = b.account_id
              LEFT JOIN bill_charged ch ON ch.account_id = b.account_id
              LEFT JOIN bill_paid pay ON pay.account_id = b.account_id) totals"""


def charge_statement(dialect: str) -> str:
    """The priced lines into the ledger."""
    return f"""INSERT INTO charge (account_id, period, meter_id, zone, range_no, kwh, rate,
                                amount, kind, note, created_at)
        SELECT account_id, :period, meter_id, zone, range_no, {_value(dialect, 'kwh', 3)},
          rate, {_value(dialect, 'kopecks', 2)}, kind,
          CASE WHEN kind = 'average' THEN 'По среднему: показания не переданы'
               WHEN kind = 'norm' AND meter_id IS NULL THEN 'По нормативу: прибора учёта нет'
               WHEN kind = 'norm' THEN 'По нормативу: показания не переданы' END,
          :now
        FROM bill_lines"""


def _capacity_milli(column: str) -> str:
    """10 ** digit capacity, in kWh thousandths (no POWER() in every SQLite build)."""
    cases = " ".join(f"WHEN {d} THEN {10 ** d * 1000}" for d in range(1, 11))
    return f"(CASE {column} {cases} END)"


def _padded(dialect: str, column: str) -> str:
    """An id as eight digits with leading zeros (longer ids are kept whole)."""
    if dialect == "postgresql":
        return f"LPAD(CAST({column} AS TEXT), GREATEST(8, LENGTH(CAST({column} AS TEXT))), '0')"
    return f"printf('%08d', {column})"


def _milli_rate(expr: str) -> str:
    """A rate as whole ten-thousandths of a ruble."""
    return f"CAST(ROUND({expr} * 10000) AS BIGINT)"


def scratch_statements(dialect: str, branch: bool = False, parts: int = 1) -> list[str]:
    """The scratch tables of one run, in order, each followed by its index (SQLite) or its
    statistics (PostgreSQL)."""
    return _with_indexes(dialect, _statements(dialect, branch=branch, parts=parts))
