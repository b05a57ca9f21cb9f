"""feedback: a public author's name, e-mail and phone; the assignee; when the reply was sent
and when the message was closed

Revision ID: b5e7f9a1c3d4
Revises: a4d6e8f0c2b1
Create Date: 2026-12-01 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b5e7f9a1c3d4'
down_revision = 'a4d6e8f0c2b1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.add_column(sa.Column('author_name', sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column('author_email', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column('author_phone', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('assigned_to_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reply_sent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_feedback_assigned_to_id'), ['assigned_to_id'], unique=False)
        batch_op.create_foreign_key('fk_feedback_assigned_to_id_ab_user', 'ab_user', ['assigned_to_id'], ['id'])


def downgrade():
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_constraint('fk_feedback_assigned_to_id_ab_user', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_feedback_assigned_to_id'))
        batch_op.drop_column('closed_at')
        batch_op.drop_column('reply_sent_at')
        batch_op.drop_column('assigned_at')
        batch_op.drop_column('assigned_to_id')
        batch_op.drop_column('author_phone')
        batch_op.drop_column('author_email')
        batch_op.drop_column('author_name')
