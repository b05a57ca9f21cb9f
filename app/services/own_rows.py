"""Whose rows a customer may see: the one rule behind the cabinet's lists and the API's.

A resident sees the rows of the personal accounts bound to them; an organization's user the
rows of its contracts' accounts (and its contracts and acts); anyone else nothing. A row is
"of" an account by its own id (the account), its ``account_id``, or its meter's account."""
from __future__ import annotations

from sqlalchemy import false, select
from sqlalchemy.orm import Session

from app import models as m
from app.services import accounts


def visible_account_ids(session: Session, user):
    """A subquery of the accounts ``user`` may see (None: nobody's)."""
    kind = getattr(user, "kind", None)
    if kind == "business":
        return accounts.organization_account_ids(session, user.organization_id)
    if kind == "resident":
        return accounts.bound_account_ids(session, user.id)
    return select(m.PersonalAccount.id).where(false())


def of_accounts(model, account_ids):
    """The condition for rows of ``model`` that belong to ``account_ids`` (ids or a subquery
    of ids): by account, by ``account_id``, or by meter."""
    if model is m.PersonalAccount:
        return model.id.in_(account_ids)
    if hasattr(model, "account_id"):
        return model.account_id.in_(account_ids)
    return model.meter_id.in_(select(m.Meter.id).where(m.Meter.account_id.in_(account_ids)))


def condition(session: Session, user, model):
    """The rows of ``model`` that ``user`` may see: their accounts' rows; a contract (the
    organization's own, or that of a resident's account); an act (the organization's)."""
    business = getattr(user, "kind", None) == "business"
    if model is m.Contract:
        if business:
            return model.id.in_(accounts.organization_contract_ids(session, user.organization_id))
        return model.id.in_(select(m.PersonalAccount.contract_id).where(
            m.PersonalAccount.id.in_(visible_account_ids(session, user))))
    if model is m.ReconciliationAct:
        if business and user.organization_id:
            return model.organization_id == user.organization_id
        return false()
    return of_accounts(model, visible_account_ids(session, user))
