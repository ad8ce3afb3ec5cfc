"""Online state per id and item: the interaction weights a recommender folds in.

The same weights as `features.interactions` (type x channel x a half-life decay), kept so
that a person's one-row history is read from a few rows, one per item they touched,
instead of from every event they ever sent. A decayed sum changes every instant; here
each event's weight is stored scaled to a fixed epoch, `w * 2 ** ((ts - EPOCH) / H)`,
so that events add up in any order (late ones too) and the sum read at any time `t` is
`stored * 2 ** -((t - EPOCH) / H)`: exactly the decayed sum at `t`, up to rounding.

Written with the events that change it (`apply`, newly stored events only), rebuilt from
the event log (`rebuild`). Each event counts under its customer id, else its anonymous
id: the ids of one event belong to one person, so a person's rows add up to their
history with no event counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Float, case, cast, delete, func, literal, select

from features import columns as c
from features.interactions import InteractionWeights
from service.storage import kind_weights
from service.storage.codec import DAY, micros
from service.storage.engine import greatest_least, insert_into, many_returning, run_many
from service.storage.ids import of_ids, owned_by_kind, owner, read_ids
from service.storage.tables import events, interests, store_weights

#: The rule the batch layer trains with (the one `features.interactions` defaults to).
WEIGHTS = InteractionWeights()
#: The epoch weights are scaled to, and the half-life, in microseconds.
EPOCH = micros(datetime(2040, 1, 1, tzinfo=UTC))
HALF_LIFE = WEIGHTS.half_life_days * DAY
#: Scaling exponents are held above this: an event more than ~250 years before the epoch
#: weighs 2**-1000 of its face value (training drops weights below 1e-9 long before).
FLOOR = -1000.0
_UNITS = {c.EventType.PURCHASE.value: 1.0, c.EventType.RETURN.value: -1.0}


@dataclass(frozen=True)
class Interests:
    """A person's interaction with each item they touched at a moment, one entry per item
    (sorted by item id): decayed weight, latest event and last purchase (microseconds,
    UTC; NO_PURCHASE: never bought), net units bought."""

    item_ids: np.ndarray
    weight: np.ndarray
    last_ts: np.ndarray
    units: np.ndarray
    last_purchase: np.ndarray


#: `Interests.last_purchase` of an item never bought.
NO_PURCHASE = np.iinfo(np.int64).min


def scaled(weight: float, ts: int) -> float:
    """`weight` of an event at `ts` (microseconds), scaled to the epoch."""
    return float(weight * 2.0 ** max((ts - EPOCH) / HALF_LIFE, FLOOR))


def apply(conn: Connection, stored: Iterable[Mapping[str, Any]]) -> None:
    """Fold newly stored events (times in microseconds) into the per-item and per-store
    weights, inside the caller's transaction."""
    items: dict[tuple[str, str, str], list[Any]] = {}
    places: dict[tuple[str, str, str], float] = {}
    for row in stored:
        kind = row[c.TYPE]
        who = owner(row)
        if row.get(c.ITEM_ID) is None or kind not in WEIGHTS.by_type or who is None:
            continue
        ts = int(row[c.TS])
        weight = scaled(WEIGHTS.by_type[kind] * WEIGHTS.by_channel.get(row[c.CHANNEL], 1.0), ts)
        units = _UNITS.get(kind, 0.0) * float(row.get(c.QUANTITY) or 1)
        seen = items.setdefault((*who, str(row[c.ITEM_ID])), [0.0, ts, 0.0, None])
        seen[0], seen[1], seen[2] = seen[0] + weight, max(seen[1], ts), seen[2] + units
        if kind == c.EventType.PURCHASE:
            seen[3] = ts if seen[3] is None else max(seen[3], ts)
        if row.get(c.STORE_ID) is not None:
            key = (*who, str(row[c.STORE_ID]))
            places[key] = places.get(key, 0.0) + weight
    if items:
        # The upsert returns each row's weight after the addition: its weight before is
        # that less what was added (no read of the rows first).
        after = many_returning(conn, _upsert_items, [
            {c.ID_TYPE: k, c.ID_VALUE: v, c.ITEM_ID: i, "weight": w, "last_ts": int(ts),
             "units": u, "last_purchase": bought}
            for (k, v, i), (w, ts, u, bought) in sorted(items.items())
        ])  # fmt: skip
        kind_weights.apply(conn, {
            (str(kind), str(value), str(item)): (
                float(weight) - items[(kind, value, item)][0], float(weight)
            )
            for kind, value, item, weight in after
        })  # fmt: skip
    if places:
        run_many(conn, _upsert_places, [
            {c.ID_TYPE: k, c.ID_VALUE: v, c.STORE_ID: s, "weight": w}
            for (k, v, s), w in sorted(places.items())
        ])  # fmt: skip


def _upsert_items(conn: Connection) -> Any:
    insert = insert_into(conn, interests)
    new, old = insert.excluded, interests.c
    greatest, _ = greatest_least(conn)
    return insert.on_conflict_do_update(
        index_elements=[c.ID_TYPE, c.ID_VALUE, c.ITEM_ID],
        set_={
            "weight": old.weight + new.weight,
            "last_ts": greatest(old.last_ts, new.last_ts),
            "units": old.units + new.units,
            # NULL (never bought) loses to any time: GREATEST skips NULLs, SQLite's max not.
            "last_purchase": func.coalesce(
                greatest(old.last_purchase, new.last_purchase), old.last_purchase, new.last_purchase
            ),
        },
    ).returning(old[c.ID_TYPE], old[c.ID_VALUE], old[c.ITEM_ID], old.weight)


