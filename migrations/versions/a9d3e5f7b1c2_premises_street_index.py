"""premises: an index on (street, house) for the back office's search as you type

Revision ID: a9d3e5f7b1c2
Revises: c6f8a0b2d4e5
Create Date: 2026-11-30 09:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a9d3e5f7b1c2'
down_revision = 'c6f8a0b2d4e5'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_premises_street_house', 'premises', ['street', 'house'], unique=False)


def downgrade():
    op.drop_index('ix_premises_street_house', table_name='premises')
