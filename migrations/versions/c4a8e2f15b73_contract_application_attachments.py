"""contract applications: kind, cadastral number, the opened account, attached scans

Revision ID: c4a8e2f15b73
Revises: 7b3e1c9a4d20
Create Date: 2026-11-26 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4a8e2f15b73'
down_revision = '7b3e1c9a4d20'
branch_labels = None
depends_on = None

KINDS = "kind IN ('new_connection', 'new_owner', 'reissue', 'temporary')"


def upgrade():
    with op.batch_alter_table('contract_application', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16),
                                      server_default='new_connection', nullable=False))
        batch_op.add_column(sa.Column('cadastral_number', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('account_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_contract_application_account_id'), ['account_id'],
                              unique=False)
        batch_op.create_foreign_key('fk_contract_application_account_id', 'personal_account',
                                    ['account_id'], ['id'])
        batch_op.create_check_constraint('ck_application_kind', KINDS)

    op.create_table('application_attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('application_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('stored_name', sa.String(length=64), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['application_id'], ['contract_application.id'],
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('stored_name')
    )
    with op.batch_alter_table('application_attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_application_attachment_application_id'),
                              ['application_id'], unique=False)


def downgrade():
    with op.batch_alter_table('application_attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_application_attachment_application_id'))
    op.drop_table('application_attachment')

    with op.batch_alter_table('contract_application', schema=None) as batch_op:
        batch_op.drop_constraint('ck_application_kind', type_='check')
        batch_op.drop_constraint('fk_contract_application_account_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_contract_application_account_id'))
        batch_op.drop_column('account_id')
        batch_op.drop_column('cadastral_number')
        batch_op.drop_column('kind')
