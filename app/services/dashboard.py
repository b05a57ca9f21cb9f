"""The counters on the staff home page, within the user's branch scope."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import models as m
from app.services.scoping import branch_condition


@dataclass(frozen=True)
class StaffCounters:
    """What waits for the back office: active accounts and the queues to work through."""

    active_accounts: int
    readings_to_review: int
    new_applications: int
    new_feedback: int


def staff_counters(session: Session, branch_id: int | None) -> StaffCounters:
    """Count in one round trip; ``branch_id`` None means every branch."""

    def count(model, condition):
        query = select(func.count()).select_from(model).where(condition)
        if branch_id is not None:
            query = query.where(branch_condition(model, branch_id))
        return query.scalar_subquery()

    row = session.execute(select(
        count(m.PersonalAccount, m.PersonalAccount.status == "active"),
        count(m.Reading, m.Reading.status == "flagged"),
        count(m.ContractApplication, m.ContractApplication.status == "new"),
        count(m.Feedback, m.Feedback.status == "new"),
    )).one()
    return StaffCounters(*row)
