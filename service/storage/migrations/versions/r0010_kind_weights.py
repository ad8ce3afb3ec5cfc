"""A person's preferences read from a row per category and brand (`kind_weights`); the
open cart's recent lines read by an (id, time) index of `cart_moves`; the events' two
(id, arrival) indexes, which no query reads any more, dropped (each stored event wrote
them).

Revision ID: r0010
Revises: r0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0010"
down_revision = "r0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if "kind_weights" not in set(inspector.get_table_names()):
        op.create_table(
            "kind_weights",
            sa.Column("id_type", sa.String(length=16), nullable=False),
            sa.Column("id_value", sa.String(length=256), nullable=False),
            sa.Column("category", sa.String(length=256), nullable=False),
            sa.Column("brand", sa.String(length=256), nullable=False),
            sa.Column("weight", sa.Float(), nullable=False),
            sa.Column("item_count", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("id_type", "id_value", "category", "brand"),
        )
        from service.storage import kind_weights

        kind_weights.rebuild(bind)  # from the item weights the store holds
    if "ix_cart_moves_id_ts" not in {i["name"] for i in inspector.get_indexes("cart_moves")}:
        op.create_index("ix_cart_moves_id_ts", "cart_moves", ["id_type", "id_value", "ts"])
    held = {i["name"] for i in inspector.get_indexes("events")}
    for name in ("ix_events_customer_arrival", "ix_events_anonymous_arrival"):
        if name in held:
            op.drop_index(name, table_name="events")


def downgrade() -> None:
    raise NotImplementedError("Omni's store migrations go forward only")
