"""A period's billing run over the branches: one run per branch, each in its own transaction,
so that branches are billed in parallel by as many Celery workers as there are, a failed
branch is run again alone, and the period is complete when every branch is.

From the back office each branch is a background job of its own (its progress on the jobs
page); the command line bills the branches one after another in-process. When the last of
them is done, complete_period checks the month's ledger keys in one pass (on PostgreSQL)."""
from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.models import BackgroundJob, Branch, PersonalAccount
from app.services import background, billing, ledger_partitions
from app.services.billing_guards import (
    BillingError,
    check_future,
    check_sequence,
    check_window,
)
from app.services.periods import add_months, local_today

JOB_KIND = "billing.run"


@dataclass(frozen=True)
class BranchOutcome:
    branch: Branch
    result: billing.RunResult | None
    error: str | None = None


def branches(session: Session, code_or_id: str | int | None = None) -> list[Branch]:
    """Every branch, by name; or the one named by its code or id (BillingError if none)."""
    if code_or_id is None:
        return list(session.execute(select(Branch).order_by(Branch.name)).scalars())
    key = str(code_or_id).strip()
    condition = Branch.id == int(key) if key.isdigit() else Branch.code == key
    found = session.execute(select(Branch).where(condition)).scalar_one_or_none()
    if found is None:
        raise BillingError(f"Филиал «{key}» не найден: укажите его код или номер.")
    return [found]


def check_branches(session: Session, period: dt.date, today: dt.date,
                   config: Mapping[str, Any], force_reason: str | None,
                   chosen: list[Branch]) -> None:
    """The period's guards (billing_guards.check_period), before any work is queued: each
    branch's sequence of billed months named by the branch, the calendar's once."""
    check_future(period, today)
    for branch in chosen:
        try:
            check_sequence(session, period, branch.id)
        except BillingError as error:
            raise BillingError(f"{branch.name}: {error}") from error
    check_window(period, today, int(config["READING_WINDOW_LAST_DAY"]), force_reason)


def parts_of(session: Session, config: Mapping[str, Any]) -> dict[int, int]:
    """How many parts each branch is billed in: its active accounts over
    BILLING_TASK_ACCOUNTS (at least one), so that no task holds a branch far larger than the
    others and the largest branch does not set the length of the whole run."""
    size = max(int(config.get("BILLING_TASK_ACCOUNTS") or 0), 1)
    counts = session.execute(
        select(PersonalAccount.branch_id, func.count(PersonalAccount.id))
        .where(PersonalAccount.status == "active")
        .group_by(PersonalAccount.branch_id)).all()
    return {branch_id: max(1, math.ceil(count / size)) for branch_id, count in counts}


def start_jobs(session: Session, period: dt.date, config: Mapping[str, Any], user_id: int | None,
               force_reason: str | None = None,
               branch: str | int | None = None) -> list[BackgroundJob]:
    """One background job per branch (or the one given), or per part of a large branch, after
    every branch's guards pass."""
    chosen = branches(session, branch)
    check_branches(session, period, local_today(config), config, force_reason, chosen)
    parts = parts_of(session, config)
    jobs = []
    for one in chosen:
        count = parts.get(one.id, 1)
        for part in range(count):
            params = {"period": period.isoformat(), "branch_id": one.id, "user_id": user_id}
            title = f"Расчёт начислений за {period:%m.%Y}: {one.name}"
            if count > 1:
                params.update(part=part, parts=count)
                title += f" (часть {part + 1} из {count})"
            if force_reason:
                params["force_reason"] = force_reason
            jobs.append(background.start(session, JOB_KIND, title, params, user_id))
    return jobs


def run_branches(session: Session, period: dt.date, config: Mapping[str, Any], *,
                 today: dt.date | None = None, force_reason: str | None = None,
                 branch: str | int | None = None,
                 progress: Callable[[Branch, int, int], None] | None = None,
                 ) -> list[BranchOutcome]:
    """Bill the branches one after another, each in its own transaction; a branch that fails
    is reported and the others still run. When none failed, the period is completed
    (complete_period): a row with a broken key raises LedgerKeysError after the branches'
    work is kept."""
    today = today or local_today(config)
    chosen = branches(session, branch)
    check_branches(session, period, today, config, force_reason, chosen)
    outcomes = []
    for one in chosen:
        step = (lambda done, total, one=one: progress(one, done, total)) if progress else None
        try:
            result = billing.run_period(session, period, **billing.settings(config),
                                        today=today, force_reason=force_reason,
                                        branch_id=one.id, progress=step)
        except Exception as error:  # reported per branch; its run was rolled back
            session.rollback()
            outcomes.append(BranchOutcome(one, None, str(error)))
        else:
            outcomes.append(BranchOutcome(one, result))
    if all(outcome.result is not None for outcome in outcomes):
        complete_period(session, period)
    return outcomes


