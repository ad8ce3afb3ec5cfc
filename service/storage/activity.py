"""Online state per id: how many events, their span in event time, when the latest arrived.

Written in the transaction that stores the events (`apply`), from the events newly stored
only (a re-sent event changes nothing); rebuilt from the event log whole (`rebuild`).
A request asks "anything new for this person since the answer was made?" with
`last_seen`: one read by the table's key, whatever the length of their history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, literal, select

from features import columns as c
from service.storage.engine import greatest_least, insert_into, run_many
from service.storage.ids import ID_COLUMNS, ids_of, of_ids, read_ids
from service.storage.tables import activity, events, id_channels, identities


@dataclass(frozen=True)
class Seen:
    """A person's activity over all their ids: event count, latest event time and latest
    arrival (integer microseconds, UTC)."""

    events: int
    last_ts: int
    last_arrival: int


def apply(conn: Connection, stored: Sequence[Mapping[str, Any]]) -> None:
    """Fold newly stored events (rows with ts and ingested_at in microseconds) into the
    per-id state, inside the caller's transaction."""
    totals: dict[tuple[str, str], list[int]] = {}
    for row in stored:
        for kind, value in ids_of(row):
            ts, arrival = int(row[c.TS]), int(row["ingested_at"])
            seen = totals.get((kind, value))
            if seen is None:
                totals[(kind, value)] = [1, ts, ts, arrival]
            else:
                seen[0] += 1
                seen[1], seen[2] = min(seen[1], ts), max(seen[2], ts)
                seen[3] = max(seen[3], arrival)
    if not totals:
        return
    seen_in = sorted(
        {(kind, value, row[c.CHANNEL]) for row in stored for kind, value in ids_of(row)}
    )
    run_many(
        conn,
        _add_channels,
        [{c.ID_TYPE: k, c.ID_VALUE: v, c.CHANNEL: ch} for k, v, ch in seen_in],
    )
    rows = [
        {
            c.ID_TYPE: kind,
            c.ID_VALUE: value,
            "events": n,
            "first_ts": first,
            "last_ts": last,
            "last_arrival": arrival,
        }
        for (kind, value), (n, first, last, arrival) in sorted(totals.items())
    ]
    run_many(conn, _upsert, rows)


def _add_channels(conn: Connection) -> Any:
    return insert_into(conn, id_channels).on_conflict_do_nothing()


def _upsert(conn: Connection) -> Any:
    insert = insert_into(conn, activity)
    new, old = insert.excluded, activity.c
    greatest, least = greatest_least(conn)
    return insert.on_conflict_do_update(
        index_elements=[c.ID_TYPE, c.ID_VALUE],
        set_={
            "events": old.events + new.events,
            "first_ts": least(old.first_ts, new.first_ts),
            "last_ts": greatest(old.last_ts, new.last_ts),
            "last_arrival": greatest(old.last_arrival, new.last_arrival),
        },
    )


def rebuild(conn: Connection) -> int:
    """Recompute every id's state from the event log (`omni rebuild-state`, and after a
    file ingest); returns the number of ids."""
    conn.execute(delete(activity))
    conn.execute(delete(id_channels))
    for kind, column in ID_COLUMNS.items():
        ids = events.c[column]
        conn.execute(
            id_channels.insert().from_select(
                [c.ID_TYPE, c.ID_VALUE, c.CHANNEL],
                select(literal(kind), ids, events.c[c.CHANNEL]).where(ids.is_not(None)).distinct(),
            )
        )
        grouped = (
            select(
                literal(kind),
                ids,
                func.count(),
                func.min(events.c[c.TS]),
                func.max(events.c[c.TS]),
                func.max(events.c.ingested_at),
            )
            .where(ids.is_not(None))
            .group_by(ids)
        )
        conn.execute(
            activity.insert().from_select(
                [c.ID_TYPE, c.ID_VALUE, "events", "first_ts", "last_ts", "last_arrival"], grouped
            )
        )
    return int(conn.execute(select(func.count()).select_from(activity)).scalar_one())


def last_seen(
    conn: Connection, customer_ids: Iterable[str], anonymous_ids: Iterable[str]
) -> Seen | None:
    """The activity of the person with these ids, summed over them (None: no event)."""
    rows = read_ids(conn, _SEEN, customer_ids, anonymous_ids)
    if not rows:
        return None
    return Seen(
        events=sum(int(r[0]) for r in rows),
        last_ts=max(int(r[1]) for r in rows),
        last_arrival=max(int(r[2]) for r in rows),
    )


#: Built once (a per-request lookup: building the statement cost more than running it).
_SEEN = select(activity.c.events, activity.c.last_ts, activity.c.last_arrival).where(
    of_ids(activity)
)


def last_arrivals(conn: Connection) -> dict[str, int]:
    """Every known person's latest arrival over all their ids (microseconds): what
    `last_seen` says of each, in one read (a batch deciding for many persons)."""
    rows = conn.execute(
        select(identities.c[c.PERSON_ID], func.max(activity.c.last_arrival))
        .join(
            identities,
            (identities.c[c.ID_TYPE] == activity.c[c.ID_TYPE])
            & (identities.c[c.ID_VALUE] == activity.c[c.ID_VALUE]),
        )
        .group_by(identities.c[c.PERSON_ID])
    ).all()
    return {str(p): int(at) for p, at in rows}


def channels(
    conn: Connection, customer_ids: Iterable[str], anonymous_ids: Iterable[str]
) -> list[str]:
    """The channels the person with these ids was seen in, sorted."""
    return sorted({str(r[0]) for r in read_ids(conn, _CHANNELS, customer_ids, anonymous_ids)})


_CHANNELS = select(id_channels.c[c.CHANNEL]).where(of_ids(id_channels))
