"""resident profile: notices by topic and channel, withdrawal of the personal-data consent

Revision ID: 7b3e1c9a4d20
Revises: 62d75ef84de3
Create Date: 2026-11-26 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7b3e1c9a4d20'
down_revision = '62d75ef84de3'
branch_labels = None
depends_on = None

#: (topic column, the channel switch it starts from)
NOTICE_COLUMNS = [
    ('notify_bills_email', 'notify_email'),
    ('notify_bills_sms', 'notify_sms'),
    ('notify_readings_email', 'notify_email'),
    ('notify_readings_sms', 'notify_sms'),
    ('notify_payments_email', 'notify_email'),
    ('notify_payments_sms', 'notify_sms'),
]


def upgrade():
    with op.batch_alter_table('ab_user', schema=None) as batch_op:
        for column, _channel in NOTICE_COLUMNS:
            batch_op.add_column(sa.Column(column, sa.Boolean(), server_default=sa.text('true'),
                                          nullable=False))
        batch_op.add_column(sa.Column('pd_consent_withdrawn_at', sa.DateTime(timezone=True),
                                      nullable=True))
    # Whoever had turned a channel off keeps it off for every topic.
    user = sa.table('ab_user', *(sa.column(c, sa.Boolean()) for c, _ in NOTICE_COLUMNS),
                    sa.column('notify_email', sa.Boolean()), sa.column('notify_sms', sa.Boolean()))
    op.execute(user.update().values({c: user.c[channel] for c, channel in NOTICE_COLUMNS}))


def downgrade():
    with op.batch_alter_table('ab_user', schema=None) as batch_op:
        batch_op.drop_column('pd_consent_withdrawn_at')
        for column, _channel in reversed(NOTICE_COLUMNS):
            batch_op.drop_column(column)