def _upsert_places(conn: Connection) -> Any:
    insert = insert_into(conn, store_weights)
    return insert.on_conflict_do_update(
        index_elements=[c.ID_TYPE, c.ID_VALUE, c.STORE_ID],
        set_={"weight": store_weights.c.weight + insert.excluded.weight},
    )


def rebuild(conn: Connection) -> None:
    """Recompute every id's item and store weights from the event log, in SQL."""
    conn.execute(delete(interests))
    conn.execute(delete(store_weights))
    ev = events.c
    greatest, _ = greatest_least(conn)
    by_type = case(*((ev[c.TYPE] == k, v) for k, v in WEIGHTS.by_type.items()), else_=0.0)
    by_channel = case(*((ev[c.CHANNEL] == k, v) for k, v in WEIGHTS.by_channel.items()), else_=1.0)
    exponent = greatest(cast(ev[c.TS] - EPOCH, Float) / float(HALF_LIFE), FLOOR)
    weight = by_type * by_channel * func.power(cast(literal(2.0), Float), exponent)
    units = func.coalesce(ev[c.QUANTITY], 1) * case(
        *((ev[c.TYPE] == k, v) for k, v in _UNITS.items()), else_=0.0
    )
    bought = func.max(case((ev[c.TYPE] == c.EventType.PURCHASE.value, ev[c.TS])))
    counted = (ev[c.ITEM_ID].is_not(None), ev[c.TYPE].in_(list(WEIGHTS.by_type)))
    for kind, who, only in owned_by_kind(events):
        conn.execute(
            interests.insert().from_select(
                [c.ID_TYPE, c.ID_VALUE, c.ITEM_ID, "weight", "last_ts", "units", "last_purchase"],
                select(literal(kind), who, ev[c.ITEM_ID], func.sum(weight), func.max(ev[c.TS]),
                       func.sum(units), bought)
                .where(only, *counted)
                .group_by(who, ev[c.ITEM_ID]),
            )
        )  # fmt: skip
        conn.execute(
            store_weights.insert().from_select(
                [c.ID_TYPE, c.ID_VALUE, c.STORE_ID, "weight"],
                select(literal(kind), who, ev[c.STORE_ID], func.sum(weight))
                .where(only, ev[c.STORE_ID].is_not(None), *counted)
                .group_by(who, ev[c.STORE_ID]),
            )
        )  # fmt: skip


def of_person(
    conn: Connection, customer_ids: Iterable[str], anonymous_ids: Iterable[str], at: int
) -> tuple[Interests, dict[str, float]]:
    """The person's interest in each item they touched and their weight per store, decayed
    to `at` (microseconds): one indexed read per table, summed in numpy."""
    rows = read_ids(conn, _ITEMS, customer_ids, anonymous_ids)
    return _summed(rows, _decay(at)), store_weights_of(conn, customer_ids, anonymous_ids, at)


def store_weights_of(
    conn: Connection, customer_ids: Iterable[str], anonymous_ids: Iterable[str], at: int
) -> dict[str, float]:
    """The person's weight per store, decayed to `at` (microseconds)."""
    factor = _decay(at)
    per_store: dict[str, float] = {}
    for store, weight in read_ids(conn, _STORES, customer_ids, anonymous_ids):
        per_store[str(store)] = per_store.get(str(store), 0.0) + float(weight) * factor
    return per_store


def _decay(at: int) -> float:
    """What a weight stored scaled to the epoch is worth at `at` (microseconds)."""
    return float(2.0 ** -((at - EPOCH) / HALF_LIFE))


_ITEMS = select(
    interests.c[c.ITEM_ID], interests.c.weight, interests.c.last_ts, interests.c.units,
    interests.c.last_purchase,
).where(of_ids(interests))  # fmt: skip
_STORES = select(store_weights.c[c.STORE_ID], store_weights.c.weight).where(of_ids(store_weights))


def _summed(rows: list[Any], factor: float) -> Interests:
    """One entry per item of (item, weight, last_ts, units, last_purchase) rows: weights
    and units added, times the latest (an item can have a row under each id)."""
    items = np.array([r[0] for r in rows], dtype=object)
    weight = np.array([r[1] for r in rows], dtype=np.float64) * factor
    last_ts = np.array([r[2] for r in rows], dtype=np.int64)
    units = np.array([r[3] for r in rows], dtype=np.float64)
    bought = np.array([NO_PURCHASE if r[4] is None else r[4] for r in rows], dtype=np.int64)
    keys, at = np.unique(items.astype(str), return_inverse=True)
    if len(keys) == len(items):  # one row per item (the common case): just sorted
        order = np.argsort(at)
        return Interests(keys.astype(object), weight[order], last_ts[order], units[order],
                         bought[order])  # fmt: skip
    summed = Interests(
        keys.astype(object),
        np.bincount(at, weights=weight, minlength=len(keys)),
        np.full(len(keys), np.iinfo(np.int64).min, dtype=np.int64),
        np.bincount(at, weights=units, minlength=len(keys)),
        np.full(len(keys), NO_PURCHASE, dtype=np.int64),
    )
    np.maximum.at(summed.last_ts, at, last_ts)
    np.maximum.at(summed.last_purchase, at, bought)
    return summed
