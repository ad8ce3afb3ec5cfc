"""Loyalty: points a customer record carries from outside the event log, and the tiers an
offer is for.

Revision ID: r0008
Revises: r0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0008"
down_revision = "r0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspect = sa.inspect(op.get_bind())
    if "loyalty_points" not in {col["name"] for col in inspect.get_columns("customers")}:
        op.add_column("customers", sa.Column("loyalty_points", sa.BigInteger(), nullable=True))
    if "tiers" not in {col["name"] for col in inspect.get_columns("offers")}:
        op.add_column("offers", sa.Column("tiers", sa.String(length=256), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("Omni's store migrations go forward only")
