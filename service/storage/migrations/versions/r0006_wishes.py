"""Wish-lists: the online state of each id's wishes and removals (`wishes`), filled from
the event log's wish events when the table is made.

Revision ID: r0006
Revises: r0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0006"
down_revision = "r0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "wishes" not in set(sa.inspect(op.get_bind()).get_table_names()):
        op.create_table(
            "wishes",
            sa.Column("id_type", sa.String(length=16), nullable=False),
            sa.Column("id_value", sa.String(length=256), nullable=False),
            sa.Column("item_id", sa.String(length=256), nullable=False),
            sa.Column("wished_at", sa.BigInteger(), nullable=False),
            sa.Column("removed_at", sa.BigInteger(), nullable=False),
            sa.Column("channel", sa.String(length=16), nullable=True),
            sa.PrimaryKeyConstraint("id_type", "id_value", "item_id"),
        )
        from service.storage import wishes

        wishes.rebuild(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("Omni's store migrations go forward only")
