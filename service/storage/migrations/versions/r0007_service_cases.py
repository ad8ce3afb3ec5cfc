"""Service history: complaints and service contacts are events with a reason, a status and
a case id; `cases` holds each case's state per id, filled from the event log when made.

Revision ID: r0007
Revises: r0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0007"
down_revision = "r0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    columns = {col["name"] for col in sa.inspect(bind).get_columns("events")}
    for name, kind in (
        ("reason", sa.String(length=256)),
        ("status", sa.String(length=16)),
        ("case_id", sa.String(length=128)),
    ):
        if name not in columns:
            op.add_column("events", sa.Column(name, kind, nullable=True))
    if "cases" not in set(sa.inspect(bind).get_table_names()):
        op.create_table(
            "cases",
            sa.Column("id_type", sa.String(length=16), nullable=False),
            sa.Column("id_value", sa.String(length=256), nullable=False),
            sa.Column("case_id", sa.String(length=128), nullable=False),
            sa.Column("type", sa.String(length=24), nullable=False),
            sa.Column("reason", sa.String(length=256), nullable=False),
            sa.Column("channel", sa.String(length=16), nullable=False),
            sa.Column("opened_at", sa.BigInteger(), nullable=False),
            sa.Column("updated_at", sa.BigInteger(), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.PrimaryKeyConstraint("id_type", "id_value", "case_id"),
        )
        from service.storage import cases

        cases.rebuild(bind)


def downgrade() -> None:
    raise NotImplementedError("Omni's store migrations go forward only")
