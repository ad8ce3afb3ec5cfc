"""The store of Omni's first release: events, reference tables, the identity map.

Revision ID: r0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalogue",
        sa.Column("item_id", sa.String(length=256), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("category", sa.String(length=256), nullable=False),
        sa.Column("brand", sa.String(length=256), nullable=True),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("item_id"),
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=256), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("home_store_id", sa.String(length=256), nullable=True),
        sa.Column("consent_email", sa.Boolean(), nullable=False),
        sa.Column("consent_sms", sa.Boolean(), nullable=False),
        sa.Column("consent_push", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_index(op.f("ix_customers_email"), "customers", ["email"], unique=False)
    op.create_table(
        "events",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.String(length=256), nullable=True),
        sa.Column("anonymous_id", sa.String(length=256), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("item_id", sa.String(length=256), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("store_id", sa.String(length=256), nullable=True),
        sa.Column("order_id", sa.String(length=256), nullable=True),
        sa.Column("offer_id", sa.String(length=256), nullable=True),
        sa.Column("ingested_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_events_anonymous", "events", ["anonymous_id"], unique=False)
    op.create_index("ix_events_customer_ts", "events", ["customer_id", "ts"], unique=False)
    op.create_index("ix_events_ts", "events", ["ts"], unique=False)
    op.create_table(
        "identities",
        sa.Column("id_type", sa.String(length=16), nullable=False),
        sa.Column("id_value", sa.String(length=256), nullable=False),
        sa.Column("person_id", sa.String(length=256), nullable=False),
        sa.Column("conflict", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id_type", "id_value"),
    )
    op.create_index(op.f("ix_identities_person_id"), "identities", ["person_id"], unique=False)
    op.create_table(
        "inventory",
        sa.Column("store_id", sa.String(length=256), nullable=False),
        sa.Column("item_id", sa.String(length=256), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "item_id"),
    )
    op.create_table(
        "offers",
        sa.Column("offer_id", sa.String(length=256), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("item_id", sa.String(length=256), nullable=True),
        sa.Column("category", sa.String(length=256), nullable=True),
        sa.Column("channels", sa.String(length=256), nullable=True),
        sa.Column("valid_from", sa.BigInteger(), nullable=False),
        sa.Column("valid_until", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("offer_id"),
    )
    op.create_table(
        "stores",
        sa.Column("store_id", sa.String(length=256), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("city", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("store_id"),
    )
    # ### end Alembic commands ###


def downgrade() -> None:
    raise NotImplementedError("Omni's store migrations go forward only")
