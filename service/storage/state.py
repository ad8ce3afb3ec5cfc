"""The online state as one thing: per-id activity, carts, item interests and churn day
rows, applied with the events that change them, rebuilt together from the event log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, select

from features import columns as c
from service.storage import activity, carts, cases, churn_days, interests, kind_weights, wishes
from service.storage.engine import refresh_statistics
from service.storage.ids import by_kind
from service.storage.tables import activity as activity_table
from service.storage.tables import (
    bought,
    cart_moves,
    events,
    id_channels,
    identities,
    store_weights,
)
from service.storage.tables import cases as cases_table
from service.storage.tables import churn_days as churn_days_table
from service.storage.tables import interests as interests_table
from service.storage.tables import kind_weights as kind_weights_table
from service.storage.tables import wishes as wishes_table

#: Every table of the online state (what `forget` clears for an erased person).
STATE_TABLES = (
    activity_table,
    id_channels,
    bought,
    cart_moves,
    interests_table,
    kind_weights_table,
    store_weights,
    churn_days_table,
    wishes_table,
    cases_table,
)


#: The tables whose statistics `rebuild` refreshes (on PostgreSQL).
REFRESHED = (events, identities, *STATE_TABLES)


def apply(conn: Connection, stored: Sequence[Mapping[str, Any]]) -> None:
    """Fold newly stored events into every part of the state (caller's transaction)."""
    activity.apply(conn, stored)
    carts.apply(conn, stored)
    interests.apply(conn, stored)
    churn_days.apply(conn, stored)
    wishes.apply(conn, stored)
    cases.apply(conn, stored)


def rebuild(conn: Connection) -> int:
    """Recompute the whole state from the event log; returns the number of ids."""
    carts.rebuild(conn)
    interests.rebuild(conn)
    kind_weights.rebuild(conn)
    churn_days.rebuild(conn)
    wishes.rebuild(conn)
    cases.rebuild(conn)
    ids = activity.rebuild(conn)
    refresh_statistics(conn, REFRESHED)
    return ids


def forget(conn: Connection, customer_ids: Sequence[str], anonymous_ids: Sequence[str]) -> None:
    """Delete every part of the state of these ids (erasure), in the caller's transaction."""
    for kind, ids in by_kind(customer_ids, anonymous_ids):
        for table in STATE_TABLES:
            conn.execute(
                delete(table).where(table.c[c.ID_TYPE] == kind, table.c[c.ID_VALUE].in_(ids))
            )


def ensure(conn: Connection) -> int | None:
    """Rebuild when a part of the state is missing while events exist (a store made before
    the state, or before that part); returns the number of ids rebuilt, None when there
    was nothing to do."""

    def empty(table: Any, *where: Any) -> bool:
        return conn.execute(select(*table.primary_key).where(*where).limit(1)).first() is None

    if empty(activity_table):
        return None if empty(events) else rebuild(conn)
    if (
        empty(churn_days_table)
        or (empty(interests_table) and not empty(events, events.c[c.ITEM_ID].is_not(None)))
        or kind_weights.missing(conn)
        or (empty(wishes_table) and not empty(events, events.c[c.TYPE] == wishes.WISH))
        or (empty(cases_table) and not empty(events, events.c[c.TYPE].in_(cases.SERVICE)))
    ):
        return rebuild(conn)
    return None
