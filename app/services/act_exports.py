"""The branch export: the reconciliation acts of every organization of a branch for a period,
written in a background job into one .zip that finance downloads from «Выгрузка актов сверки».

The archives, and the files of large acts (app.services.act_jobs), are kept in one folder for
ACT_EXPORT_KEEP_DAYS. Each act is built as in app.services.acts, the ledgers read for
BATCH_CONTRACTS contracts at a time.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from app.models import BackgroundJob, Branch, Contract, Organization
from app.services import background
from app.services.acts import (
    ActData,
    ActError,
    _config,
    _id,
    check_period,
    contract_act_data,
    exporters,
    formats,
    ledgers,
)
from app.services.periods import DEFAULT_TZ

#: Contracts whose ledger is read at once by the batch export.
BATCH_CONTRACTS = 200
#: The background job of the branch export.
JOB_KIND = "acts.export"


def export_dir(config: Mapping[str, Any] | None = None) -> Path:
    """Where finished archives are kept: ACT_EXPORT_DIR, else <instance>/act_exports."""
    config = _config(config)
    configured = config.get("ACT_EXPORT_DIR")
    folder = Path(configured) if configured else Path(current_app.instance_path) / "act_exports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def prune_archives(config: Mapping[str, Any] | None = None,
                   now: dt.datetime | None = None) -> int:
    """Delete the archives and large acts' files (and any half-written one of a worker that
    died) older than ACT_EXPORT_KEEP_DAYS: they can be made again, and a branch's acts of
    every organization should not pile up on disk. Returns how many files went."""
    config = _config(config)
    now = now or dt.datetime.now(dt.timezone.utc)
    oldest = (now - dt.timedelta(days=int(config.get("ACT_EXPORT_KEEP_DAYS", 7)))).timestamp()
    folder, pruned = export_dir(config), 0
    for path in [*folder.glob("acts_*.zip"), *folder.glob("acts_*.part"),
                 *folder.glob("act_*")]:  # the large acts' files (app.services.act_jobs)
        if path.stat().st_mtime < oldest:
            path.unlink(missing_ok=True)
            pruned += 1
    return pruned


def archive_path(token: str, config: Mapping[str, Any] | None = None) -> Path:
    """The archive of a job, named by the random token the portal gave the job when it was
    queued: never by anything a user typed."""
    if not re.fullmatch(r"[0-9a-f]{32}", str(token or "")):
        raise ValueError("not an archive token")
    return export_dir(config) / f"acts_{token}.zip"


def job_archive(job: BackgroundJob, config: Mapping[str, Any] | None = None) -> Path | None:
    """The finished archive of a branch export job, or None (not an export, not finished,
    or the file is gone)."""
    if job is None or job.kind != JOB_KIND or job.status != "done":
        return None
    try:
        path = archive_path(json.loads(job.params or "{}").get("archive"), config)
    except ValueError:
        return None
    return path if path.is_file() else None


def start_batch(session: Session, user_id: int | None, branch_id: int | str,
                date_from: dt.date | str, date_to: dt.date | str,
                fmts: Sequence[str] = ("xlsx",), today: dt.date | None = None) -> BackgroundJob:
    """Queue the export of the acts of every organization of a branch for a period."""
    start, end = check_period(date_from, date_to, today)
    key = _id(branch_id)
    branch = session.get(Branch, key) if key is not None else None
    if branch is None:
        raise ActError("Выберите филиал.")
    offered = formats()
    chosen = [f for f in offered if f in set(fmts)]
    if not chosen or len(chosen) != len(set(fmts)):
        raise ActError(f"Выберите формат актов: {', '.join(offered)}.")
    title = (f"Акты сверки: {branch.name}, {start:%d.%m.%Y}–{end:%d.%m.%Y}")[:160]
    return background.start(session, JOB_KIND, title,
                            {"branch_id": branch.id, "date_from": start.isoformat(),
                             "date_to": end.isoformat(), "formats": chosen,
                             "archive": secrets.token_hex(16)},
                            user_id)


def branch_contracts(session: Session, branch_id: int) -> list[Contract]:
    """The contracts of the branch's organizations, with their organizations: one query."""
    return list(session.execute(
        select(Contract).join(Organization, Organization.id == Contract.organization_id)
        .where(Organization.branch_id == branch_id)
        .options(joinedload(Contract.organization))
        .order_by(Organization.name, Contract.number)).scalars())


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _archive_name(data: ActData, organization: Organization | None, ext: str,
                  used: set[str]) -> str:
    """«<ИНН>_<name>/Акт_сверки_<contract>_<from>_<to>.<ext>», unique within the archive."""
    who = re.sub(r"[^0-9A-Za-zА-Яа-яЁё_-]+", "_", organization.name if organization else "")
    base = f"{organization.inn if organization else 'без_ИНН'}_{who.strip('_')[:60]}/{data.stem}"
    name, n = f"{base}.{ext}", 1
    while name in used:
        n += 1
        name = f"{base}_{n}.{ext}"
    used.add(name)
    return name


@background.handler(JOB_KIND)
def run_batch(session: Session, params: dict, progress: background.Progress) -> str:
    """Write every act of the branch into the job's archive (a temporary file renamed into
    place at the end, so a half-written archive is never offered)."""
    app = current_app  # the job runs inside the app's context (app.jobs)
    branch_id = int(params["branch_id"])
    start = dt.date.fromisoformat(params["date_from"])
    end = dt.date.fromisoformat(params["date_to"])
    fmts = list(params.get("formats") or ["xlsx"])
    tz = app.config.get("BABEL_DEFAULT_TIMEZONE", DEFAULT_TZ)
    registry = exporters(app)
    prune_archives(app.config)  # also where no Celery beat runs (development, demo)
    contracts = branch_contracts(session, branch_id)
    total = len(contracts) * len(fmts)
    target = archive_path(params["archive"], app.config)
    partial = target.with_suffix(".part")
    done, used = 0, set()
    progress(0, total)
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for chunk in _chunks(contracts, BATCH_CONTRACTS):
                books = ledgers(session, [c.id for c in chunk], start, end, tz)
                for contract in chunk:
                    data = contract_act_data(session, contract, start, end, app.config,
                                             ledger=books[contract.id])
                    for fmt in fmts:
                        name = _archive_name(data, contract.organization,
                                             registry[fmt].extension, used)
                        with archive.open(name, "w", force_zip64=True) as member:
                            registry[fmt].export(data, member)
                        done += 1
                        progress(done, total)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return f"Готово: актов сверки — {len(contracts)}, файлов в архиве — {done}."


def batch_params(job: BackgroundJob) -> dict:
    return json.loads(job.params or "{}")
