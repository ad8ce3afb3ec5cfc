"""Proof of lift: events may carry the `served_id` of the answer they follow from, and the
`exposures` ledger records every answer given out or held back; a decision keeps its prior
P(take) and where its probability came from (learned take rates).

Revision ID: r0009
Revises: r0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0009"
down_revision = "r0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if "served_id" not in {col["name"] for col in sa.inspect(bind).get_columns("events")}:
        op.add_column("events", sa.Column("served_id", sa.String(length=64), nullable=True))
    decided = {col["name"] for col in sa.inspect(bind).get_columns("decisions")}
    for name, kind in (("prior", sa.Float()), ("source", sa.String(length=160))):
        if name not in decided:
            op.add_column("decisions", sa.Column(name, kind, nullable=True))
    if "exposures" not in set(sa.inspect(bind).get_table_names()):
        op.create_table(
            "exposures",
            sa.Column("served_id", sa.String(length=64), nullable=False),
            sa.Column("person_id", sa.String(length=256), nullable=False),
            sa.Column("customer_id", sa.String(length=256), nullable=True),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("channel", sa.String(length=16), nullable=False),
            sa.Column("store_id", sa.String(length=256), nullable=True),
            sa.Column("ref", sa.String(length=128), nullable=True),
            sa.Column("offer_id", sa.String(length=256), nullable=True),
            sa.Column("arms", sa.Text(), nullable=False),
            sa.Column("held_by", sa.String(length=160), nullable=True),
            sa.Column("served_at", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("served_id"),
        )
        op.create_index("ix_exposures_person_served", "exposures", ["person_id", "served_at"])
        op.create_index("ix_exposures_served", "exposures", ["served_at"])


def downgrade() -> None:
    raise NotImplementedError("Omni's store migrations go forward only")
