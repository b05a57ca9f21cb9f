"""event notices: staff's wording of each notice, and the log of what went to whom

Revision ID: c6f8a0b2d4e5
Revises: b5e7f9a1c3d4
Create Date: 2026-12-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c6f8a0b2d4e5'
down_revision = 'b5e7f9a1c3d4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('notice_template',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=160), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('text_body', sa.Text(), nullable=False),
    sa.Column('html_body', sa.Text(), nullable=False),
    sa.Column('sms_body', sa.String(length=400), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['updated_by_id'], ['ab_user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('notice_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('object_key', sa.String(length=80), nullable=False),
    sa.Column('channels', sa.String(length=32), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code', 'user_id', 'object_key', name='uq_notice_log_key')
    )
    with op.batch_alter_table('notice_log', schema=None) as batch_op:
        batch_op.create_index('ix_notice_log_sent', ['sent_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_log_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('notice_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_log_user_id'))
        batch_op.drop_index('ix_notice_log_sent')
    op.drop_table('notice_log')
    op.drop_table('notice_template')
