"""Online wish-list state: per id and item, the latest wish (and its channel) and the
latest removal. Written with the events that change it (`apply`), rebuilt from the event
log by the same code (`rebuild`), read per person from a few rows (`wish_list`).

An item is on a person's wish-list while their latest `wishlist` event for it, under any
of their ids and in any channel, is later than their latest `wishlist_remove` and their
last purchase of it anywhere. Latest is by the event's own time, so late and re-sent
events land the same in any order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, delete, select

from features import columns as c
from service.storage import carts
from service.storage.engine import greatest_least, insert_into, run_many
from service.storage.ids import ids_of, of_ids, read_ids
from service.storage.replay import replay
from service.storage.tables import wishes

WISH, UNWISH = c.EventType.WISHLIST.value, c.EventType.WISHLIST_REMOVE.value


@dataclass(frozen=True)
class Wish:
    item_id: str
    #: When it was put on the list, latest (microseconds, UTC), and where.
    wished_at: int
    channel: str | None


def apply(conn: Connection, stored: Iterable[Mapping[str, Any]]) -> None:
    """Fold newly stored events (times in microseconds) into the wish state, inside the
    caller's transaction."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in stored:
        kind_of_event = row[c.TYPE]
        if kind_of_event not in (WISH, UNWISH) or row.get(c.ITEM_ID) is None:
            continue
        for kind, value in ids_of(row):
            key = (kind, str(value), str(row[c.ITEM_ID]))
            got = rows.setdefault(key, {"wished_at": 0, "removed_at": 0, c.CHANNEL: None})
            ts = int(row[c.TS])
            if kind_of_event == UNWISH:
                got["removed_at"] = max(got["removed_at"], ts)
            elif (ts, str(row[c.CHANNEL])) > (got["wished_at"], str(got[c.CHANNEL] or "")):
                got["wished_at"], got[c.CHANNEL] = ts, str(row[c.CHANNEL])
    if rows:
        run_many(conn, _upsert, [
            {c.ID_TYPE: k, c.ID_VALUE: v, c.ITEM_ID: i, **got}
            for (k, v, i), got in sorted(rows.items())
        ])  # fmt: skip


def _upsert(conn: Connection) -> Any:
    insert = insert_into(conn, wishes)
    greatest, _ = greatest_least(conn)
    new, old = insert.excluded, wishes.c
    # The channel of the latest wish (ties: the greater channel name, as in `apply`).
    later = (new.wished_at > old.wished_at) | (
        (new.wished_at == old.wished_at) & (new[c.CHANNEL] > old[c.CHANNEL])
    )
    return insert.on_conflict_do_update(
        index_elements=[c.ID_TYPE, c.ID_VALUE, c.ITEM_ID],
        set_={
            "wished_at": greatest(old.wished_at, new.wished_at),
            "removed_at": greatest(old.removed_at, new.removed_at),
            c.CHANNEL: case((later, new[c.CHANNEL]), else_=old[c.CHANNEL]),
        },
    )


def rebuild(conn: Connection) -> None:
    """Recompute the wish state of every id from the event log."""
    conn.execute(delete(wishes))
    replay(conn, [WISH, UNWISH], [c.ITEM_ID, c.CHANNEL], apply)


def wish_list(
    conn: Connection, customer_ids: Iterable[str], anonymous_ids: Iterable[str]
) -> list[Wish]:
    """The person's wish-list now, latest wish first: a row per item and id, never their
    events (one read for all their ids; the purchases of the wished items, a second)."""
    wished: dict[str, tuple[int, str]] = {}  # latest (time, channel) of a wish per item
    gone: dict[str, int] = {}
    for item, at, removed, channel in read_ids(conn, _WISHES, customer_ids, anonymous_ids):
        if at:
            wished[item] = max(wished.get(item, (0, "")), (int(at), str(channel or "")))
        gone[item] = max(gone.get(item, 0), int(removed))
    if wished:
        for item, ts in carts.last_bought(conn, customer_ids, anonymous_ids, wished).items():
            gone[item] = max(gone.get(item, 0), ts)
    on = [
        Wish(item, at, channel or None)
        for item, (at, channel) in wished.items()
        if at > gone.get(item, 0)
    ]
    return sorted(on, key=lambda w: (-w.wished_at, w.item_id))


#: Built once (run with every profile).
_WISHES = select(
    wishes.c[c.ITEM_ID], wishes.c.wished_at, wishes.c.removed_at, wishes.c[c.CHANNEL]
).where(of_ids(wishes))
