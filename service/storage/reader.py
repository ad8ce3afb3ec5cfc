"""Read events back for training: columnar, in chunks, with an explicit time cutoff."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, func, select

from features import columns as c
from features.identity import ANONYMOUS, CUSTOMER, resolve
from features.point_in_time import KNOWN_AT, known_at
from service.storage.codec import from_micros, micros
from service.storage.identities import load_identities
from service.storage.tables import BY_SCHEMA, events, identities

_TEXT_COLUMNS = [col for col in c.EVENT_COLUMNS if col not in (c.TS, c.QUANTITY, c.PRICE)]


def iter_events(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    chunk_rows: int = 100_000,
    types: Collection[str] | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield events with `since <= ts < until` (of `types` only, when given) in time
    order, `chunk_rows` at a time.

    Each chunk has the event columns, `ts` as UTC datetimes, a `person_id` column from
    the stored identity map (missing for anonymous ids never linked to a customer) and
    `known_at`, when the store first knew the event (`features.point_in_time`).
    The database streams the rows (a server-side cursor on PostgreSQL), closed as soon as
    the iteration ends or is abandoned.
    """
    query = select(*[events.c[name] for name in c.EVENT_COLUMNS], events.c.ingested_at).order_by(
        events.c[c.TS], events.c[c.EVENT_ID]
    )
    if since is not None:
        query = query.where(events.c[c.TS] >= micros(since))
    if until is not None:
        query = query.where(events.c[c.TS] < micros(until))
    if types is not None:
        query = query.where(events.c[c.TYPE].in_([str(t) for t in types]))
    with engine.connect() as conn:
        identities = load_identities(conn)
        first = conn.execute(select(func.min(events.c.ingested_at))).scalar()
        live_since = pd.Timestamp(0 if first is None else int(first), unit="us", tz="UTC")
        streamed = conn.execution_options(stream_results=True, yield_per=chunk_rows)
        with streamed.execute(query) as result:
            for rows in result.partitions():
                # Column by column: pandas never probes a Row object, which is slow.
                columns = zip(*rows, strict=True)
                names = (*c.EVENT_COLUMNS, "ingested_at")
                frame = pd.DataFrame(dict(zip(names, columns, strict=True)))
                arrived = from_micros(frame.pop("ingested_at"))
                frame = _decode(frame, identities)
                frame[KNOWN_AT] = known_at(frame[c.TS], arrived, live_since)
                yield frame


def recent_events(
    engine: Engine, *, since: datetime, until: datetime, types: Collection[str]
) -> pd.DataFrame:
    """Events of `types` with `since <= ts < until`, each with the person its customer or
    anonymous id belongs to (None when neither is known), resolved in the database: for
    a narrow slice of the store, without reading the whole identity map."""
    by_customer = identities.alias("by_customer")
    by_anonymous = identities.alias("by_anonymous")
    query = (
        select(
            *[events.c[name] for name in c.EVENT_COLUMNS],
            func.coalesce(by_customer.c[c.PERSON_ID], by_anonymous.c[c.PERSON_ID]),
        )
        .outerjoin(
            by_customer,
            (by_customer.c[c.ID_TYPE] == CUSTOMER)
            & (by_customer.c[c.ID_VALUE] == events.c[c.CUSTOMER_ID]),
        )
        .outerjoin(
            by_anonymous,
            (by_anonymous.c[c.ID_TYPE] == ANONYMOUS)
            & (by_anonymous.c[c.ID_VALUE] == events.c[c.ANONYMOUS_ID]),
        )
        .where(
            events.c[c.TS] >= micros(since),
            events.c[c.TS] < micros(until),
            events.c[c.TYPE].in_([str(t) for t in types]),
        )
        .order_by(events.c[c.TS], events.c[c.EVENT_ID])
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(rows, columns=[*c.EVENT_COLUMNS, c.PERSON_ID])
    person = frame.pop(c.PERSON_ID).astype(object)
    frame = decode_events(frame)
    # A customer id never stitched is its own person (as `features.identity.resolve`).
    frame[c.PERSON_ID] = person.where(person.notna(), frame[c.CUSTOMER_ID])
    return frame


def _decode(chunk: pd.DataFrame, identities: pd.DataFrame) -> pd.DataFrame:
    """Database rows -> typed event columns plus the resolved person."""
    chunk = decode_events(chunk)
    chunk[c.PERSON_ID] = resolve(chunk, identities)
    return chunk


def decode_events(chunk: pd.DataFrame) -> pd.DataFrame:
    """Database rows (event columns) -> typed event columns, in place."""
    for col in _TEXT_COLUMNS:
        chunk[col] = chunk[col].astype(object).where(chunk[col].notna(), None)
    chunk[c.TS] = from_micros(chunk[c.TS])
    chunk[c.QUANTITY] = chunk[c.QUANTITY].astype("Int64")
    chunk[c.PRICE] = chunk[c.PRICE].astype("float64")
    return chunk


def load_events(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    chunk_rows: int = 100_000,
    types: Collection[str] | None = None,
) -> pd.DataFrame:
    """All events with `since <= ts < until` in one frame (see `iter_events`)."""
    chunks = list(iter_events(engine, since=since, until=until, chunk_rows=chunk_rows, types=types))
    if not chunks:
        empty = pd.DataFrame(columns=[*c.EVENT_COLUMNS, c.PERSON_ID, KNOWN_AT])
        empty[c.TS] = pd.Series(dtype="datetime64[ns, UTC]")
        empty[KNOWN_AT] = pd.Series(dtype="datetime64[ns, UTC]")
        return empty
    return pd.concat(chunks, ignore_index=True)


def load_table(engine: Engine, name: str) -> pd.DataFrame:
    """A whole reference table (catalogue, stores, inventory, customers, offers)."""
    table = BY_SCHEMA[name]
    with engine.connect() as conn:
        rows = conn.execute(select(table)).all()
    return pd.DataFrame(rows, columns=[col.name for col in table.columns])
