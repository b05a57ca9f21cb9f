"""contract applications: the kind «Поверка или замена прибора учёта» (verification)

Revision ID: f6b2d8a4c1e7
Revises: e3b7c1d9a5f4
Create Date: 2026-12-07 12:00:00

The kind's CHECK constraint is replaced: on SQLite by rebuilding the table (batch mode), on
PostgreSQL in place. A downgrade refuses while applications of the new kind exist, rather than
delete them or pass them off as another kind.
"""
from alembic import op
import sqlalchemy as sa

revision = 'f6b2d8a4c1e7'
down_revision = 'e3b7c1d9a5f4'
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('new_connection', 'new_owner', 'reissue', 'temporary')"
NEW_KINDS = "kind IN ('new_connection', 'new_owner', 'reissue', 'temporary', 'verification')"


def _replace(kinds: str) -> None:
    with op.batch_alter_table('contract_application', schema=None) as batch_op:
        batch_op.drop_constraint('ck_application_kind', type_='check')
        batch_op.create_check_constraint('ck_application_kind', kinds)


def upgrade():
    _replace(NEW_KINDS)


def downgrade():
    count = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM contract_application WHERE kind = 'verification'")).scalar()
    if count:
        raise RuntimeError(f"{count} applications of kind 'verification' exist: the previous "
                           "schema cannot hold them. Change or delete them first.")
    _replace(OLD_KINDS)
