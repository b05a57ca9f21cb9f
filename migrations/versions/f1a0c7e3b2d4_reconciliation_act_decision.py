"""reconciliation acts: who decided (ready or rejected), when, and the reason

Revision ID: f1a0c7e3b2d4
Revises: e7a2c4b19d05
Create Date: 2026-11-30 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f1a0c7e3b2d4'
down_revision = 'e7a2c4b19d05'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('reconciliation_act', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decided_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('note', sa.String(length=500), nullable=True))
        batch_op.create_foreign_key('fk_reconciliation_act_decided_by_id', 'ab_user',
                                    ['decided_by_id'], ['id'])


def downgrade():
    with op.batch_alter_table('reconciliation_act', schema=None) as batch_op:
        batch_op.drop_constraint('fk_reconciliation_act_decided_by_id', type_='foreignkey')
        batch_op.drop_column('note')
        batch_op.drop_column('decided_at')
        batch_op.drop_column('decided_by_id')
