"""Long back-office work as background jobs (Celery: in-process by default, a worker when
configured), each a BackgroundJob row whose ``done``/``total`` the admin view shows as a
progress figure.

On PostgreSQL progress is written through its own short transactions, so the figure moves
while the job's own transaction is still open; SQLite allows one writer at a time, so there
the figure jumps to the end when the job commits."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.models import BackgroundJob
from app.services import audit, dispatch

Progress = Callable[[int, int], None]
#: kind -> handler(session, params, progress) -> a line for the job's message.
HANDLERS: dict[str, Callable[[Session, dict, Progress], str]] = {}


def handler(kind: str):
    def register(function):
        HANDLERS[kind] = function
        return function
    return register


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def create(session: Session, kind: str, title: str, params: dict,
           user_id: int | None) -> BackgroundJob:
    if kind not in HANDLERS:
        raise ValueError(f"unknown job kind {kind!r}")
    job = BackgroundJob(kind=kind, title=title, params=json.dumps(params), status="queued",
                        done=0, total=0, created_by_id=user_id)
    session.add(job)
    session.commit()
    audit.record(session, "job.queued", actor_id=user_id, object_type="job", object_id=job.id,
                 details={"kind": kind, **params})
    return job


def _progress_writer(session: Session, job_id: int) -> Progress:
    engine = session.get_bind()
    if engine.dialect.name == "sqlite":
        return lambda done, total: None

    def write(done: int, total: int) -> None:
        with engine.begin() as connection:
            connection.execute(update(BackgroundJob).where(BackgroundJob.id == job_id)
                               .values(done=done, total=total))
    return write


def execute(session: Session, job_id: int) -> BackgroundJob:
    """Run a queued job to its end; a failure is recorded on the job, not raised."""
    job = session.get(BackgroundJob, job_id)
    if job is None or job.status != "queued":
        return job
    job.status, job.started_at = "running", now()
    session.commit()
    progress = _progress_writer(session, job_id)
    try:
        message = HANDLERS[job.kind](session, json.loads(job.params or "{}"), progress)
    except Exception as error:  # recorded for the operator; the job's work was rolled back
        session.rollback()
        job = session.get(BackgroundJob, job_id)
        job.status, job.message = "failed", str(error)[:500]
    else:
        job = session.get(BackgroundJob, job_id)
        job.status, job.message = "done", message[:500]
        job.done = job.total = max(job.total, 1)
    job.finished_at = now()
    session.commit()
    audit.record(session, f"job.{job.status}", actor_id=job.created_by_id, object_type="job",
                 object_id=job.id, details={"kind": job.kind})
    return job


def start(session: Session, kind: str, title: str, params: dict,
          user_id: int | None) -> BackgroundJob:
    """Queue a job and hand it to Celery (run here and now in eager mode)."""
    job = create(session, kind, title, params, user_id)
    dispatch.enqueue("lk_portal.run_background_job", job.id)
    session.expire_all()
    return session.get(BackgroundJob, job.id)
