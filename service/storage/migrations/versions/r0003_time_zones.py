"""Time zones: a customer's and a store's own (IANA name), for quiet hours and caps.

Revision ID: r0003
Revises: r0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0003"
down_revision = "r0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("customers", "stores"):
        columns = {col["name"] for col in sa.inspect(op.get_bind()).get_columns(table)}
        if "timezone" not in columns:
            op.add_column(table, sa.Column("timezone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("Omni's store migrations go forward only")