def summary(result: billing.RunResult) -> str:
    return (f"Период {result.period:%m.%Y}: лицевых счетов {result.accounts}, строк "
            f"начислений {result.charges}, счетов {result.invoices}.")


@background.handler(JOB_KIND)
def billing_job(session: Session, params: dict, progress) -> str:
    """One branch's run (or, for a job queued before runs went per branch, every branch's in
    one transaction) as a background job."""
    from flask import current_app

    config = current_app.config
    result = billing.run_period(session, dt.date.fromisoformat(params["period"]),
                                **billing.settings(config), actor_id=params.get("user_id"),
                                today=local_today(config),
                                force_reason=params.get("force_reason"),
                                branch_id=params.get("branch_id"), part=params.get("part", 0),
                                parts=params.get("parts", 1), progress=progress)
    complete_period(session, result.period)
    return summary(result)


def billed_whole(session: Session, period: dt.date) -> bool:
    """Whether every account a run of the period bills (active, opened before the month
    ended) has its invoice for it: every branch and part is done, however they were run."""
    return not session.execute(text(
        "SELECT EXISTS (SELECT 1 FROM personal_account a WHERE a.status = 'active' "
        "AND a.opened_on < :end AND NOT EXISTS (SELECT 1 FROM invoice i "
        "WHERE i.account_id = a.id AND i.period = :period))"),
        {"period": period, "end": add_months(period, 1)}).scalar()


def complete_period(session: Session, period: dt.date) -> list[str] | None:
    """After a branch's run: if the period is now billed whole, check the month's ledger keys
    in one set-based pass (ledger_partitions.check_month) and return the keys validated ([]
    when they were already); None while branches remain, or off PostgreSQL. Decided by the
    data, not by the jobs, so that the last of two branches finishing at once completes the
    month whichever it is (each commits its rows before it looks). A broken key raises
    LedgerKeysError naming the rows: the month stays incomplete, the branches' rows stay, and
    running any branch of the period again (it bills nothing new) retries the check."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return None
    whole = billed_whole(session, period)
    if isinstance(bind, Engine):
        session.commit()  # nothing of this session's may wait on the keys' locks
    if not whole:
        return None
    return ledger_partitions.check_month(bind, period)


@dataclass(frozen=True)
class PeriodState:
    """How far a period's run has come: branches whose job is done, of all branches."""
    period: dt.date
    done: list[str]
    failed: list[str]
    pending: list[str]

    @property
    def complete(self) -> bool:
        return not self.failed and not self.pending


def period_state(session: Session, period: dt.date, jobs: list[BackgroundJob]) -> PeriodState:
    """The state of a period from its branch jobs: the latest job of each branch and part
    counts, and a branch is done when each of its latest parts is."""
    names = {b.id: b.name for b in branches(session)}
    latest: dict[int, dict[tuple[int, int], BackgroundJob]] = {}
    for job in sorted(jobs, key=lambda j: (j.created_at, j.id)):
        params = json.loads(job.params or "{}")
        if params.get("period") == period.isoformat() and params.get("branch_id") in names:
            runs = latest.setdefault(params["branch_id"], {})
            parts = params.get("parts", 1)
            if any(count != parts for _part, count in runs):
                runs.clear()  # started again in another number of parts: the new ones count
            runs[(params.get("part", 0), parts)] = job
    states = {b: {j.status for j in runs.values()} for b, runs in latest.items()}
    done = [names[b] for b, s in states.items() if s == {"done"}]
    failed = [names[b] for b, s in states.items() if "failed" in s]
    pending = [name for b, name in names.items()
               if b not in states or (states[b] != {"done"} and "failed" not in states[b])]
    return PeriodState(period, sorted(done), sorted(failed), sorted(pending))
