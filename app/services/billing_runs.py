"""A period's billing run over the branches: one run per branch, each in its own transaction,
so that branches are billed in parallel by as many Celery workers as there are, a failed
branch is run again alone, and the period is complete when every branch is.

From the back office each branch is a background job of its own (its progress on the jobs
page); the command line bills the branches one after another in-process."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import BackgroundJob, Branch
from app.services import background, billing
from app.services.billing_guards import BillingError, check_period
from app.services.periods import local_today

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
    """The period's guards for each branch to be billed, before any work is queued."""
    for branch in chosen:
        try:
            check_period(session, period, today, int(config["READING_WINDOW_LAST_DAY"]),
                         force_reason, branch.id)
        except BillingError as error:
            raise BillingError(f"{branch.name}: {error}") from error


def start_jobs(session: Session, period: dt.date, config: Mapping[str, Any], user_id: int | None,
               force_reason: str | None = None,
               branch: str | int | None = None) -> list[BackgroundJob]:
    """One background job per branch (or the one given), after every branch's guards pass."""
    chosen = branches(session, branch)
    check_branches(session, period, local_today(config), config, force_reason, chosen)
    jobs = []
    for one in chosen:
        params = {"period": period.isoformat(), "branch_id": one.id, "user_id": user_id}
        if force_reason:
            params["force_reason"] = force_reason
        jobs.append(background.start(session, JOB_KIND,
                                     f"Расчёт начислений за {period:%m.%Y}: {one.name}",
                                     params, user_id))
    return jobs


def run_branches(session: Session, period: dt.date, config: Mapping[str, Any], *,
                 today: dt.date | None = None, force_reason: str | None = None,
                 branch: str | int | None = None,
                 progress: Callable[[Branch, int, int], None] | None = None,
                 ) -> list[BranchOutcome]:
    """Bill the branches one after another, each in its own transaction; a branch that fails
    is reported and the others still run."""
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
                                branch_id=params.get("branch_id"), progress=progress)
    return summary(result)


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
    """The state of a period from its branch jobs (the latest job of each branch counts)."""
    names = {b.id: b.name for b in branches(session)}
    latest: dict[int, BackgroundJob] = {}
    for job in sorted(jobs, key=lambda j: j.created_at):
        params = json.loads(job.params or "{}")
        if params.get("period") == period.isoformat() and params.get("branch_id") in names:
            latest[params["branch_id"]] = job
    done = [names[b] for b, j in latest.items() if j.status == "done"]
    failed = [names[b] for b, j in latest.items() if j.status == "failed"]
    pending = [name for b, name in names.items()
               if b not in latest or latest[b].status in ("queued", "running")]
    return PeriodState(period, sorted(done), sorted(failed), sorted(pending))
