"""mailings: segment columns, queue times, and one row per recipient with its delivery status

Revision ID: a4d6e8f0c2b1
Revises: f1a0c7e3b2d4
Create Date: 2026-11-30 02:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a4d6e8f0c2b1'
down_revision = 'f1a0c7e3b2d4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('mailing', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tariff_group_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('min_debt', sa.Numeric(precision=14, scale=2), nullable=True))
        batch_op.add_column(sa.Column('without_reading', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch_op.add_column(sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key('fk_mailing_tariff_group_id_tariff_group', 'tariff_group', ['tariff_group_id'], ['id'])

    op.create_table('mailing_recipient',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('mailing_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=160), nullable=False),
    sa.Column('account', sa.String(length=13), nullable=True),
    sa.Column('debt', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.SmallInteger(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('error', sa.String(length=255), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed', 'bounced', 'canceled')", name='ck_mailing_recipient_status'),
    sa.ForeignKeyConstraint(['mailing_id'], ['mailing.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('mailing_id', 'user_id', name='uq_mailing_recipient_user')
    )
    with op.batch_alter_table('mailing_recipient', schema=None) as batch_op:
        batch_op.create_index('ix_mailing_recipient_due', ['mailing_id', 'status', 'next_attempt_at'], unique=False)


def downgrade():
    with op.batch_alter_table('mailing_recipient', schema=None) as batch_op:
        batch_op.drop_index('ix_mailing_recipient_due')
    op.drop_table('mailing_recipient')
    with op.batch_alter_table('mailing', schema=None) as batch_op:
        batch_op.drop_constraint('fk_mailing_tariff_group_id_tariff_group', type_='foreignkey')
        batch_op.drop_column('finished_at')
        batch_op.drop_column('queued_at')
        batch_op.drop_column('without_reading')
        batch_op.drop_column('min_debt')
        batch_op.drop_column('tariff_group_id')
