"""One person's side of the store: who they are and their events (erasure: service.erasure).

Every query here is by person and uses the identity and event indexes, so its cost
grows with one person's history, never with the whole store.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Integer, and_, bindparam, or_, select, union, union_all

from features import columns as c
from features.identity import ANONYMOUS, CUSTOMER
from service.storage.activity import Seen, last_seen
from service.storage.codec import micros, moment
from service.storage.engine import fetch_all, insert_into, run_many
from service.storage.reader import decode_events
from service.storage.tables import (
    activity,
    erasures,
    events,
    identities,
)


@dataclass(frozen=True)
class Person:
    """A stitched person: their id and every customer and anonymous id that is theirs."""

    person_id: str
    customer_ids: tuple[str, ...]
    anonymous_ids: tuple[str, ...]


@dataclass(frozen=True)
class Known(Person):
    """A person as this request found them, in the one read that found them: their ids,
    their activity summed over those ids (`seen`, None: no event) and whether any of their
    customer ids was erased. Passed down, so that a request reads them once; what needs
    their activity or erasure takes it from here (`seen_of`), or reads it for a `Person`
    found otherwise."""

    seen: Seen | None = None
    erased: bool = False


def find_person(
    conn: Connection, *, customer_id: str | None = None, anonymous_id: str | None = None
) -> Known | None:
    """The person behind a customer id (or an anonymous id); None when no such id is known.

    One query through the tables' keys: the id's person, every id of that person, each
    id's activity and erasure.
    """
    kind, value = (CUSTOMER, customer_id) if customer_id is not None else (ANONYMOUS, anonymous_id)
    rows = fetch_all(conn, _PERSON_OF_ID, {"kind": kind, "value": value})
    if not rows:
        return None
    ids: dict[str, list[str]] = {CUSTOMER: [], ANONYMOUS: []}
    active = [row for row in rows if row[3] is not None]
    seen = None
    if active:
        seen = Seen(
            events=sum(int(row[3]) for row in active),
            last_ts=max(int(row[4]) for row in active),
            last_arrival=max(int(row[5]) for row in active),
        )
    for id_type, id_value, *_ in rows:
        ids.setdefault(id_type, []).append(id_value)
    return Known(
        str(rows[0][2]),
        tuple(sorted(ids[CUSTOMER])),
        tuple(sorted(ids[ANONYMOUS])),
        seen=seen,
        erased=any(row[0] == CUSTOMER and row[6] is not None for row in rows),
    )


def seen_of(conn: Connection, person: Person) -> Seen | None:
    """The person's activity: as read with them for this request (`Known`), else read now."""
    if isinstance(person, Known):
        return person.seen
    return last_seen(conn, person.customer_ids, person.anonymous_ids)


def _same_id(table: Any, mine: Any) -> Any:
    return and_(table.c[c.ID_TYPE] == mine.c[c.ID_TYPE], table.c[c.ID_VALUE] == mine.c[c.ID_VALUE])


#: Built once (a per-request lookup: building the statement cost more than running it).
_MINE = identities.alias("mine")
_PERSON_OF_ID = (
    select(
        _MINE.c[c.ID_TYPE],
        _MINE.c[c.ID_VALUE],
        _MINE.c[c.PERSON_ID],
        activity.c.events,
        activity.c.last_ts,
        activity.c.last_arrival,
        erasures.c.erased_at,
    )
    .select_from(
        _MINE.outerjoin(activity, _same_id(activity, _MINE)).outerjoin(
            erasures, _same_id(erasures, _MINE)
        )
    )
    .where(
        _MINE.c[c.PERSON_ID]
        == select(identities.c[c.PERSON_ID])
        .where(
            identities.c[c.ID_TYPE] == bindparam("kind"),
            identities.c[c.ID_VALUE] == bindparam("value"),
        )
        .scalar_subquery()
    )
)


