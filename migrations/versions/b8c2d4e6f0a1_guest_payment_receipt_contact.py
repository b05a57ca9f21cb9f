"""payment orders paid without signing in keep the receipt's e-mail or phone

Revision ID: b8c2d4e6f0a1
Revises: a9d3e5f7b1c2
Create Date: 2026-12-05 10:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b8c2d4e6f0a1'
down_revision = 'a9d3e5f7b1c2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payment_order', schema=None) as batch_op:
        batch_op.add_column(sa.Column('receipt_email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('receipt_phone', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('payment_order', schema=None) as batch_op:
        batch_op.drop_column('receipt_phone')
        batch_op.drop_column('receipt_email')
