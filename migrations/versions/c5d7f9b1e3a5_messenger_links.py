"""messenger links: a resident's cabinet linked to a chat with the portal's bot, and the
one-time links (only their SHA-256) that tie a chat to a cabinet

Revision ID: c5d7f9b1e3a5
Revises: b4c6e8a0d2f4
Create Date: 2026-12-06 20:31:00
"""
from alembic import op
import sqlalchemy as sa

revision = 'c5d7f9b1e3a5'
down_revision = 'b4c6e8a0d2f4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('messenger_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('messenger', sa.String(length=16), nullable=False),
    sa.Column('chat_id', sa.String(length=32), nullable=False),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notify_bills', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('notify_readings', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('notify_payments', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('state', sa.Text(), nullable=True),
    sa.Column('state_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('messenger', 'chat_id', name='uq_messenger_link_chat'),
    sa.UniqueConstraint('user_id', 'messenger', name='uq_messenger_link_user')
    )
    op.create_table('messenger_link_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('messenger', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('messenger_link_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messenger_link_token_user_id'), ['user_id'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('messenger_link_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messenger_link_token_user_id'))
    op.drop_table('messenger_link_token')
    op.drop_table('messenger_link')
