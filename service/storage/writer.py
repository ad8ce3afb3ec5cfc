"""Write validated batches: events once per event_id, reference data by key, all or nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection

from features import columns as c
from features.schema import TableSchema
from features.validation import ValidBatch
from service.storage.bulk import insert_new
from service.storage.codec import to_micros, to_rows
from service.storage.engine import insert_into, many_returning
from service.storage.tables import BY_SCHEMA


@dataclass(frozen=True)
class Applied:
    """What one batch did: records received, newly stored, skipped as already known, and
    dropped as what an erased id did before its erasure (`service.erasure`)."""

    table: str
    received: int
    stored: int
    duplicates: int
    erased: int = 0


def write_batch(
    conn: Connection,
    schema: TableSchema,
    batch: ValidBatch,
    *,
    chunk_rows: int = 100_000,
    on_rows: Callable[[int], None] | None = None,
) -> Applied:
    """Write `batch` into its table inside the caller's transaction.

    Events are insert-only, in bulk (`service.storage.bulk`): an `event_id` already stored
    is skipped and counted as a duplicate (re-sending is a no-op). Reference records
    replace the record with the same key. Raises whatever the database raises; the
    caller's transaction then rolls back.
    """
    table = BY_SCHEMA[schema.name]
    frame = _encode(batch.frame)
    if schema.name == "events":
        frame["ingested_at"] = int(time.time() * 1_000_000)
    insert = insert_into(conn, table)
    updates = {col: insert.excluded[col] for col in frame.columns if col not in schema.key}
    upsert = insert.on_conflict_do_update(index_elements=list(schema.key), set_=updates)
    stored = 0
    for start in range(0, len(frame), chunk_rows):
        chunk = frame.iloc[start : start + chunk_rows]
        if schema.name == "events":
            stored += insert_new(conn, table, chunk, schema.key[0])
        else:
            conn.execute(upsert, to_rows(chunk))
            stored += len(chunk)
        if on_rows is not None:
            on_rows(len(chunk))
    received = len(batch.frame) + batch.repeats
    return Applied(schema.name, received, stored, received - stored)


def insert_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert events (rows as stored: times in microseconds) whose event_id is new, inside
    the caller's transaction; returns the event ids actually inserted.

    The database says which rows it inserted (`ON CONFLICT DO NOTHING ... RETURNING`), so
    two requests carrying the same event at once store it once and count it once.
    """
    if not rows:
        return set()
    return {str(event_id) for (event_id,) in many_returning(conn, _insert_new_events, rows)}


def _insert_new_events(conn: Connection) -> Any:
    table = BY_SCHEMA["events"]
    insert = insert_into(conn, table).on_conflict_do_nothing(index_elements=[c.EVENT_ID])
    return insert.returning(table.c[c.EVENT_ID])


def _encode(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = to_micros(out[col])
    return out
