"""Online state for churn: per id, UTC day, channel and event type, the count, the first
and last event and the purchases' spend.

Churn features (`features.churn`) are windows in days (30, 90, 180, 365) and firsts, lasts
and distinct days; a day that does not hold a window's edge is wholly inside or outside
it. So a person's features are computed from their day rows, except the few days that
straddle an edge (and today), read as the events themselves: a few hundred rows at most
whatever the length of the history. Written with the events (`apply`), rebuilt from the
event log (`rebuild`); an event counts under its customer id, else its anonymous id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    Float,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    select,
    union_all,
)

from features import columns as c
from features.churn import OneHistory
from features.identity import CUSTOMER
from service.storage.codec import DAY, micros
from service.storage.engine import fetch_all, greatest_least, insert_into, run_many
from service.storage.ids import by_kind, of_ids, of_kind, owned_by_kind, owner, read_ids
from service.storage.tables import churn_days, events, identities

#: The window lengths of the churn features, in days (`features.churn`).
WINDOWS = (30, 90, 180, 365)
_KEY = [c.ID_TYPE, c.ID_VALUE, "day", c.CHANNEL, c.TYPE]


def apply(conn: Connection, stored: Iterable[Mapping[str, Any]]) -> None:
    """Fold newly stored events (times in microseconds) into the day rows, inside the
    caller's transaction."""
    days: dict[tuple[str, str, int, str, str], list[Any]] = {}
    for row in stored:
        who = owner(row)
        if who is None:
            continue
        ts = int(row[c.TS])
        spend = _spend(row)
        key = (*who, ts // DAY, str(row[c.CHANNEL]), str(row[c.TYPE]))
        seen = days.get(key)
        if seen is None:
            days[key] = [1, ts, ts, spend]
        else:
            seen[0], seen[1], seen[2] = seen[0] + 1, min(seen[1], ts), max(seen[2], ts)
            seen[3] += spend
    if not days:
        return
    run_many(conn, _upsert, [
        {c.ID_TYPE: k, c.ID_VALUE: v, "day": d, c.CHANNEL: ch, c.TYPE: t, "events": n,
         "first_ts": first, "last_ts": last, "spend": spend}
        for (k, v, d, ch, t), (n, first, last, spend) in sorted(days.items())
    ])  # fmt: skip


def _upsert(conn: Connection) -> Any:
    insert = insert_into(conn, churn_days)
    new, old = insert.excluded, churn_days.c
    greatest, least = greatest_least(conn)
    return insert.on_conflict_do_update(
        index_elements=_KEY,
        set_={
            "events": old.events + new.events,
            "first_ts": least(old.first_ts, new.first_ts),
            "last_ts": greatest(old.last_ts, new.last_ts),
            "spend": old.spend + new.spend,
        },
    )


def _spend(row: Mapping[str, Any]) -> float:
    if row[c.TYPE] != c.EventType.PURCHASE:
        return 0.0
    price = row.get(c.PRICE)
    if price is None or price != price:
        return 0.0
    return float(price) * float(row.get(c.QUANTITY) or 1)


def rebuild(conn: Connection) -> None:
    """Recompute every id's day rows from the event log, in SQL."""
    conn.execute(delete(churn_days))
    ev = events.c
    # Floor division (integer division truncates toward zero before 1970).
    day = (ev[c.TS] - ((ev[c.TS] % DAY) + DAY) % DAY) / DAY
    spend = case(
        (ev[c.TYPE] == c.EventType.PURCHASE.value,
         func.coalesce(ev[c.PRICE], 0.0) * func.coalesce(ev[c.QUANTITY], 1)),
        else_=literal(0.0, Float),
    )  # fmt: skip
    for kind, who, only in owned_by_kind(events):
        conn.execute(
            churn_days.insert().from_select(
                [*_KEY, "events", "first_ts", "last_ts", "spend"],
                select(literal(kind), who, day, ev[c.CHANNEL], ev[c.TYPE], func.count(),
                       func.min(ev[c.TS]), func.max(ev[c.TS]), func.sum(spend))
                .where(only)
                .group_by(who, ev[c.TYPE], day, ev[c.CHANNEL]),  # the key's order
            )
        )  # fmt: skip


def spans(
    conn: Connection, customer_ids: Iterable[str], anonymous_ids: Iterable[str], types: list[str]
) -> list[tuple[int, int]]:
    """(first, last) event time of each day the person with these ids had events of
    `types`: where to read those events without reading the rest of the history."""
    rows = read_ids(conn, _SPANS, customer_ids, anonymous_ids, types=list(types))
    return sorted((int(first), int(last)) for first, last in rows)


_SPANS = select(churn_days.c.first_ts, churn_days.c.last_ts).where(
    of_ids(churn_days), churn_days.c[c.TYPE].in_(bindparam("types", expanding=True))
)


def per_channel(
    conn: Connection,
    customer_ids: Iterable[str],
    anonymous_ids: Iterable[str],
    types: Iterable[str],
    since_day: int,
) -> dict[str, int]:
    """The days per channel the person had events of `types` from `since_day` (days since
    1970, UTC) on: a few day rows a channel, never their events."""
    out: dict[str, int] = {}
    params = {"types": list(types), "since_day": since_day}
    for channel, days in read_ids(conn, _PER_CHANNEL, customer_ids, anonymous_ids, **params):
        out[str(channel)] = out.get(str(channel), 0) + int(days)
    return out


_PER_CHANNEL = (
    select(churn_days.c[c.CHANNEL], func.count(func.distinct(churn_days.c.day)))
    .where(
        of_ids(churn_days),
        churn_days.c[c.TYPE].in_(bindparam("types", expanding=True)),
        churn_days.c.day >= bindparam("since_day"),
    )
    .group_by(churn_days.c[c.CHANNEL], churn_days.c[c.ID_TYPE])
)


@dataclass(frozen=True)
class PurchaseTotals:
    """A person's purchase days per channel from a day on, and what they spent after
    another (days since 1970, UTC): what the channel shares and loyalty count, read in
    one query for a page that shows both (`purchase_totals`)."""

    days_from: int
    spend_after: int
    days: dict[str, int]
    spend: float


def purchase_totals(
    conn: Connection,
    customer_ids: Iterable[str],
    anonymous_ids: Iterable[str],
    days_from: int,
    spend_after: int,
) -> PurchaseTotals:
    """`per_channel` of purchases from `days_from` on and the spend of the purchase days
    after `spend_after`, summed in the database: a row per channel comes back."""
    days: dict[str, int] = {}
    spend = 0.0
    since = min(days_from, spend_after + 1)
    params = {"days_from": days_from, "spend_after": spend_after, "since": since}
    for channel, n, spent in read_ids(conn, _TOTALS, customer_ids, anonymous_ids, **params):
        if int(n):
            days[str(channel)] = days.get(str(channel), 0) + int(n)
        spend += float(spent)
    return PurchaseTotals(days_from, spend_after, days, spend)


_TOTALS = (
    select(
        churn_days.c[c.CHANNEL],
        func.sum(case((churn_days.c.day >= bindparam("days_from"), 1), else_=0)),
        func.sum(
            case((churn_days.c.day > bindparam("spend_after"), churn_days.c.spend), else_=0.0)
        ),
    )
    .where(
        of_ids(churn_days),
        churn_days.c[c.TYPE] == c.EventType.PURCHASE.value,
        churn_days.c.day >= bindparam("since"),
    )
    .group_by(churn_days.c[c.CHANNEL], churn_days.c[c.ID_TYPE])
)


def edge_days(at: int) -> set[int]:
    """The days holding a window's edge as of `at` (microseconds), and `at`'s own day."""
    return {(at - w * DAY) // DAY for w in WINDOWS} | {at // DAY}


#: Built once (run for every churn answer computed from the state): a kind of id's day
#: rows but the edge days', up to today.
_DAYS = select(
    churn_days.c[c.CHANNEL], churn_days.c[c.TYPE], churn_days.c.events,
    churn_days.c.first_ts, churn_days.c.last_ts, churn_days.c.spend,
).where(
    *of_kind(churn_days),
    churn_days.c.day.not_in(bindparam("edges", expanding=True)),
    churn_days.c.day <= bindparam("today"),
)  # fmt: skip


def _edge_events(who: Any, days: int) -> Any:
    """The events of `days` edge days (bounds `from_i`, `to_i`) under one column of ids:
    a read per day through the (id, ts) index, so only those days' events are read."""
    ts = events.c[c.TS]
    cols = [events.c[n] for n in (c.TS, c.TYPE, c.CHANNEL, c.PRICE, c.QUANTITY, c.CUSTOMER_ID)]
    ids = who.in_(bindparam("ids", expanding=True))
    each = [
        select(*cols).where(ids, ts >= bindparam(f"from_{i}"), ts < bindparam(f"to_{i}"))
        for i in range(days)
    ]
    return each[0] if days == 1 else union_all(*each)


#: By kind of id and number of edge days (the windows' edges and today: `edge_days`).
_EDGE_EVENTS = {
    (kind, days): _edge_events(who, days)
    for kind, who, _ in owned_by_kind(events)
    for days in range(1, len(WINDOWS) + 2)
}


def history(
    conn: Connection,
    customer_ids: Iterable[str],
    anonymous_ids: Iterable[str],
    now: datetime,
) -> OneHistory:
    """The events of the person with these ids as `features.churn.churn_row` reads them,
    as of `now`, in time order: a row or two per day row of the state (with a count),
    the edge days' events as they are."""
    at = micros(now)
    edges = sorted(edge_days(at))
    bounds = {f"from_{i}": day * DAY for i, day in enumerate(edges)}
    bounds.update({f"to_{i}": (day + 1) * DAY for i, day in enumerate(edges)})
    parts: list[tuple[np.ndarray, ...]] = []
    for kind, ids in by_kind(customer_ids, anonymous_ids):
        days = {"kind": kind, "ids": ids, "edges": edges, "today": at // DAY}
        rows = fetch_all(conn, _DAYS, days)
        if rows:
            parts.append(_from_days(rows))
        # Which events count under the id (`only`: an anonymous id's only when they carry
        # no customer id) is checked here, not in SQL: given `customer_id IS NULL`, SQLite
        # read every anonymous event of those days in the store through the customer
        # index (1.6 s a request at 100,000 customers) instead of the id's own.
        found = fetch_all(conn, _EDGE_EVENTS[kind, len(edges)], {"ids": ids, **bounds})
        raw = [r[:5] for r in found if kind == CUSTOMER or r[5] is None]
        if raw:
            ts, type_, channel, price, quantity = zip(*raw, strict=True)
            parts.append(
                (np.asarray(ts, dtype=np.int64), np.asarray(type_, dtype=object),
                 np.asarray(channel, dtype=object), _floats(price), _floats(quantity),
                 np.ones(len(raw), dtype=np.int64))
            )  # fmt: skip
    cols: list[np.ndarray] = [
        np.concatenate([p[i] for p in parts]) if parts else np.zeros(0) for i in range(6)
    ]
    order = np.argsort(cols[0].astype(np.int64), kind="stable")
    return OneHistory(
        ts=cols[0].astype(np.int64)[order] * 1000,  # microseconds -> nanoseconds
        type=cols[1].astype(object)[order],
        channel=cols[2].astype(object)[order],
        price=cols[3].astype(float)[order],
        quantity=cols[4].astype(float)[order],
        count=cols[5].astype(np.int64)[order],
    )


def _from_days(rows: Sequence[Any]) -> tuple[np.ndarray, ...]:
    """Two events per day row (channel, type, count, first, last, spend) as columns (ts,
    type, channel, price, quantity, count): at the first time one standing for all but
    one (when there are more), at the last one carrying the spend."""
    channel, type_, n, first, last, spend = (np.asarray(x) for x in zip(*rows, strict=True))
    n = n.astype(np.int64)
    many = n > 1
    extra = int(many.sum())
    return (
        np.concatenate([first[many], last]).astype(np.int64),
        np.concatenate([type_[many], type_]).astype(object),
        np.concatenate([channel[many], channel]).astype(object),
        np.concatenate([np.zeros(extra), spend.astype(float)]),
        np.ones(extra + len(n)),
        np.concatenate([n[many] - 1, np.ones(len(n), dtype=np.int64)]),
    )


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def purchase_days(conn: Connection, until: datetime) -> pd.DataFrame:
    """Everyone's purchases before `until` as the day rows hold them, by person (the
    identity map in the query, as training resolves ids): per id, day and
    channel its first purchase (with the day's spend) and, when later, its last (with
    none). Whether a person bought before or after any moment that cuts a day at most once
    is read right from these; spend is by day. Columns: person_id, ts (UTC), channel,
    revenue. What the report's value model and churn rate read instead of the event log:
    one or two rows per person and purchase day, not one per event."""
    t, who = churn_days.c, identities.c
    query = (
        select(
            # As training resolves it: a customer id never stitched is its own person, an
            # anonymous id nobody stitched is nobody's.
            func.coalesce(who[c.PERSON_ID], case((t[c.ID_TYPE] == CUSTOMER, t[c.ID_VALUE]))),
            t.first_ts,
            t.last_ts,
            t[c.CHANNEL],
            t.spend,
        )
        .outerjoin(
            identities,
            and_(who[c.ID_TYPE] == t[c.ID_TYPE], who[c.ID_VALUE] == t[c.ID_VALUE]),
        )
        .where(t[c.TYPE] == c.EventType.PURCHASE.value, t.first_ts < micros(until))
    )
    rows = [r for r in conn.execute(query).all() if r[0] is not None]
    if not rows:
        return pd.DataFrame({c.PERSON_ID: [], c.TS: pd.to_datetime([], utc=True),
                             c.CHANNEL: [], "revenue": []})  # fmt: skip
    person, first, last, channel, spend = (np.asarray(x) for x in zip(*rows, strict=True))
    first, last = first.astype(np.int64), last.astype(np.int64)
    later = last > first
    return pd.DataFrame(
        {
            c.PERSON_ID: np.concatenate([person, person[later]]).astype(str),
            c.TS: pd.to_datetime(np.concatenate([first, last[later]]), unit="us", utc=True),
            c.CHANNEL: np.concatenate([channel, channel[later]]),
            "revenue": np.concatenate([spend.astype(float), np.zeros(int(later.sum()))]),
        }
    )
