"""Events arriving one request at a time (the API, the tablet page): checked row by row,
stored once, with the online state they change, in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine

from features import columns as c
from features.records import validate_records
from features.schema import EVENTS
from service.erasure import before_erasure
from service.people import link_identities
from service.storage import state
from service.storage.engine import begin_write, pipelined
from service.storage.writer import Applied, insert_events


def accept_events(
    engine: Engine,
    records: Sequence[Mapping[str, Any]],
    *,
    also: Callable[[Connection], None] | None = None,
) -> Applied:
    """Validate `records` (raises `features.validation.BatchRejected`, nothing written),
    then store them, link their ids and update the online state in one transaction.
    `also` writes what comes with the events (customer records) in that transaction
    first: if it raises, nothing is written.

    Re-sent events (an event_id already stored) are skipped and change no state. Events
    of an erased id from before its erasure are dropped and counted (`service.erasure`).
    """
    valid = validate_records(records, EVENTS).rows if records else []
    arrival = int(time.time() * 1_000_000)
    rows = [_stored(row, arrival) for row in valid]
    with begin_write(engine) as conn:
        if also is not None:
            also(conn)
        with pipelined(conn):  # waits for the erasure check and the stored ids only
            forgotten = before_erasure(conn, rows)
            if forgotten:
                rows = [row for row in rows if row[c.EVENT_ID] not in forgotten]
            new = insert_events(conn, rows)
            fresh = [row for row in rows if row[c.EVENT_ID] in new]
            link_identities(conn, rows)
            state.apply(conn, fresh)
    received = len(records)
    erased = len(forgotten)
    return Applied("events", received, len(fresh), received - len(fresh) - erased, erased)


def _stored(row: dict[str, Any], arrival: int) -> dict[str, Any]:
    """A canonical record as the events table holds it: times in microseconds."""
    return {**row, c.TS: row[c.TS].value // 1000, "ingested_at": arrival}
