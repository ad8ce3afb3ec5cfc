"""The online state as one thing: per-id activity, carts and item interests, applied with
the events that change them, rebuilt together from the event log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, select, true

from features import columns as c
from service.storage import activity, carts, interests
from service.storage.ids import by_kind
from service.storage.tables import activity as activity_table
from service.storage.tables import (
    bought,
    cart_moves,
    events,
    id_channels,
    store_weights,
)
from service.storage.tables import interests as interests_table

#: Every table of the online state (what `forget` clears for an erased person).
STATE_TABLES = (activity_table, id_channels, bought, cart_moves, interests_table, store_weights)


def apply(conn: Connection, stored: Sequence[Mapping[str, Any]]) -> None:
    """Fold newly stored events into every part of the state (caller's transaction)."""
    activity.apply(conn, stored)
    carts.apply(conn, stored)
    interests.apply(conn, stored)


def rebuild(conn: Connection) -> int:
    """Recompute the whole state from the event log; returns the number of ids."""
    carts.rebuild(conn)
    interests.rebuild(conn)
    return activity.rebuild(conn)


def forget(conn: Connection, customer_ids: Sequence[str], anonymous_ids: Sequence[str]) -> None:
    """Delete every part of the state of these ids (erasure), in the caller's transaction."""
    for kind, ids in by_kind(customer_ids, anonymous_ids):
        for table in STATE_TABLES:
            conn.execute(
                delete(table).where(table.c[c.ID_TYPE] == kind, table.c[c.ID_VALUE].in_(ids))
            )


def ensure(conn: Connection) -> int | None:
    """Rebuild when the state is empty while events exist, or has no item interests while
    item events exist (a store made before the state, or before its interests); returns
    the number of ids rebuilt, None when there was nothing to do."""
    has_state = conn.execute(select(activity_table.c[c.ID_VALUE]).limit(1)).first() is not None
    has_interests = conn.execute(select(interests_table.c[c.ID_VALUE]).limit(1)).first()
    if has_state and has_interests is not None:
        return None
    wanted = events.c[c.ITEM_ID].is_not(None) if has_state else true()
    if conn.execute(select(events.c[c.EVENT_ID]).where(wanted).limit(1)).first() is None:
        return None
    return rebuild(conn)
