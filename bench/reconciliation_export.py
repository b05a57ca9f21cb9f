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
    parser.add_argument("--worker", choices=tuple(LABELS), help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.rows[0], args.dir, args.verify)
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
