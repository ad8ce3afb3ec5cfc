"""The online layer, decisioning, privacy and tablet sessions: the tables and indexes
added after the first release, and the online state rebuilt from the event log.

Written to upgrade any store an earlier release made, with or without this history:
a table or index that is there already is left as it is (stores made before migrations
existed created tables as each release added them).

Revision ID: r0002
Revises: r0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "r0002"
down_revision = "r0001"
branch_labels = None
depends_on = None


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def _table(name: str, *columns: Any, **kwargs: Any) -> None:
    if name not in _tables():
        op.create_table(name, *columns, **kwargs)


def _indexes(table: str) -> set[str]:
    return {str(i["name"]) for i in sa.inspect(op.get_bind()).get_indexes(table)}


def _index(name: str, table: str, columns: list[str], **kwargs: Any) -> None:
    if name not in _indexes(table):
        op.create_index(name, table, columns, **kwargs)


def _drop_index(name: str, table: str) -> None:
    if name in _indexes(table):
        op.drop_index(name, table_name=table)


def upgrade() -> None:
    _table(
        "activity",
        sa.Column("id_type", sa.String(length=16), nullable=False),
        sa.Column("id_value", sa.String(length=256), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("first_ts", sa.BigInteger(), nullable=False),
        sa.Column("last_ts", sa.BigInteger(), nullable=False),
        sa.Column("last_arrival", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id_type", "id_value"),
    )
    _table(
        "answer_sets",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.BigInteger(), nullable=False),
        sa.Column("made_at", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "model_version"),
    )
    _table(
        "bought",
        sa.Column("id_type", sa.String(length=16), nullable=False),
        sa.Column("id_value", sa.String(length=256), nullable=False),
        sa.Column("item_id", sa.String(length=256), nullable=False),
        sa.Column("last_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id_type", "id_value", "item_id"),
    )
    _table(
        "cart_moves",
        sa.Column("id_type", sa.String(length=16), nullable=False),
        sa.Column("id_value", sa.String(length=256), nullable=False),
        sa.Column("item_id", sa.String(length=256), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("units", sa.Float(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id_type", "id_value", "item_id", "event_id"),
    )
    _table(
        "churn_answers",
        sa.Column("person_id", sa.String(length=256), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("band", sa.String(length=16), nullable=False),
        sa.Column("drivers", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "model_version"),
    )
    _table(
        "churn_days",
        sa.Column("id_type", sa.String(length=16), nullable=False),
        sa.Column("id_value", sa.String(length=256), nullable=False),
        sa.Column("day", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("first_ts", sa.BigInteger(), nullable=False),
        sa.Column("last_ts", sa.BigInteger(), nullable=False),
        sa.Column("spend", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id_type", "id_value", "day", "channel", "type"),
    )
    _table(
        "contacts",
        sa.Column("contact_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=256), nullable=False),
        sa.Column("customer_id", sa.String(length=256), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=False),
        sa.Column("sent_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("contact_id"),
    )
    _index("ix_contacts_person_sent", "contacts", ["person_id", "sent_at"], unique=False)
    _index("ix_contacts_sent", "contacts", ["sent_at"], unique=False)
    _table(
        "decisions",
        sa.Column("decision_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=256), nullable=False),
        sa.Column("customer_id", sa.String(length=256), nullable=True),
        sa.Column("offer_id", sa.String(length=256), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("store_id", sa.String(length=256), nullable=True),
        sa.Column("decided_at", sa.BigInteger(), nullable=False),
        sa.Column("valid_until", sa.BigInteger(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("expected_value", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("closed_by", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("decision_id"),
    )
    _index("ix_decisions_person", "decisions", ["person_id", "decided_at"], unique=False)
    _index(
        "ux_decisions_open_person",
        "decisions",
        ["person_id"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    _table(
        "erasures",
        sa.Column("id_type", sa.String(length=16), nullable=False),
        sa.Column("id_value", sa.String(length=256), nullable=False),
        sa.Column("erased_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id_type", "id_value"),
    )
    _table(
        "id_channels",
        sa.Column("id_type", sa.String(length=16), nullable=False),
        sa.Column("id_value", sa.String(length=256), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id_type", "id_value", "channel"),
    )
    _table(
        "interests",
        sa.Column("id_type", sa.String(length=16), nullable=False),
        sa.Column("id_value", sa.String(length=256), nullable=False),
        sa.Column("item_id", sa.String(length=256), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("last_ts", sa.BigInteger(), nullable=False),
        sa.Column("units", sa.Float(), nullable=False),
        sa.Column("last_purchase", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id_type", "id_value", "item_id"),
    )
    _table(
        "ledger_turns",
        sa.Column("ledger", sa.String(length=32), nullable=False),
        sa.Column("turn", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("ledger"),
    )
    _table(
        "no_offers",
        sa.Column("person_id", sa.String(length=256), nullable=False),
        sa.Column("asked", sa.String(length=300), nullable=False),
        sa.Column("made_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", "asked"),
    )
    _table(
        "store_weights",
        sa.Column("id_type", sa.String(length=16), nullable=False),
        sa.Column("id_value", sa.String(length=256), nullable=False),
        sa.Column("store_id", sa.String(length=256), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id_type", "id_value", "store_id"),
    )
    _table(
        "tablet_sessions",
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("key_name", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("session_hash"),
    )
    _table(
        "triggers",
        sa.Column("trigger_id", sa.String(length=64), nullable=False),
        sa.Column("cart_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=256), nullable=False),
        sa.Column("customer_id", sa.String(length=256), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=False),
        sa.Column("handed_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("acked_at", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("trigger_id"),
    )
    _index("ix_triggers_person", "triggers", ["person_id"], unique=False)
    _drop_index("ix_events_anonymous", "events")
    _index("ix_events_anonymous_arrival", "events", ["anonymous_id", "ingested_at"], unique=False)
    _index("ix_events_anonymous_ts", "events", ["anonymous_id", "ts"], unique=False)
    _index("ix_events_customer_arrival", "events", ["customer_id", "ingested_at"], unique=False)
    _index("ix_events_store_ts", "events", ["store_id", "ts"], unique=False)
    # ### end Alembic commands ###
    _rebuild_online_state()


def _rebuild_online_state() -> None:
    """The online state of a store that has events but no state yet (its tables were
    just made): rebuilt from the event log, as `omni rebuild-state` does, for the parts
    this revision made (a later revision fills the parts it adds: r0006, wish-lists)."""
    from service.storage import activity as activity_state
    from service.storage import carts, churn_days, interests
    from service.storage.tables import activity, events

    bind = op.get_bind()
    has_events = bind.execute(sa.select(events.c.event_id).limit(1)).first() is not None
    has_state = bind.execute(sa.select(activity.c.id_value).limit(1)).first() is not None
    if has_events and not has_state:
        carts.rebuild(bind)
        interests.rebuild(bind)
        churn_days.rebuild(bind)
        activity_state.rebuild(bind)


def downgrade() -> None:
    raise NotImplementedError("Omni's store migrations go forward only")
