"""Which rows a branch-scoped user (a branch operator) may see: one rule per kind of table."""
from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.sql.elements import ColumnElement

from app import models as m


def branch_condition(model: type, branch_id: int) -> ColumnElement[bool]:
    """A SQL condition selecting the rows of ``model`` that belong to ``branch_id``."""
    accounts = select(m.PersonalAccount.id).where(m.PersonalAccount.branch_id == branch_id)
    if model is m.Branch:
        return m.Branch.id == branch_id
    if model is m.PortalUser:
        bound_users = select(m.AccountBinding.user_id).where(
            m.AccountBinding.account_id.in_(accounts)
        )
        return or_(m.PortalUser.branch_id == branch_id, m.PortalUser.id.in_(bound_users))
    if model is m.Reading:
        meters = select(m.Meter.id).where(m.Meter.account_id.in_(accounts))
        return m.Reading.meter_id.in_(meters)
    if model is m.ReconciliationAct:
        orgs = select(m.Organization.id).where(m.Organization.branch_id == branch_id)
        return m.ReconciliationAct.organization_id.in_(orgs)
    if hasattr(model, "branch_id"):
        return model.branch_id == branch_id
    if hasattr(model, "account_id"):
        return model.account_id.in_(accounts)
    raise TypeError(f"{model.__name__} has no branch scope rule")


def in_branch(session, obj, branch_id: int) -> bool:
    """Whether an object (new or existing) lies inside ``branch_id``, for add and edit checks."""
    model = type(obj)
    if hasattr(obj, "branch_id") and model is not m.PortalUser:
        return obj.branch_id == branch_id
    if model is m.Reading:
        meter = session.get(m.Meter, obj.meter_id) if obj.meter_id else None
        return meter is not None and in_branch(session, meter, branch_id)
    if hasattr(obj, "account_id"):
        account = session.get(m.PersonalAccount, obj.account_id) if obj.account_id else None
        return account is not None and account.branch_id == branch_id
    if model is m.PortalUser:
        if obj.branch_id == branch_id:
            return True
        if obj.id is None:
            return False
        return session.execute(
            select(m.PortalUser.id).where(m.PortalUser.id == obj.id,
                                          branch_condition(m.PortalUser, branch_id))
        ).first() is not None
    return False


def has_branch_rule(model: type) -> bool:
    """Whether rows of ``model`` belong to a branch (so a branch operator sees only some)."""
    try:
        branch_condition(model, 0)
    except TypeError:
        return False
    return True
