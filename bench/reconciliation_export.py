"""Benchmark of the reconciliation act's .xlsx exporter against plain openpyxl.

For each number of rows, two measurements, each in a fresh subprocess (so that peak memory
is that measurement's own): both consume the same generated document rows (ActRow objects,
alternately an invoice in the debit column and a payment in the credit column) and write
a workbook to a file on disk, in openpyxl's write-only mode.

- project: the built-in exporter (app.plugins.act_xlsx via the ``register_act_exporters``
  hook's object): title, preamble, the two halves, balances, conclusion, signatures, merged
  cells and print setup around the rows;
- raw: openpyxl alone writing the same ten cells per row with the same number formats and
  borders, in the fastest plain way (one styled cell per column, refilled for every row);
  ``--naive`` adds, for information, the textbook way (a new styled cell for every value).

Prints seconds, rows per second, peak RSS of the process (and its growth while writing: flat
memory means the same figure for 10,000 and 1,000,000 rows) and the file size, then, last, one
line ``ratio act_export <project rows/s / raw rows/s>``: the lowest ratio over the sizes run.
The machine's load moves between two measurements: ``--repeat K`` alternates project and raw K
times and keeps the best of each. It needs no database and no Redis: the workbooks are written
to a temporary folder, removed at the end.

    .venv/bin/python bench/reconciliation_export.py                 # 10k, 100k and 1M rows
    .venv/bin/python bench/reconciliation_export.py --rows 100000
    .venv/bin/python bench/reconciliation_export.py --rows 10000 100000 --verify
    .venv/bin/python bench/reconciliation_export.py --rows 100000 --repeat 3

``--from-database`` times the whole path of a large act instead, from the database to the file:
it seeds one organization whose contract has N ledger rows (accounts x 25 months of an invoice
and a payment each, set-based) in a throwaway SQLite database and, when it answers, a
PostgreSQL database of its own (bench/databases.py: created, then dropped), analyses it, and
times in fresh subprocesses

- project: the large act's background job (app.services.act_jobs.run_document): totals in one
  aggregate query, rows streamed from server-side cursors into the .xlsx exporter;
- baseline: the ledger fetched whole (acts.ledgers: six queries, every row in a list, sorted
  in Python), then plain openpyxl write-only writing the same ten cells per row;

checks both wrote the same number of rows and totals, prints seconds, rows/s and peak RSS per
size and database (flat for the project: the same at 10,000 and 1,000,000 rows), and ends with
``ratio act_export_db <project rows/s / baseline rows/s>``, the lowest over sizes and databases.

    .venv/bin/python bench/reconciliation_export.py --from-database --rows 10000 100000 1000000
    .venv/bin/python bench/reconciliation_export.py --from-database --only sqlite
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_ROWS = (10_000, 100_000, 1_000_000)
SUPPLIER = {"name": "АО «НЭСК»", "inn": "2308000000", "kpp": "230801001"}
START = dt.date(2024, 1, 1)
OPENING = Decimal("1000.00")


def rows(n: int):
    """The same document rows for every measurement, generated (never a list in memory)."""
    from app.services.acts import ActRow

    for i in range(n):
        day = START + dt.timedelta(days=(i * 1000) // max(n, 1))
        if i % 2:
            yield ActRow(day, f"Оплата (п/п) от {day:%d.%m.%Y}", None,
                         Decimal(1000 + i % 997) / 4)
        else:
            yield ActRow(day, f"Счёт № {day:%Y%m}-{i:010d} от {day:%d.%m.%Y}",
                         Decimal(1500 + i % 991) / 4, None)


def totals(n: int) -> tuple[Decimal, Decimal]:
    debit = credit = Decimal(0)
    for row in rows(n):
        debit += row.debit or 0
        credit += row.credit or 0
    return debit, credit


def current_rss_kb() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def write_project(n: int, path: Path) -> int:
    from app.plugins.act_xlsx import register_act_exporters
    from app.services.acts import ActData

    exporter = next(e for e in register_act_exporters() if e.format == "xlsx")
    debit, credit = totals(n)  # known beforehand, as the service knows them from SQL
    data = ActData(SUPPLIER, "ООО «Большой потребитель»", "7700000000", "770001001",
                   "Иванов И. И.", "Д-1", START, START, dt.date(2026, 10, 31), OPENING,
                   rows(n), debit, credit)
    started = time.perf_counter()
    with path.open("wb") as stream:
        exporter.export(data, stream)
    return started


def write_raw(n: int, path: Path, naive: bool = False) -> float:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Border, Side
    from openpyxl.utils import get_column_letter

    thin = Side(style="thin", color="808080")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    formats = (None, "DD.MM.YYYY", None, "#,##0.00", "#,##0.00") + (None,) * 5
    started = time.perf_counter()
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Акт сверки")
    for index, width in enumerate((5.5, 11, 36, 14, 14) * 2, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width

    def styled(value=None, number_format=None):
        cell = WriteOnlyCell(sheet, value=value)
        cell.border = box
        if number_format:
            cell.number_format = number_format
        return cell

    if naive:
        for number, row in enumerate(rows(n), start=1):
            values = (number, row.date, row.document, row.debit, row.credit)
            sheet.append([styled(v, f) for v, f in zip(values + (None,) * 5, formats)])
    else:
        cells = [styled(None, f) for f in formats]
        for number, row in enumerate(rows(n), start=1):
            cells[0].value, cells[1].value, cells[2].value = number, row.date, row.document
            cells[3].value, cells[4].value = row.debit, row.credit
            sheet.append(cells)
    with path.open("wb") as stream:
        book.save(stream)
    return started


def verify(n: int, path: Path, first_row: int) -> None:
    """Read the workbook back: every row numbered, and the column sums as generated."""
    import openpyxl

    debit, credit = totals(n)
    sheet = openpyxl.load_workbook(path, read_only=True).active
    count, got_debit, got_credit = 0, Decimal(0), Decimal(0)
    for values in sheet.iter_rows(min_row=first_row, max_col=5, values_only=True):
        if not isinstance(values[0], int):
            break
        count += 1
        if values[0] != count:
            raise SystemExit(f"row {count} is numbered {values[0]}")
        got_debit += Decimal(str(values[3] or 0))
        got_credit += Decimal(str(values[4] or 0))
    if (count, got_debit, got_credit) != (n, debit, credit):
        raise SystemExit(f"read back {count} rows, {got_debit} / {got_credit}; "
                         f"wrote {n}, {debit} / {credit}")


def worker(kind: str, n: int, folder: str, check: bool) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    import openpyxl  # noqa: F401

    import app.plugins.act_xlsx  # noqa: F401  (imports outside the timing)
    import app.services.acts  # noqa: F401

    path = Path(folder) / f"{kind}_{n}.xlsx"
    before = current_rss_kb()
    if kind == "project":
        started = write_project(n, path)
    else:
        started = write_raw(n, path, naive=kind == "naive")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if check:
        verify(n, path, first_row=11 if kind == "project" else 1)
    print(json.dumps({"seconds": seconds, "peak_kb": peak, "growth_kb": peak - before,
                      "bytes": path.stat().st_size, "verified": check}))
    path.unlink()


LABELS = {"project": "project exporter (app.plugins.act_xlsx)",
          "raw": "raw openpyxl write-only, same cells",
          "naive": "raw openpyxl, a new styled cell per value"}


def measure(kind: str, n: int, folder: str, check: bool) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--rows", str(n), "--dir", folder]
    if check:
        command.append("--verify")
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"{kind} {n}: {result.stderr.strip()}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["rate"] = n / figures["seconds"]
    print(f"  {LABELS[kind]:<44} {figures['seconds']:8.2f} s {figures['rate']:>10,.0f} rows/s"
          f"   peak RSS {figures['peak_kb'] / 1024:6.1f} MB (+{figures['growth_kb'] / 1024:.1f}"
          f" MB while writing)   {figures['bytes'] / 1024:,.0f} KB"
          + ("   read back: same rows and sums" if figures["verified"] else ""))
    return figures


# ---------------------------------------------------------------------------------------------
# --from-database: the whole path of a large act, from the database to the file

DB_MONTHS = 25
DB_FIRST = dt.date(2024, 10, 1)
DB_PERIOD = (DB_FIRST, dt.date(2026, 10, 31))
DB_LABELS = {"db-project": "project: act_jobs job (stream -> exporter)",
             "db-baseline": "baseline: fetch all + openpyxl, same cells"}


def seed_ledger(url: str, n: int) -> int:
    """One organization, one contract, n / 50 accounts with an invoice (= the month's charge)
    and a payment in each of 25 months: n document rows. Returns the act's id."""
    from flask_appbuilder import Model as FabModel
    from sqlalchemy import create_engine, text

    import app.models  # noqa: F401  (the tables)
    from app.services.periods import add_months
    from bench.billing_run import numbers, settle

    accounts = max(n // (2 * DB_MONTHS), 1)
    engine = create_engine(url)
    FabModel.metadata.create_all(engine)
    dialect = engine.dialect.name
    rows = numbers(dialect, accounts)
    stamp = "{0} 10:00:00+00" if dialect == "postgresql" else "{0} 10:00:00.000000"
    no = "false" if dialect == "postgresql" else "0"
    amount = "ROUND((73500 + (i * 7919) % 900000) / 100.0, 2)"
    with engine.begin() as conn:
        for sql in (
            "INSERT INTO branch (id, code, name, city) VALUES (1, 'krd', "
            "'Краснодарэнергосбыт', 'Краснодар')",
            "INSERT INTO tariff_group (id, code, name) VALUES (1, 'org', 'Прочие потребители')",
            "INSERT INTO organization (id, name, inn, kpp, branch_id, director) VALUES "
            "(1, 'ООО «Большой потребитель»', '7700000000', '770001001', 1, 'Иванов И. И.')",
            "INSERT INTO contract (id, number, organization_id, branch_id, signed_on, "
            "valid_from, status) VALUES (1, 'Д-1', 1, 1, '2024-01-01', '2024-01-01', 'active')",
            "INSERT INTO premises (id, branch_id, locality, locality_type, street, house, "
            f"electric_stove, residents) VALUES (1, 1, 'Краснодар', 'urban', 'ул. Красная', "
            f"'1', {no}, 1)",
            f"INSERT INTO reconciliation_act (id, organization_id, contract_id, date_from, "
            f"date_to, status, requested_at) VALUES (1, 1, 1, '{DB_PERIOD[0]}', "
            f"'{DB_PERIOD[1]}', 'ready', '{stamp.format('2026-11-02')}')",
        ):
            conn.execute(text(sql))
        conn.execute(text(
            f"INSERT INTO personal_account (id, number, holder_name, premises_id, branch_id, "
            f"tariff_group_id, status, large_family, opened_on, contract_id) "
            f"SELECT i, CAST(230000000000 + i AS VARCHAR(13)), 'ООО «Большой потребитель»', 1, "
            f"1, 1, 'active', {no}, '2024-01-01', 1 FROM {rows}"))
        for k in range(DB_MONTHS):
            period = add_months(DB_FIRST, k)
            day, paid = period.isoformat(), stamp.format(period.replace(day=15))
            conn.execute(text(
                f"INSERT INTO charge (account_id, period, kwh, amount, kind, created_at) "
                f"SELECT i, '{day}', 100, {amount}, 'metered', '{stamp.format(day)}' "
                f"FROM {rows}"))
            conn.execute(text(
                f"INSERT INTO invoice (number, account_id, period, opening_balance, charged, "
                f"paid, amount_due, due_date, issued_at) "
                f"SELECT '{period:%Y%m}-' || CAST(i AS VARCHAR(12)), i, '{day}', 0, {amount}, "
                f"0, {amount}, '{add_months(period, 1)}', '{stamp.format(day)}' FROM {rows}"))
            conn.execute(text(
                f"INSERT INTO payment (account_id, amount, method, status, created_at, paid_at, "
                f"updated_at) SELECT i, ROUND((50000 + (i * 104729) % 700000) / 100.0, 2), "
                f"'bank', 'succeeded', '{paid}', '{paid}', '{paid}' FROM {rows}"))
    settle(engine)
    engine.dispose()
    return 1


def db_worker(kind: str, url: str, folder: str) -> None:
    """One measurement from the database to a file, in this (fresh) process: a JSON line."""
    import secrets

    from app import create_app
    from app.extensions import db
    from app.models import ReconciliationAct
    from app.services import act_jobs, acts

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                      "DEV_OUTBOX_DIR": folder, "ACT_EXPORT_DIR": folder,
                      "RATELIMIT_ENABLED": False})
    with app.app_context():
        tz = app.config.get("BABEL_DEFAULT_TIMEZONE", acts.DEFAULT_TZ)
        act = db.session.get(ReconciliationAct, 1)
        contract = act.contract
        contract.organization  # noqa: B018  (loaded outside the timing)
        before = current_rss_kb()
        started = time.perf_counter()
        if kind == "db-project":
            token = secrets.token_hex(16)
            steps = []
            act_jobs.run_document(db.session, {"organization_id": act.organization_id,
                                               "act_id": act.id, "format": "xlsx",
                                               "file": token},
                                  lambda done, total: steps.append((done, total)))
            seconds = time.perf_counter() - started
            path = act_jobs.document_path(token, "xlsx")
            count = steps[-1][0]
            _rows, _opening, debit, credit = act_jobs.totals(
                db.session, contract.id, act.date_from, act.date_to, tz)
        else:
            ledger = acts.ledgers(db.session, [contract.id], act.date_from, act.date_to,
                                  tz)[contract.id]
            path = Path(folder) / "baseline.xlsx"
            count = write_rows(ledger.rows, path)
            seconds = time.perf_counter() - started
            debit, credit = ledger.debit_total, ledger.credit_total
        db.session.remove()
        db.engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_kb": peak, "growth_kb": peak - before,
                      "bytes": path.stat().st_size, "rows": count, "debit": str(debit),
                      "credit": str(credit)}))
    path.unlink()


