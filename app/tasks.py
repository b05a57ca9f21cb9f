"""Celery tasks: thin wrappers that call service functions with plain arguments."""
from __future__ import annotations

import datetime as dt
import time

from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.jobs import celery_app
from app.models import Branch
from app.services import (
    act_exports,
    autopay,
    background,
    channels,
    mailing_unsubscribe,
    mailings,
    notice_events,
    periods,
    sessions,
    signin_alerts,
)


@celery_app.task(name="lk_portal.ping_database")
def ping_database() -> int:
    """Count the branches: proves a worker reaches the same database as the web process."""
    return db.session.execute(select(func.count(Branch.id))).scalar_one()


@celery_app.task(name="lk_portal.run_background_job")
def run_background_job(job_id: int) -> str:
    """Run a back-office job (app.services.background) to its end; returns its status."""
    return background.execute(db.session, job_id).status


@celery_app.task(name="lk_portal.deliver_mailing", bind=True, max_retries=None)
def deliver_mailing(self, mailing_id: int) -> dict:
    """Send a mailing's due messages; come back when retries are due. Redelivered after a
    worker's death (acks late) under the same task id, it resumes its own claimed rows."""
    config = current_app.config
    worker = self.request.id or "in-process"
    settings = mailings.Settings.from_config(config)

    def once(deadline: float | None = None) -> mailings.Outcome:
        return mailings.deliver(
            db.session, mailing_id, worker, channels.bulk_mailer(), settings,
            lambda user_id: mailing_unsubscribe.unsubscribe_link(config, user_id), deadline)

    if self.request.is_eager:
        outcome = mailings.wait_and_deliver(once)
    else:
        outcome = once(time.monotonic() + settings.task_seconds)
        if outcome.out_of_time:
            deliver_mailing.delay(mailing_id)
        elif outcome.retry_in is not None:
            raise self.retry(countdown=max(1.0, outcome.retry_in))
    return {"sent": outcome.sent, "failed": outcome.failed}


@celery_app.task(name="lk_portal.prune_act_exports")
def prune_act_exports() -> int:
    """Delete the branch exports of acts past their keeping time; returns how many."""
    return act_exports.prune_archives()


@celery_app.task(name="lk_portal.prune_sessions")
def prune_sessions() -> int:
    """Delete the sign-ins that ended or expired; returns how many."""
    return sessions.prune(db.session)


@celery_app.task(name="lk_portal.send_notices")
def send_notices(event: str, day: str | None = None) -> int:
    """Send the event notices of ``event`` (notice_events.SCHEDULED) due on ``day`` (ISO date;
    default: today, local time) that were not sent yet; returns how many went out."""
    today = dt.date.fromisoformat(day) if day else None
    return notice_events.run_scheduled(db.session, event, today)


@celery_app.task(name="lk_portal.send_signin_alert")
def send_signin_alert(user_id: int, attempts: int, at: str) -> int:
    """Tell the owner of ``user_id`` of the burst of failed sign-ins seen at ``at`` (ISO)."""
    return signin_alerts.tell_owner(db.session, user_id, attempts, dt.datetime.fromisoformat(at))


@celery_app.task(name="lk_portal.run_autopay")
def run_autopay(day: str | None = None) -> dict:
    """Charge the bills autopay is due to pay on ``day`` (ISO date; default: today, local
    time); a repeated run charges nothing twice."""
    today = dt.date.fromisoformat(day) if day else periods.local_today(current_app.config)
    result = autopay.run(db.session, today)
    return {"charged": result.charged, "declined": result.declined, "failed": result.failed,
            "amount": str(result.amount)}
