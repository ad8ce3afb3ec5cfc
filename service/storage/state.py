"""The online state as one thing: per-id activity and carts, applied with the events that
change them, rebuilt together from the event log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, select

from features import columns as c
from service.storage import activity, carts
from service.storage.ids import by_kind
from service.storage.tables import activity as activity_table
from service.storage.tables import bought, cart_moves, events, id_channels


def apply(conn: Connection, stored: Sequence[Mapping[str, Any]]) -> None:
    """Fold newly stored events into every part of the state (caller's transaction)."""
    activity.apply(conn, stored)
    carts.apply(conn, stored)


def rebuild(conn: Connection) -> int:
    """Recompute the whole state from the event log; returns the number of ids."""
    carts.rebuild(conn)
    return activity.rebuild(conn)


def forget(conn: Connection, customer_ids: Sequence[str], anonymous_ids: Sequence[str]) -> None:
    """Delete every part of the state of these ids (erasure), in the caller's transaction."""
    for kind, ids in by_kind(customer_ids, anonymous_ids):
        for table in (activity_table, id_channels, bought, cart_moves):
            conn.execute(
                delete(table).where(table.c[c.ID_TYPE] == kind, table.c[c.ID_VALUE].in_(ids))
            )


def ensure(conn: Connection) -> int | None:
    """Rebuild when the state is empty while events exist (a store made before it);
    returns the number of ids rebuilt, None when there was nothing to do."""
    if conn.execute(select(activity_table.c[c.ID_VALUE]).limit(1)).first() is not None:
        return None
    if conn.execute(select(events.c[c.EVENT_ID]).limit(1)).first() is None:
        return None
    return rebuild(conn)
