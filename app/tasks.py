"""Celery tasks: thin wrappers that call service functions with plain arguments."""
from __future__ import annotations

from app.extensions import db
from app.jobs import celery_app


@celery_app.task(name="lk_portal.ping_database")
def ping_database() -> int:
    """Count the branches: proves a worker reaches the same database as the web process."""
    from sqlalchemy import func, select

    from app.models import Branch

    return db.session.execute(select(func.count(Branch.id))).scalar_one()


@celery_app.task(name="lk_portal.run_background_job")
def run_background_job(job_id: int) -> str:
    """Run a back-office job (app.services.background) to its end; returns its status."""
    from app.services import background

    return background.execute(db.session, job_id).status
