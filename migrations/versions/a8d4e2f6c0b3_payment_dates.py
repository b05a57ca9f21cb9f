"""payments: every succeeded payment dated; an index on when a payment last changed

Revision ID: a8d4e2f6c0b3
Revises: f7c3a9e1b5d2
Create Date: 2026-12-06 19:00:00

The billing run finds a month's payments by paid_at, and the accounts whose carried opening
balance a late change would make wrong (a payment registered late or refunded) by
updated_at. Succeeded payments without paid_at (the back office let it be empty) take the
day they were recorded, as the cabinet already dated them. On PostgreSQL the index is built
CONCURRENTLY, outside the migration's transaction.
"""
from alembic import op

revision = 'a8d4e2f6c0b3'
down_revision = 'f7c3a9e1b5d2'
branch_labels = None
depends_on = None


def upgrade():
    op.execute("UPDATE payment SET paid_at = created_at "
               "WHERE status = 'succeeded' AND paid_at IS NULL")
    context = op.get_context()
    if context.dialect.name == "postgresql":
        with context.autocommit_block():
            op.create_index('ix_payment_updated', 'payment', ['updated_at'], unique=False,
                            postgresql_concurrently=True, if_not_exists=True)
    else:
        op.create_index('ix_payment_updated', 'payment', ['updated_at'], unique=False)


def downgrade():
    op.drop_index('ix_payment_updated', table_name='payment')
