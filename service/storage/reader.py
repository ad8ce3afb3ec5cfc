"""Read events back for training: columnar (Arrow), in chunks, with an explicit time cutoff.

The batch layer reads the whole event log, so it never builds a Python object per row:
ConnectorX streams the query's result as Arrow record batches from SQLite or PostgreSQL
(`service.storage.columnar`), and every text column that repeats (ids, channel, type,
item, store, order, offer) is dictionary-encoded as it arrives, so a frame of events
holds each distinct id once and a small integer code per row (pandas categoricals).
`event_id`, unique per row, stays Arrow text. Persons are resolved on those codes, not row by row.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
from sqlalchemy import ColumnElement, Engine, func, select

from features import columns as c
from features import progress
from features.identity import ANONYMOUS, CUSTOMER, resolve
from features.point_in_time import KNOWN_AT, known_at
from service.storage import columnar
from service.storage.codec import from_micros, micros
from service.storage.identities import load_identities
from service.storage.tables import BY_SCHEMA, events, identities

#: Text columns whose values repeat: dictionary-encoded (categoricals) when read in bulk.
CODED = (
    c.CUSTOMER_ID, c.ANONYMOUS_ID, c.CHANNEL, c.TYPE, c.ITEM_ID, c.STORE_ID, c.ORDER_ID,
    c.OFFER_ID, c.EVENT_NAME, c.STATUS,
)  # fmt: skip
#: When the store received each event (integer microseconds, UTC), read beside the event.
ARRIVED = "ingested_at"
_TEXT_COLUMNS = [col for col in c.EVENT_COLUMNS if col not in (c.TS, c.QUANTITY, c.PRICE)]


def columnar_url(engine: Engine) -> str:
    """The store's URL as ConnectorX takes it (a SQLite file by its absolute path,
    PostgreSQL without the SQLAlchemy driver name). Raises ValueError for a store
    that cannot be read columnar (an in-memory SQLite database)."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("an in-memory SQLite store cannot be read by the batch layer")
        return f"sqlite://{Path(url.database).resolve()}"
    if url.get_backend_name() == "postgresql":
        plain = url.set(drivername="postgresql")
        return plain.render_as_string(hide_password=False)
    raise ValueError(f"the batch layer reads SQLite or PostgreSQL stores, not {url.drivername}")


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

    Each chunk has the event columns (the repeating text ones as categoricals), `ts` as
    UTC datetimes, a categorical `person_id` from the stored identity map (missing for
    anonymous ids never linked to a customer) and `known_at`, when the store first knew
    the event (`features.point_in_time`). Raises ValueError for a naive cutoff.
    """
    people, live_since = _identity_and_start(engine)
    for batch in event_batches(
        engine, since=since, until=until, chunk_rows=chunk_rows, types=types
    ):
        yield _frame(pa.Table.from_batches([batch]), people, live_since)


def load_events(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    chunk_rows: int = 100_000,
    types: Collection[str] | None = None,
) -> pd.DataFrame:
    """All events with `since <= ts < until` in one frame (the columns of `iter_events`),
    each categorical column with one dictionary over the whole frame. Memory grows with
    the rows (about 80 bytes each) and the distinct ids, never with a Python object per
    row: each chunk is encoded as it arrives."""
    people, live_since = _identity_and_start(engine)
    report = progress.current()
    if progress.listening():
        report.start("reading events", count_events(engine, since=since, until=until, types=types))
    stream = event_batches(engine, since=since, until=until, chunk_rows=chunk_rows, types=types)
    batches = []
    for batch in stream:
        batches.append(batch)
        report.advance(batch.num_rows)
    table = pa.Table.from_batches(batches, schema=stream.schema).unify_dictionaries()
    del batches  # the table alone holds the rows now: it is freed column by column below
    return _frame(table, people, live_since)


def event_batches(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    chunk_rows: int = 100_000,
    types: Collection[str] | None = None,
    coded: Collection[str] = CODED,
) -> columnar.Batches:
    """The stored events with `since <= ts < until` (of `types`) in time order, as Arrow
    record batches of the stored columns (times as integer microseconds, `ingested_at`
    included), the `coded` columns dictionary-encoded."""
    query = (
        select(*[events.c[name] for name in c.EVENT_COLUMNS], events.c[ARRIVED])
        .where(*_selected(since, until, types))
        .order_by(events.c[c.TS], events.c[c.EVENT_ID])
    )
    # Literal values: integers (times) and the schema's event types, never free text.
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    return columnar.stream(columnar_url(engine), sql, chunk_rows, coded)


def _selected(
    since: datetime | None, until: datetime | None, types: Collection[str] | None
) -> list[ColumnElement[bool]]:
    """The conditions picking events with `since <= ts < until` of `types`."""
    where = []
    if since is not None:
        where.append(events.c[c.TS] >= micros(since))
    if until is not None:
        where.append(events.c[c.TS] < micros(until))
    if types is not None:
        where.append(events.c[c.TYPE].in_([str(t) for t in types]))
    return where


def count_events(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    types: Collection[str] | None = None,
) -> int:
    """How many stored events have `since <= ts < until` (of `types`)."""
    query = select(func.count()).select_from(events).where(*_selected(since, until, types))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _identity_and_start(engine: Engine) -> tuple[pd.DataFrame, pd.Timestamp]:
    """The stored identity map, and when the store's first event arrived."""
    with engine.connect() as conn:
        people = load_identities(conn)
        first = conn.execute(select(func.min(events.c[ARRIVED]))).scalar()
    return people, pd.Timestamp(0 if first is None else int(first), unit="us", tz="UTC")


def _frame(table: pa.Table, people: pd.DataFrame, live_since: pd.Timestamp) -> pd.DataFrame:
    """Arrow events (as read, `CODED` columns encoded) -> the typed frame of `iter_events`.
    Consumes `table`: each column's Arrow memory is released once converted."""
    frame: pd.DataFrame = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    arrived = from_micros(frame.pop(ARRIVED))
    frame[c.EVENT_ID] = frame[c.EVENT_ID].astype("str")
    frame[c.TS] = from_micros(frame[c.TS])
    frame[c.QUANTITY] = frame[c.QUANTITY].astype("Int64")
    frame[c.PRICE] = frame[c.PRICE].astype("float64")
    frame[c.PERSON_ID] = resolve(frame, people)
    frame[KNOWN_AT] = known_at(frame[c.TS], arrived, live_since)
    return frame


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


def decode_events(chunk: pd.DataFrame) -> pd.DataFrame:
    """Database rows (event columns) -> typed event columns, in place."""
    for col in _TEXT_COLUMNS:
        chunk[col] = chunk[col].astype(object).where(chunk[col].notna(), None)
    chunk[c.TS] = from_micros(chunk[c.TS])
    chunk[c.QUANTITY] = chunk[c.QUANTITY].astype("Int64")
    chunk[c.PRICE] = chunk[c.PRICE].astype("float64")
    return chunk


def load_table(engine: Engine, name: str) -> pd.DataFrame:
    """A whole reference table (catalogue, stores, inventory, customers, offers)."""
    table = BY_SCHEMA[name]
    with engine.connect() as conn:
        rows = conn.execute(select(table)).all()
    return pd.DataFrame(rows, columns=[col.name for col in table.columns])