def write_rows(rows, path: Path) -> int:
    """Plain openpyxl write-only: the same ten cells per row as the exporter's."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Border, Side

    thin = Side(style="thin", color="808080")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Акт сверки")
    cells = []
    for number_format in (None, "DD.MM.YYYY", None, "#,##0.00", "#,##0.00") + (None,) * 5:
        cell = WriteOnlyCell(sheet)
        cell.border = box
        if number_format:
            cell.number_format = number_format
        cells.append(cell)
    count = 0
    for count, row in enumerate(rows, start=1):
        cells[0].value, cells[1].value, cells[2].value = count, row.date, row.document
        cells[3].value, cells[4].value = row.debit, row.credit
        sheet.append(cells)
    with path.open("wb") as stream:
        book.save(stream)
    return count


def measure_db(kind: str, url: str, folder: str) -> dict:
    command = [sys.executable, __file__, "--worker", kind, "--url", url, "--dir", folder]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise SystemExit(f"{kind}: {result.stderr.strip()[-2000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["rate"] = figures["rows"] / figures["seconds"]
    print(f"  {DB_LABELS[kind]:<44} {figures['seconds']:8.2f} s {figures['rate']:>10,.0f} "
          f"rows/s   peak RSS {figures['peak_kb'] / 1024:6.1f} MB "
          f"(+{figures['growth_kb'] / 1024:.1f} MB while building)   "
          f"{figures['bytes'] / 1024:,.0f} KB")
    return figures


def from_database(args) -> None:
    from contextlib import ExitStack

    from bench import databases

    names = [] if args.only == "postgresql" else ["sqlite"]
    if args.only != "sqlite":
        if databases.postgres_answers():
            names.append("postgresql")
        else:
            print(f"PostgreSQL skipped: no answer at {databases.PG_ADMIN_URL}")
    ratios = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            for n in args.rows:
                with ExitStack() as stack:
                    if name == "sqlite":
                        url = f"sqlite:///{folder}/bench-{n}.sqlite3"
                    else:
                        url = stack.enter_context(databases.postgres_database(
                            f"{args.database}_{n}")).url
                    started = time.perf_counter()
                    seed_ledger(url, n)
                    print(f"act_export_db {name}: {n:,} rows (seeded in "
                          f"{time.perf_counter() - started:.1f} s)")
                    best: dict[str, dict] = {}
                    for _ in range(max(args.repeat, 1)):
                        for kind in DB_LABELS:
                            figures = measure_db(kind, url, folder)
                            if kind not in best or figures["rate"] > best[kind]["rate"]:
                                best[kind] = figures
                    project, baseline = best["db-project"], best["db-baseline"]
                    same = ("rows", "debit", "credit")
                    if [project[k] for k in same] != [baseline[k] for k in same]:
                        raise SystemExit(f"project and baseline disagree: "
                                         f"{[project[k] for k in same]} vs "
                                         f"{[baseline[k] for k in same]}")
                    ratios[(name, n)] = project["rate"] / baseline["rate"]
                    print(f"  same rows and totals: {project['rows']:,} rows, debit "
                          f"{project['debit']}, credit {project['credit']}; project / baseline:"
                          f" {ratios[(name, n)]:.3f}")
                    if name == "sqlite":
                        Path(f"{folder}/bench-{n}.sqlite3").unlink()
    print(f"ratio act_export_db {min(ratios.values()):.3f}")


def database_name(value: str) -> str:
    from bench.databases import database_name as checked

    return checked(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=list(DEFAULT_ROWS),
                        help="numbers of document rows (default: 10000 100000 1000000)")
    parser.add_argument("--naive", action="store_true",
                        help="also time the textbook openpyxl way (a new cell per value)")
    parser.add_argument("--verify", action="store_true",
                        help="read every workbook back and check its rows and sums")
    parser.add_argument("--repeat", type=int, default=1,
                        help="alternate the measurements this many times, keep the best")
    parser.add_argument("--from-database", action="store_true",
                        help="time the large act's whole path, from a seeded database to the "
                             "file, against fetch-all + openpyxl")
    parser.add_argument("--only", choices=("sqlite", "postgresql"),
                        help="with --from-database: one database only")
    parser.add_argument("--database", type=database_name,
                        default=f"lk_bench_acts_{os.getpid()}",
                        help="with --from-database: the PostgreSQL databases' name prefix "
                             "(<name>_<rows>, created and dropped; existing ones are refused)")
    parser.add_argument("--worker", choices=(*LABELS, *DB_LABELS), help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker in DB_LABELS:
        db_worker(args.worker, args.url, args.dir)
        return
    if args.worker:
        worker(args.worker, args.rows[0], args.dir, args.verify)
        return
    if args.from_database:
        from_database(args)
        return
    ratios = {}
    with tempfile.TemporaryDirectory() as folder:
        for n in args.rows:
            print(f"act_export: {n:,} rows")
            best: dict[str, dict] = {}
            for _ in range(max(args.repeat, 1)):
                for kind in ("project", "raw", "naive") if args.naive else ("project", "raw"):
                    figures = measure(kind, n, folder, args.verify)
                    if kind not in best or figures["rate"] > best[kind]["rate"]:
                        best[kind] = figures
            project, raw = best["project"], best["raw"]
            ratios[n] = project["rate"] / raw["rate"]
            print(f"  project / raw: {ratios[n]:.3f}")
    print(f"ratio act_export {min(ratios.values()):.3f}")


if __name__ == "__main__":
    main()
