"""Where each store is (coordinates or a region): stock across stores, nearest first.

Revision ID: r0005
Revises: r0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0005"
down_revision = "r0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {col["name"] for col in sa.inspect(op.get_bind()).get_columns("stores")}
    if "latitude" not in columns:
        op.add_column("stores", sa.Column("latitude", sa.Float(), nullable=True))
    if "longitude" not in columns:
        op.add_column("stores", sa.Column("longitude", sa.Float(), nullable=True))
    if "region" not in columns:
        op.add_column("stores", sa.Column("region", sa.String(length=128), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("Omni's store migrations go forward only")
