"""The churn day rows keyed by type before day (id, type, day, channel): a year of one
type's days (loyalty, channel shares, offer spans) is read from that type's rows alone.

Revision ID: r0011
Revises: r0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0011"
down_revision = "r0010"
branch_labels = None
depends_on = None

KEY = ["id_type", "id_value", "type", "day", "channel"]
COLUMNS = ["id_type", "id_value", "day", "channel", "type", "events", "first_ts", "last_ts",
           "spend"]  # fmt: skip


def upgrade() -> None:
    bind = op.get_bind()
    held = sa.inspect(bind).get_pk_constraint("churn_days")
    if held["constrained_columns"] == KEY:
        return
    if bind.dialect.name == "postgresql":  # in place: the key's index is built again
        op.execute(f"ALTER TABLE churn_days DROP CONSTRAINT {held['name']}")
        op.execute(f"ALTER TABLE churn_days ADD PRIMARY KEY ({', '.join(KEY)})")
        return
    # SQLite changes no key in place: the rows go to a table made anew.
    op.create_table(
        "churn_days_by_type",
        sa.Column("id_type", sa.String(length=16), nullable=False),
        sa.Column("id_value", sa.String(length=256), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("first_ts", sa.BigInteger(), nullable=False),
        sa.Column("last_ts", sa.BigInteger(), nullable=False),
        sa.Column("spend", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY),
    )
    listed = ", ".join(COLUMNS)
    op.execute(f"INSERT INTO churn_days_by_type ({listed}) SELECT {listed} FROM churn_days")
    op.drop_table("churn_days")
    op.rename_table("churn_days_by_type", "churn_days")


def downgrade() -> None:
    raise NotImplementedError("Omni's store migrations go forward only")
