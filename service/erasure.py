"""Erasure (the right to be forgotten) and what an erased id may do afterwards.

`erase` deletes everything the store holds of a person in one transaction and records
their ids, with the time, in the erasure ledger. Every path reads that ledger:
- the service treats them as strangers at once, on every worker (`was_erased`, read per
  request), and registered models lose their rows (`omni privacy scrub`);
- what happened before the erasure never comes back: an event of an erased id at or
  before its erasure, or a customer record created before it, is dropped on every path
  (the API, the tablet, file ingest) and counted as erased -- a client's retry queue or
  a replayed export cannot restore the history. What happens after it is stored: the id
  starts over as a new person with no past.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, delete, insert, select

from features import columns as c
from features.identity import ANONYMOUS, CUSTOMER
from service.people import Known, Person
from service.storage import answers, state
from service.storage.codec import micros, to_micros
from service.storage.engine import fetch_all
from service.storage.ids import ID_COLUMNS, ids_of, of_kind
from service.storage.tables import (
    contacts,
    customers,
    decisions,
    erasures,
    events,
    exposures,
    identities,
    no_offers,
    triggers,
)


def was_erased(conn: Connection, person: Person) -> bool:
    """Whether any of the person's customer ids was erased (models trained before then
    still hold what they learned of it). Read per request from the store, so an erasure
    through any replica counts at once in every other (with a `Known` person, as read
    with them for this request)."""
    if isinstance(person, Known):
        return person.erased
    if not person.customer_ids:
        return False
    ids = {"kind": CUSTOMER, "ids": list(person.customer_ids)}
    return conn.execute(_ERASED, ids).first() is not None


#: Built once (a per-request lookup: building the statement cost more than running it).
_ERASED = select(erasures.c[c.ID_VALUE]).where(*of_kind(erasures)).limit(1)


#: An erased id: its kind (customer or anonymous) and value.
ErasedId = tuple[str, str]


def erased_ids(conn: Connection, ids: Iterable[ErasedId] | None = None) -> dict[ErasedId, int]:
    """Erased ids (of `ids` only, when given: one lookup of the ledger's key per kind) and
    when each was erased (microseconds since the epoch)."""
    query = select(erasures.c[c.ID_TYPE], erasures.c[c.ID_VALUE], erasures.c["erased_at"])
    rows: Sequence[Any]
    if ids is None:
        rows = conn.execute(query).all()
    else:
        wanted: dict[str, set[str]] = {}
        for kind, value in ids:
            wanted.setdefault(kind, set()).add(value)
        rows = [
            row
            for kind, values in wanted.items()
            for row in fetch_all(conn, _ERASED_OF, {"kind": kind, "ids": sorted(values)})
        ]
    return {(str(kind), str(value)): int(at) for kind, value, at in rows}


#: Built once (run with every batch of events).
_ERASED_OF = select(erasures.c[c.ID_TYPE], erasures.c[c.ID_VALUE], erasures.c["erased_at"]).where(
    *of_kind(erasures)
)


#: Whether anyone was erased at all: one row read, before the lookup of a batch's ids.
_ANY_ERASED = select(erasures.c[c.ID_VALUE]).limit(1)


def before_erasure(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Event ids of `rows` (as stored: `ts` in microseconds) that happened at or before
    the erasure of their customer or anonymous id: they are not to be stored."""
    if not fetch_all(conn, _ANY_ERASED, {}):  # the common case: nobody erased yet
        return set()
    erased = erased_ids(conn, (i for row in rows for i in ids_of(row)))
    if not erased:
        return set()
    return {
        str(row[c.EVENT_ID])
        for row in rows
        if any(row[c.TS] <= erased.get(i, -1) for i in ids_of(row))
    }


def drop_before_erasure(
    conn: Connection, frame: pd.DataFrame, table: str
) -> tuple[pd.DataFrame, int]:
    """A validated file batch without what erased ids did before their erasure (events)
    or the records of customers created before it; returns it and how many were dropped."""
    if table not in ("events", "customers") or frame.empty:
        return frame, 0
    erased = erased_ids(conn)
    if not erased:
        return frame, 0
    when = c.TS if table == "events" else c.CREATED_AT
    moment = to_micros(frame[when]).astype("float64").fillna(-np.inf).to_numpy()
    latest = np.full(len(frame), -np.inf)
    for kind, col in ID_COLUMNS.items():
        if col not in frame.columns:
            continue
        at = pd.Series({v: t for (k, v), t in erased.items() if k == kind}, dtype="float64")
        hit = frame[col].map(at).astype("float64").to_numpy()
        latest = np.fmax(latest, hit)
    drop = moment <= latest
    return frame[~drop], int(drop.sum())


def erase(engine: Engine, person: Person, now: datetime | None = None) -> int:
    """Delete the person's events, identities, customer record, online state, answers,
    decisions, contacts, triggers and exposures in one transaction, and record their ids as erased
    at `now` (the service's clock; default: the wall clock); returns the number of events
    deleted."""
    with engine.begin() as conn:
        deleted = 0
        if person.customer_ids:
            deleted += conn.execute(
                delete(events).where(events.c[c.CUSTOMER_ID].in_(person.customer_ids))
            ).rowcount
            conn.execute(
                delete(customers).where(customers.c[c.CUSTOMER_ID].in_(person.customer_ids))
            )
        if person.anonymous_ids:
            deleted += conn.execute(
                delete(events).where(events.c[c.ANONYMOUS_ID].in_(person.anonymous_ids))
            ).rowcount
        conn.execute(delete(identities).where(identities.c[c.PERSON_ID] == person.person_id))
        state.forget(conn, person.customer_ids, person.anonymous_ids)
        answers.forget(conn, person.person_id)
        # What was decided, sent and shown.
        for ledger in (decisions, no_offers, contacts, triggers, exposures):
            conn.execute(delete(ledger).where(ledger.c[c.PERSON_ID] == person.person_id))
        at = micros(now or datetime.now(UTC))
        erased = [(CUSTOMER, i) for i in person.customer_ids] + [
            (ANONYMOUS, i) for i in person.anonymous_ids
        ]
        conn.execute(
            delete(erasures).where(
                erasures.c[c.ID_VALUE].in_([value for _, value in erased] or [""])
            )
        )
        conn.execute(
            insert(erasures),
            [{c.ID_TYPE: kind, c.ID_VALUE: value, "erased_at": at} for kind, value in erased],
        )
    return deleted
