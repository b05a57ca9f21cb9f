"""Personal accounts as their holders see them: balances from the ledger, in few queries."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from app.models import (
    ZERO,
    AccountBinding,
    Charge,
    Contract,
    Payment,
    PersonalAccount,
)


@dataclass(frozen=True)
class AccountSummary:
    id: int
    number: str
    address: str
    charged: Decimal
    paid: Decimal

    @property
    def balance(self) -> Decimal:
        """Positive: the holder owes; negative: an overpayment."""
        return self.charged - self.paid


def _ledger_totals(session: Session, account_ids: list[int]) -> tuple[dict, dict]:
    if not account_ids:
        return {}, {}
    charged = dict(session.execute(
        select(Charge.account_id, func.sum(Charge.amount))
        .where(Charge.account_id.in_(account_ids)).group_by(Charge.account_id)
    ).all())
    paid = dict(session.execute(
        select(Payment.account_id, func.sum(Payment.amount))
        .where(Payment.account_id.in_(account_ids), Payment.status == "succeeded")
        .group_by(Payment.account_id)
    ).all())
    return charged, paid


def summarize(session: Session, accounts: list[PersonalAccount]) -> list[AccountSummary]:
    charged, paid = _ledger_totals(session, [a.id for a in accounts])
    return [
        AccountSummary(a.id, a.number, a.premises.address, charged.get(a.id) or ZERO,
                       paid.get(a.id) or ZERO)
        for a in accounts
    ]


def bound_account_summaries(session: Session, user_id: int) -> list[AccountSummary]:
    """The accounts bound to a user, with balances: three queries whatever their number."""
    accounts = list(session.execute(
        select(PersonalAccount)
        .join(AccountBinding, AccountBinding.account_id == PersonalAccount.id)
        .where(AccountBinding.user_id == user_id)
        .options(joinedload(PersonalAccount.premises))
        .order_by(PersonalAccount.number)
    ).scalars())
    return summarize(session, accounts)


def organization_contracts(session: Session, organization_id: int | None) -> list[Contract]:
    if organization_id is None:
        return []
    return list(session.execute(
        select(Contract).where(Contract.organization_id == organization_id)
        .options(joinedload(Contract.accounts).joinedload(PersonalAccount.premises))
        .order_by(Contract.number)
    ).unique().scalars())
