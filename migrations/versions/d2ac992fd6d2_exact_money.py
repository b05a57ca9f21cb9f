"""money: amounts that SQLite stored with float residue (765.290000000003) rounded to kopecks

Revision ID: d2ac992fd6d2
Revises: c3e5a7b9d1f2
Create Date: 2026-12-08 10:00:00.000000

SQLite keeps NUMERIC as a binary float, and sums computed in SQL (the billing run's invoices)
were written with residue; the code now writes whole kopecks. PostgreSQL's numeric(14, 2) was
exact all along, so there is nothing to do there (and no table to scan).
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd2ac992fd6d2'
down_revision = 'c3e5a7b9d1f2'
branch_labels = None
depends_on = None

#: Every money column, Numeric(14, 2), at this revision.
MONEY_COLUMNS = {
    'charge': ('amount',),
    'invoice': ('opening_balance', 'charged', 'paid', 'amount_due'),
    'payment': ('amount',),
    'payment_order': ('amount', 'gateway_amount'),
    'mailing': ('min_debt',),
    'mailing_recipient': ('debt',),
}


def upgrade():
    if op.get_bind().dialect.name != 'sqlite':
        return
    for table, columns in MONEY_COLUMNS.items():
        assignments = ', '.join(f'{c} = ROUND({c}, 2)' for c in columns)
        inexact = ' OR '.join(f'{c} <> ROUND({c}, 2)' for c in columns)
        op.execute(f'UPDATE {table} SET {assignments} WHERE {inexact}')


def downgrade():
    """Nothing to undo: the residue was an error, not data."""
