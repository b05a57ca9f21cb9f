"""readings: the source «Чат-бот» (bot), for readings given in a messenger's chat

Revision ID: a9c1e3f5b7d8
Revises: d6e8f0a2c4b6
Create Date: 2026-12-07 02:00:00

The bot saved its readings as the website's, so the back office could not tell them apart.
The source's CHECK constraint is replaced: on SQLite by rebuilding the table (batch mode), on
PostgreSQL in place. A downgrade refuses while readings from the bot exist, rather than delete
them or pass them off as the website's.
"""
from alembic import op
import sqlalchemy as sa

revision = 'a9c1e3f5b7d8'
down_revision = 'd6e8f0a2c4b6'
branch_labels = None
depends_on = None

OLD_SOURCES = "source IN ('web', 'app', 'staff', 'controller', 'import')"
NEW_SOURCES = "source IN ('web', 'app', 'bot', 'staff', 'controller', 'import')"


def _replace(sources: str) -> None:
    with op.batch_alter_table('reading', schema=None) as batch_op:
        batch_op.drop_constraint('ck_reading_source', type_='check')
        batch_op.create_check_constraint('ck_reading_source', sources)


def upgrade():
    _replace(NEW_SOURCES)


def downgrade():
    count = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM reading WHERE source = 'bot'")).scalar()
    if count:
        raise RuntimeError(f"{count} readings from the bot exist: the previous schema cannot "
                           "hold them. Change or delete them first.")
    _replace(OLD_SOURCES)