def persons_by_id(conn: Connection, person_ids: list[str]) -> list[Person]:
    """The persons with these ids and all their ids (unknown ids are left out)."""
    rows = conn.execute(
        select(identities.c[c.ID_TYPE], identities.c[c.ID_VALUE], identities.c[c.PERSON_ID]).where(
            identities.c[c.PERSON_ID].in_(person_ids)
        )
    ).all()
    ids: dict[str, dict[str, list[str]]] = {}
    for id_type, id_value, person_id in rows:
        ids.setdefault(person_id, {CUSTOMER: [], ANONYMOUS: []}).setdefault(id_type, []).append(
            id_value
        )
    return [
        Person(p, tuple(sorted(kinds[CUSTOMER])), tuple(sorted(kinds[ANONYMOUS])))
        for p, kinds in ids.items()
    ]


def _id_columns(person: Person) -> list[tuple[str, tuple[str, ...]]]:
    """The event columns that hold the person's ids, with those ids (kinds they have)."""
    kinds = ((c.CUSTOMER_ID, person.customer_ids), (c.ANONYMOUS_ID, person.anonymous_ids))
    return [(column, ids) for column, ids in kinds if ids]


def person_events(
    conn: Connection, person: Person, *, since: datetime | None = None
) -> pd.DataFrame:
    """The person's events in time order (optionally from `since` on), with person_id set.

    One indexed query per kind of id, joined by UNION (an OR across two columns would
    make the database scan every event).
    """
    columns = [events.c[name] for name in c.EVENT_COLUMNS]
    parts = []
    for column, ids in _id_columns(person):
        query = select(*columns).where(events.c[column].in_(ids))
        if since is not None:
            query = query.where(events.c[c.TS] >= micros(since))
        parts.append(query)
    if not parts:
        frame = pd.DataFrame(columns=list(c.EVENT_COLUMNS))
    else:
        both = parts[0] if len(parts) == 1 else union(*parts).subquery().select()
        rows = conn.execute(both).all()
        # Column by column: pandas building a frame from Row objects is slow.
        values = list(zip(*rows, strict=True)) or [()] * len(c.EVENT_COLUMNS)
        frame = pd.DataFrame(dict(zip(c.EVENT_COLUMNS, values, strict=True)))
        frame = frame.sort_values([c.TS, c.EVENT_ID], kind="stable", ignore_index=True)
    return decode_events(frame).assign(**{c.PERSON_ID: person.person_id})


def recent_events(
    conn: Connection, person: Person, types: Sequence[str], limit: int
) -> list[dict[str, Any]]:
    """The person's latest `limit` events of `types`, newest first, as records (`ts` a UTC
    datetime): in one read, at most `limit` rows per id through the (id, ts) indexes,
    whatever the length of the history."""
    ids = [(column, value) for column, values in _id_columns(person) for value in values]
    if not ids:
        return []
    params: dict[str, Any] = {f"id{i}": value for i, (_, value) in enumerate(ids)}
    params.update(types=list(types), limit=limit)
    rows = set(fetch_all(conn, _latest_of(tuple(column for column, _ in ids)), params))
    unique = sorted(rows, key=lambda r: (r[1], r[0]), reverse=True)[:limit]
    records = [dict(zip(c.EVENT_COLUMNS, row, strict=True)) for row in unique]
    for record in records:
        record[c.TS] = moment(int(record[c.TS]))
    return records


@functools.lru_cache(maxsize=128)
def _latest_of(columns: tuple[str, ...]) -> Any:
    """The latest events of some types of each id in turn (the event column of id i in
    `columns[i]`, its value the parameter `id{i}`), each read limited on its own: an
    id's newest rows through its (id, ts) index, whatever the length of its history.
    One read of several ids of a column (an IN list) has no index in time order but
    the events' own ts index, which PostgreSQL walked back from the newest event of
    the whole log until it had found the person's: 30 ms for a customer with a
    loyalty id."""
    parts = [_latest(column, f"id{i}") for i, column in enumerate(columns)]
    if len(parts) == 1:
        return parts[0]
    return union_all(*(part.subquery().select() for part in parts))


def _latest(column: str, parameter: str) -> Any:
    """The latest events of some types of one id (the `parameter`) in one event column."""
    return (
        select(*(events.c[name] for name in c.EVENT_COLUMNS))
        .where(
            events.c[column] == bindparam(parameter),
            events.c[c.TYPE].in_(bindparam("types", expanding=True)),
        )
        .order_by(events.c[c.TS].desc(), events.c[c.EVENT_ID].desc())
        .limit(bindparam("limit", type_=Integer))
    )


