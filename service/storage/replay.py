"""Rebuild a part of the online state by folding the event log through the same `apply`
that new events go through: what is rebuilt equals what was written, by construction."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select

from features import columns as c
from service.storage.ids import ID_COLUMNS
from service.storage.tables import events

#: Events read at once.
CHUNK = 50_000


def replay(
    conn: Connection,
    types: Sequence[str],
    columns: Sequence[str],
    apply: Callable[[Connection, Sequence[Mapping[str, Any]]], None],
) -> None:
    """Fold every stored event of `types` (its ids and `columns`) through `apply`, a
    chunk at a time, inside the caller's transaction."""
    names = list(dict.fromkeys([*ID_COLUMNS.values(), c.TYPE, c.TS, *columns]))
    result = conn.execute(
        select(*[events.c[n] for n in names])
        .where(events.c[c.TYPE].in_(list(types)))
        .execution_options(yield_per=CHUNK)  # this statement only, not the connection
    )
    try:
        for part in result.partitions(CHUNK):
            apply(conn, [dict(zip(names, row, strict=True)) for row in part])
    finally:
        result.close()
