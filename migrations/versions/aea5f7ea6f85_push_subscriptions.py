"""push notices: the devices subscribed to a user's notices, and push as a channel per topic

Revision ID: aea5f7ea6f85
Revises: b8c2d4e6f0a1
Create Date: 2026-12-06 10:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'aea5f7ea6f85'
down_revision = 'b8c2d4e6f0a1'
branch_labels = None
depends_on = None

TOPICS = ('bills', 'readings', 'payments')


def upgrade():
    op.create_table('push_subscription',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('endpoint', sa.String(length=1000), nullable=False),
    sa.Column('p256dh', sa.String(length=100), nullable=False),
    sa.Column('auth', sa.String(length=40), nullable=False),
    sa.Column('device', sa.String(length=80), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('endpoint')
    )
    with op.batch_alter_table('push_subscription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_push_subscription_user_id'), ['user_id'],
                              unique=False)
    with op.batch_alter_table('ab_user', schema=None) as batch_op:
        for topic in TOPICS:
            batch_op.add_column(sa.Column(f'notify_{topic}_push', sa.Boolean(),
                                          server_default=sa.text('false'), nullable=False))


def downgrade():
    with op.batch_alter_table('ab_user', schema=None) as batch_op:
        for topic in reversed(TOPICS):
            batch_op.drop_column(f'notify_{topic}_push')
    with op.batch_alter_table('push_subscription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_push_subscription_user_id'))
    op.drop_table('push_subscription')
