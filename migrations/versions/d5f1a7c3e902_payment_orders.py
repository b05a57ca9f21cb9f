"""payment orders: one gateway payment split into payment rows per account

Revision ID: d5f1a7c3e902
Revises: c4a8e2f15b73
Create Date: 2026-11-29 23:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd5f1a7c3e902'
down_revision = 'c4a8e2f15b73'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('payment_order',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_key', sa.String(length=64), nullable=False),
    sa.Column('gateway', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=64), nullable=True),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('confirmation_url', sa.Text(), nullable=True),
    sa.Column('gateway_status', sa.String(length=32), nullable=True),
    sa.Column('gateway_amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name='ck_payment_order_amount_positive'),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('external_id'),
    sa.UniqueConstraint('order_key')
    )
    with op.batch_alter_table('payment_order', schema=None) as batch_op:
        batch_op.create_index('ix_payment_order_paid', ['paid_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_order_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('payment_order', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_order_user_id'))
        batch_op.drop_index('ix_payment_order_paid')
    op.drop_table('payment_order')
