"""Payments by the day they were paid: the billing run reads a month of them, not all.

Revision ID: e3b7c1d9a5f4
Revises: d2ac992fd6d2
Create Date: 2026-12-06 18:40:00

On PostgreSQL the index is built CONCURRENTLY, outside the migration's transaction: payments
keep being accepted while a table of years of them is indexed.
"""
from alembic import op

revision = 'e3b7c1d9a5f4'
down_revision = 'd2ac992fd6d2'
branch_labels = None
depends_on = None


def upgrade():
    context = op.get_context()
    if context.dialect.name == "postgresql":
        with context.autocommit_block():
            op.create_index('ix_payment_paid', 'payment', ['paid_at'], unique=False,
                            postgresql_concurrently=True, if_not_exists=True)
    else:
        op.create_index('ix_payment_paid', 'payment', ['paid_at'], unique=False)


def downgrade():
    op.drop_index('ix_payment_paid', table_name='payment')
