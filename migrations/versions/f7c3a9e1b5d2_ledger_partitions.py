"""ledger: charge and invoice partitioned by period on PostgreSQL, one table per month

Revision ID: f7c3a9e1b5d2
Revises: f6b2d8a4c1e7
Create Date: 2026-12-06 19:00:00

On PostgreSQL each table is rebuilt as a partitioned one (RANGE on period): a default
partition, one per month of the rows there are, and the months from this one to a year
ahead; the rows are copied over, then the keys and indexes are built on the parent (each
partition gets its own). A partitioned table's unique keys must hold the period: the primary
keys become (id, period) and the invoice number is unique per period (it starts with it). The
id sequences stay. On SQLite only the invoice number's key changes; its tables stay plain.
"""
import datetime as dt

from alembic import op
from sqlalchemy import text

revision = 'f7c3a9e1b5d2'
down_revision = 'f6b2d8a4c1e7'
branch_labels = None
depends_on = None

#: Keys and indexes of the two tables, built on the (partitioned or plain) parent.
KEYS = {
    "charge": [
        "ALTER TABLE charge ADD CONSTRAINT charge_pkey PRIMARY KEY ({pk})",
        "ALTER TABLE charge ADD CONSTRAINT charge_account_id_fkey FOREIGN KEY (account_id) "
        "REFERENCES personal_account (id)",
        "ALTER TABLE charge ADD CONSTRAINT charge_meter_id_fkey FOREIGN KEY (meter_id) "
        "REFERENCES meter (id)",
        "CREATE INDEX ix_charge_account_period ON charge (account_id, period)",
        "CREATE INDEX ix_charge_period ON charge (period)",
    ],
    "invoice": [
        "ALTER TABLE invoice ADD CONSTRAINT invoice_pkey PRIMARY KEY ({pk})",
        "ALTER TABLE invoice ADD CONSTRAINT invoice_account_id_fkey FOREIGN KEY (account_id) "
        "REFERENCES personal_account (id)",
        "ALTER TABLE invoice ADD CONSTRAINT uq_invoice_account_period "
        "UNIQUE (account_id, period)",
        "ALTER TABLE invoice ADD CONSTRAINT {number_key}",
        "CREATE INDEX ix_invoice_period ON invoice (period)",
    ],
}


def _add_months(day, months):
    total = day.year * 12 + day.month - 1 + months
    return dt.date(total // 12, total % 12 + 1, 1)


def _months(bind, table):
    """Every month with rows in the table, and this month to a year ahead (each partition is
    one more probe for a query of an account's whole history: none is made for nothing)."""
    today = dt.date.today().replace(day=1)
    months = {_add_months(today, k) for k in range(13)}
    months |= set(bind.execute(text(
        f"SELECT DISTINCT CAST(date_trunc('month', period) AS DATE) FROM {table}")).scalars())
    return sorted(months)


def _rebuild(bind, table, partitioned, pk, number_key):
    """Copy the table into a new one (partitioned or plain) of the same columns, defaults and
    checks, then build its keys and indexes."""
    sequence = bind.execute(text(f"SELECT pg_get_serial_sequence('{table}', 'id')")).scalar()
    months = _months(bind, table) if partitioned else []
    if sequence:
        op.execute(f"ALTER SEQUENCE {sequence} OWNED BY NONE")
    op.execute(f"ALTER TABLE {table} RENAME TO {table}_old")
    op.execute(f"CREATE TABLE {table} (LIKE {table}_old INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
               + (" PARTITION BY RANGE (period)" if partitioned else ""))
    if partitioned:
        op.execute(f"CREATE TABLE {table}_pdefault PARTITION OF {table} DEFAULT")
        for month in months:
            op.execute(f"CREATE TABLE {table}_p{month:%Y_%m} PARTITION OF {table} FOR VALUES "
                       f"FROM ('{month.isoformat()}') TO ('{_add_months(month, 1).isoformat()}')")
    op.execute(f"INSERT INTO {table} SELECT * FROM {table}_old")
    op.execute(f"DROP TABLE {table}_old")
    for statement in KEYS[table]:
        op.execute(statement.format(pk=pk, number_key=number_key))
    if sequence:
        op.execute(f"ALTER SEQUENCE {sequence} OWNED BY {table}.id")


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in ("charge", "invoice"):
            _rebuild(bind, table, True, "id, period",
                     "uq_invoice_number_period UNIQUE (number, period)")
        return
    # SQLite: the number's unnamed key, named by the convention, is replaced.
    with op.batch_alter_table(
            "invoice", naming_convention={"uq": "uq_%(table_name)s_%(column_0_name)s"}) as batch:
        batch.drop_constraint("uq_invoice_number", type_="unique")
        batch.create_unique_constraint("uq_invoice_number_period", ["number", "period"])


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in ("charge", "invoice"):
            _rebuild(bind, table, False, "id", "invoice_number_key UNIQUE (number)")
        return
    with op.batch_alter_table("invoice") as batch:
        batch.drop_constraint("uq_invoice_number_period", type_="unique")
        batch.create_unique_constraint("invoice_number_key", ["number"])
