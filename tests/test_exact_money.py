"""Money is exact as stored, not only as read: SQLite keeps NUMERIC as a binary float, so a sum
computed in SQL could be written as 765.290000000003 and still read back through SQLAlchemy as
765.29. After the demo ledger and a billing run over it, every money column of every table
holds whole kopecks; ORM writes round half-up to kopecks and refuse floats."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from flask_appbuilder import Model
from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import StatementError

from app import models as m
from app.services import billing, demo

TODAY = dt.date(2026, 12, 28)
#: The demo bills the 12 months up to November; the run bills December over that ledger.
DECEMBER = dt.date(2026, 12, 1)
#: (table, column) of every column of the money type, from the models.
MONEY_COLUMNS = sorted((table.name, column.name) for table in Model.metadata.sorted_tables
                       for column in table.columns if isinstance(column.type, m.ExactMoney))


def inexact(session) -> dict[str, int]:
    """How many stored values of each money column have more than two decimals, compared
    in SQL (on SQLite the raw float, before SQLAlchemy rounds it on the way out)."""
    counts = {f"{t}.{c}": session.execute(text(
        f"SELECT COUNT(*) FROM {t} WHERE {c} <> ROUND({c}, 2)")).scalar_one()
        for t, c in MONEY_COLUMNS}
    return {name: count for name, count in counts.items() if count}


def test_money_columns_are_the_ledgers():
    assert {("charge", "amount"), ("invoice", "opening_balance"), ("invoice", "charged"),
            ("invoice", "paid"), ("invoice", "amount_due"), ("payment", "amount"),
            ("payment_order", "amount"), ("payment_order", "gateway_amount"),
            ("mailing", "min_debt"), ("mailing_recipient", "debt"), ("autopay_setting", "cap"),
            ("autopay_charge", "amount")} == set(MONEY_COLUMNS)


def test_demo_ledger_and_a_billing_run_store_whole_kopecks(app, session):
    assert demo.seed(session, accounts=8, seed=7, organizations=1, today=TODAY).loaded
    result = billing.run_period(session, DECEMBER, norm_kwh=100, estimate_months=3,
                                due_day=10, today=TODAY)
    assert result.invoices == result.accounts > 8
    opening, paid = session.execute(select(
        m.Invoice.opening_balance, m.Invoice.paid).where(m.Invoice.period == DECEMBER)).all()[0]
    assert session.scalar(select(m.Invoice.id).where(
        m.Invoice.period == DECEMBER, m.Invoice.opening_balance != 0)) is not None
    assert isinstance(opening, D) and isinstance(paid, D)
    assert inexact(session) == {}


@pytest.mark.parametrize("value, stored", [
    (D("0.125"), D("0.13")), (D("-0.125"), D("-0.13")), (D("765.285"), D("765.29")),
    (7, D("7.00")), ("1234.5", D("1234.50")),
])
def test_money_is_rounded_half_up_to_kopecks(session, value, stored):
    amount = session.scalar(select(bindparam("amount", value, type_=m.Money)))
    assert amount == stored and amount.as_tuple().exponent == -2


def test_a_float_is_refused(session):
    with pytest.raises(StatementError, match="float"):
        session.scalar(select(bindparam("amount", 765.29, type_=m.Money)))


def test_compared_values_are_not_rounded(session):
    """A filter's threshold keeps its digits: 0.01 > 0.005, though 0.005 rounds to 0.01."""
    expression = m.Payment.amount > D("0.005")
    assert expression.right.type._type_affinity is m.Money.impl_instance._type_affinity
    assert not isinstance(expression.right.type, m.ExactMoney)