def person_moves(
    conn: Connection,
    person: Person,
    since: datetime | None,
    types: list[str],
    spans: list[tuple[int, int]] | None = None,
) -> list[tuple[str, str | None, str | None, pd.Timestamp]]:
    """The person's events of `types` at or after `since` (or within the `spans` of
    event time, microseconds, first and last included) as (type, item_id, offer_id, ts)
    tuples: a few rows, read without building a frame (the per-request fast path)."""
    id_columns = _id_columns(person)
    if not id_columns or (spans is not None and not spans):
        return []
    params: dict[str, Any] = {column: list(ids) for column, ids in id_columns}
    params["types"] = list(types)
    if since is not None:
        params["since"] = micros(since)
    for i, (first, last) in enumerate(spans or ()):
        params[f"first{i}"], params[f"last{i}"] = first, last
    query = _moves_of(
        tuple(column for column, _ in id_columns),
        since is not None,
        None if spans is None else len(spans),
    )
    return [
        (kind, item, offer, pd.Timestamp(moment(int(ts))))
        for kind, item, offer, ts in fetch_all(conn, query, params)
    ]


@functools.lru_cache(maxsize=256)
def _moves_of(columns: tuple[str, ...], since: bool, spans: int | None) -> Any:
    """`person_moves`' read, built once per shape: the ids of each event column in
    `columns` (a list parameter named for the column), `types`, with `since` a lower
    bound on the event time, with `spans` that many (first{i}, last{i}) bounds."""
    cols = [events.c[c.TYPE], events.c[c.ITEM_ID], events.c[c.OFFER_ID], events.c[c.TS]]
    ts = events.c[c.TS]
    when = [ts >= bindparam("since")] if since else []
    if spans is not None:
        when.append(
            or_(*(ts.between(bindparam(f"first{i}"), bindparam(f"last{i}")) for i in range(spans)))
        )
    parts = [
        select(*cols).where(
            events.c[column].in_(bindparam(column, expanding=True)),
            events.c[c.TYPE].in_(bindparam("types", expanding=True)),
            *when,
        )
        for column in columns
    ]
    return parts[0] if len(parts) == 1 else union(*parts)


def link_identities(conn: Connection, stored: list[dict[str, Any]]) -> None:
    """Add the ids of newly posted events (canonical rows) to the identity map, in the
    caller's transaction.

    A new customer id becomes its own person; a new anonymous id seen with a customer
    joins that customer's person (the first link wins, as in `features.identity`). Links
    are written with conflict handling, so two first events of one new customer stored at
    once both succeed. A full re-stitch (`omni ingest`) also merges by e-mail.
    """
    known = sorted({str(r[c.CUSTOMER_ID]) for r in stored if r[c.CUSTOMER_ID] is not None})
    if not known:
        return
    new_people = [
        {c.ID_TYPE: CUSTOMER, c.ID_VALUE: cid, c.PERSON_ID: cid, "conflict": False} for cid in known
    ]
    run_many(conn, _insert_new, new_people)
    first_seen: dict[str, str] = {}
    pairs = [r for r in stored if r[c.CUSTOMER_ID] is not None and r[c.ANONYMOUS_ID] is not None]
    for row in sorted(pairs, key=lambda r: r[c.TS]):
        first_seen.setdefault(str(row[c.ANONYMOUS_ID]), str(row[c.CUSTOMER_ID]))
    if not first_seen:
        return
    owners = dict(fetch_all(conn, _OWNERS, {"ids": sorted(set(first_seen.values()))}))
    links = [
        {c.ID_TYPE: ANONYMOUS, c.ID_VALUE: anon, c.PERSON_ID: owners[cid], "conflict": False}
        for anon, cid in sorted(first_seen.items())
    ]
    run_many(conn, _insert_new, links)


_OWNERS = select(identities.c[c.ID_VALUE], identities.c[c.PERSON_ID]).where(
    identities.c[c.ID_TYPE] == CUSTOMER,
    identities.c[c.ID_VALUE].in_(bindparam("ids", expanding=True)),
)


def _insert_new(conn: Connection) -> Any:
    """INSERT into the identity map that leaves an id already mapped as it is."""
    insert = insert_into(conn, identities)
    return insert.on_conflict_do_nothing(index_elements=[c.ID_TYPE, c.ID_VALUE])
