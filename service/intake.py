"""Events arriving one request at a time (the API, the tablet page): checked row by row,
stored once, with the online state they change, in one transaction.

A request's events are written together or not at all. `accept_batches` writes the
batches of several concurrent requests in one transaction (a group commit,
`service.group_commit`): each batch is checked on its own, and each gets its own answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine

from features import columns as c
from features.records import validate_records
from features.schema import EVENTS
from features.validation import BatchRejected
from service.erasure import before_erasure
from service.people import link_identities
from service.storage import state
from service.storage.engine import begin_write, pipelined
from service.storage.writer import Applied, insert_events

log = logging.getLogger("omni.intake")

#: One request's events as received (mappings in the event schema).
Records = Sequence[Mapping[str, Any]]


def accept_events(
    engine: Engine,
    records: Records,
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
    rows = _checked(records)
    with begin_write(engine) as conn:
        if also is not None:
            also(conn)
        (applied,) = _write(conn, [(len(records), rows)])
    return applied


def accept_batches(engine: Engine, batches: Sequence[Records]) -> list[Applied | Exception]:
    """Each of `batches` (concurrent requests' events) checked on its own, the valid ones
    written in one transaction: per batch, in order, what it did (`Applied`), or why it
    wrote nothing (`BatchRejected` for bad events, or the error its write raised).

    A batch's events are stored together or not at all. An event sent by two batches is
    stored once and counted for the first; the other counts it as a duplicate, as when
    the two requests are written one after the other. When the shared write fails (a
    database error), each batch is written again alone, so that one batch's failure is
    its own answer and the others are stored.
    """
    outcomes: dict[int, Applied | Exception] = {}
    checked: dict[int, tuple[int, list[dict[str, Any]]]] = {}
    for i, records in enumerate(batches):
        try:
            checked[i] = (len(records), _checked(records))
        except BatchRejected as rejected:
            outcomes[i] = rejected
    if checked:
        try:
            with begin_write(engine) as conn:
                outcomes.update(zip(checked, _write(conn, list(checked.values())), strict=True))
        except Exception as error:
            if len(checked) == 1:  # alone already: its error is its answer
                outcomes.update(dict.fromkeys(checked, error))
            else:
                log.warning(
                    "a group of %d event batches failed (%s): each written alone",
                    len(checked),
                    error,
                )
                outcomes.update((i, _alone(engine, batch)) for i, batch in checked.items())
    return [outcomes[i] for i in range(len(batches))]


def _alone(engine: Engine, batch: tuple[int, list[dict[str, Any]]]) -> Applied | Exception:
    """One checked batch written in its own transaction: what it did, or its error."""
    try:
        with begin_write(engine) as conn:
            (applied,) = _write(conn, [batch])
    except Exception as error:
        return error
    return applied


def _checked(records: Records) -> list[dict[str, Any]]:
    """The records as the events table holds them (raises `BatchRejected`)."""
    valid = validate_records(records, EVENTS).rows if records else []
    arrival = int(time.time() * 1_000_000)
    return [_stored(row, arrival) for row in valid]


def _write(conn: Connection, batches: Sequence[tuple[int, list[dict[str, Any]]]]) -> list[Applied]:
    """Store checked batches ((records received, rows)) in the caller's transaction: the
    events new to the store, their identity links and the online state they change."""
    rows: list[dict[str, Any]] = []
    first: set[str] = set()  # an event sent by two batches goes in once, for the first
    for _, batch in batches:
        for row in batch:
            if row[c.EVENT_ID] not in first:
                first.add(row[c.EVENT_ID])
                rows.append(row)
    with pipelined(conn):  # waits for the erasure check and the stored ids only
        forgotten = before_erasure(conn, rows)
        if forgotten:
            rows = [row for row in rows if row[c.EVENT_ID] not in forgotten]
        new = insert_events(conn, rows)
        fresh = [row for row in rows if row[c.EVENT_ID] in new]
        link_identities(conn, rows)
        state.apply(conn, fresh)
    out = []
    claimed: set[str] = set()
    for received, batch in batches:
        stored = erased = 0
        for row in batch:
            key = row[c.EVENT_ID]
            if key in forgotten:
                erased += 1
            elif key in new and key not in claimed:
                claimed.add(key)
                stored += 1
        out.append(Applied("events", received, stored, received - stored - erased, erased))
    return out


def _stored(row: dict[str, Any], arrival: int) -> dict[str, Any]:
    """A canonical record as the events table holds it: times in microseconds."""
    return {**row, c.TS: row[c.TS].value // 1000, "ingested_at": arrival}
