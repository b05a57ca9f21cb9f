"""autopay: saved payment methods (the gateway's token, never the card), per-account autopay
settings, and autopay's attempts to charge a bill (unique per invoice and attempt)

Revision ID: b4c6e8a0d2f4
Revises: a8d4e2f6c0b3
Create Date: 2026-12-06 20:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'b4c6e8a0d2f4'
down_revision = 'a8d4e2f6c0b3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('saved_payment_method',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('gateway', sa.String(length=32), nullable=False),
    sa.Column('token', sa.String(length=128), nullable=False),
    sa.Column('card_last4', sa.String(length=4), nullable=True),
    sa.Column('expiry_month', sa.SmallInteger(), nullable=True),
    sa.Column('expiry_year', sa.SmallInteger(), nullable=True),
    sa.Column('card_type', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('gateway', 'token', name='uq_saved_method_token')
    )
    with op.batch_alter_table('saved_payment_method', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_saved_payment_method_user_id'), ['user_id'],
                              unique=False)

    op.create_table('autopay_setting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('cap', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('method_id', sa.Integer(), nullable=True),
    sa.Column('setup_order_key', sa.String(length=64), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failures', sa.SmallInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'active', 'off')", name='ck_autopay_status'),
    sa.CheckConstraint('cap IS NULL OR cap > 0', name='ck_autopay_cap_positive'),
    sa.ForeignKeyConstraint(['account_id'], ['personal_account.id'], ),
    sa.ForeignKeyConstraint(['method_id'], ['saved_payment_method.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('setup_order_key'),
    sa.UniqueConstraint('user_id', 'account_id', name='uq_autopay_user_account')
    )
    with op.batch_alter_table('autopay_setting', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_autopay_setting_account_id'), ['account_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_autopay_setting_method_id'), ['method_id'],
                              unique=False)
        batch_op.create_index('ix_autopay_setting_status_account', ['status', 'account_id'],
                              unique=False)

    op.create_table('autopay_charge',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('setting_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.BigInteger(), nullable=False),
    sa.Column('attempt', sa.SmallInteger(), nullable=False),
    sa.Column('order_key', sa.String(length=64), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('run_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount > 0', name='ck_autopay_charge_amount_positive'),
    sa.ForeignKeyConstraint(['setting_id'], ['autopay_setting.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('invoice_id', 'attempt', name='uq_autopay_charge_invoice_attempt'),
    sa.UniqueConstraint('order_key')
    )
    with op.batch_alter_table('autopay_charge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_autopay_charge_setting_id'), ['setting_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('autopay_charge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_autopay_charge_setting_id'))
    op.drop_table('autopay_charge')
    with op.batch_alter_table('autopay_setting', schema=None) as batch_op:
        batch_op.drop_index('ix_autopay_setting_status_account')
        batch_op.drop_index(batch_op.f('ix_autopay_setting_method_id'))
        batch_op.drop_index(batch_op.f('ix_autopay_setting_account_id'))
    op.drop_table('autopay_setting')
    with op.batch_alter_table('saved_payment_method', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_saved_payment_method_user_id'))
    op.drop_table('saved_payment_method')
