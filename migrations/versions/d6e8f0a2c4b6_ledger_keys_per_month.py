"""ledger keys checked per month: charge's and invoice's foreign keys on each monthly table

Revision ID: d6e8f0a2c4b6
Revises: c5d7f9b1e3a5
Create Date: 2026-12-06 20:32:00

On PostgreSQL the foreign keys of charge (to the account and the meter) and of invoice (to
the account) move from the partitioned parent, where every monthly table inherits them and
checks each row as it is written, to the monthly tables themselves: a month still open is
written without them and its keys are added NOT VALID and validated in one pass when its
billing is complete (app.services.ledger_partitions.check_month). Here every monthly table
that holds rows, and the default one, gets its keys at once (its rows were checked under the
parent's); an empty month's table is left open. Downgrade puts the keys back on the parent
(which validates every month). SQLite keeps its plain tables and keys: nothing changes there.
"""
from alembic import op
from sqlalchemy import text

revision = 'd6e8f0a2c4b6'
down_revision = 'c5d7f9b1e3a5'
branch_labels = None
depends_on = None

#: (table, column, referenced table) of the ledger's foreign keys, as of this revision.
KEYS = [("charge", "account_id", "personal_account"), ("charge", "meter_id", "meter"),
        ("invoice", "account_id", "personal_account")]


def _partitions(bind, table):
    """The table's partitions (monthly and default), with whether each holds rows."""
    names = bind.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :t ORDER BY c.relname"),
        {"t": table}).scalars().all()
    return [(name, name.endswith("_pdefault")
             or bind.execute(text(f"SELECT EXISTS (SELECT 1 FROM {name})")).scalar())
            for name in names]


def _partitioned(bind):
    return bind.dialect.name == "postgresql" and bool(bind.execute(text(
        "SELECT 1 FROM pg_partitioned_table t JOIN pg_class c ON c.oid = t.partrelid "
        "WHERE c.relname = 'charge'")).scalar())


def upgrade():
    bind = op.get_bind()
    if not _partitioned(bind):
        return
    for table, column, _ref in KEYS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {table}_{column}_fkey")
    for table, column, ref in KEYS:
        for partition, keyed in _partitions(bind, table):
            if keyed:
                op.execute(f"ALTER TABLE {partition} ADD CONSTRAINT {partition}_{column}_fkey "
                           f"FOREIGN KEY ({column}) REFERENCES {ref} (id)")


def downgrade():
    bind = op.get_bind()
    if not _partitioned(bind):
        return
    for table, column, _ref in KEYS:
        for partition, _keyed in _partitions(bind, table):
            op.execute(f"ALTER TABLE {partition} DROP CONSTRAINT IF EXISTS "
                       f"{partition}_{column}_fkey")
    for table, column, ref in KEYS:
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fkey "
                   f"FOREIGN KEY ({column}) REFERENCES {ref} (id)")
