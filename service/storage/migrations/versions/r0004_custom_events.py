"""Custom events: an event a source names itself (`type` custom, its `event_name`).

Revision ID: r0004
Revises: r0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0004"
down_revision = "r0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {col["name"] for col in sa.inspect(op.get_bind()).get_columns("events")}
    if "event_name" not in columns:
        op.add_column("events", sa.Column("event_name", sa.String(length=128), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("Omni's store migrations go forward only")
