"""The event log as a lake: Parquet files in one folder per day, for engines beyond one
machine (Spark reads the folder as one table partitioned by `day`).

`write_lake` streams the stored events (`service.storage.reader.event_batches`) into
`<folder>/day=YYYY-MM-DD/part-<n>.parquet`, memory bounded by the chunk size whatever
the store's size. The files hold the events as stored: times as UTC timestamps
(`ts`, and `ingested_at`, when the store received each one), ids as text; persons are
resolved when the lake is read, from the identity map as it is then. Writing a range of
days again replaces those days' files (a nightly export of yesterday is idempotent).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from sqlalchemy import Engine

from features import columns as c
from features import progress
from service.storage.reader import ARRIVED, count_events, event_batches

DAY = "day"
_TIMES = (c.TS, ARRIVED)


@dataclass(frozen=True)
class LakeWritten:
    rows: int
    days: int
    seconds: float


def lake_schema(stored: pa.Schema) -> pa.Schema:
    """The lake's columns: the stored ones, times as UTC timestamps, then `day`."""
    fields = [
        pa.field(f.name, pa.timestamp("us", tz="UTC")) if f.name in _TIMES else f for f in stored
    ]
    return pa.schema([*fields, pa.field(DAY, pa.string())])


def write_lake(
    engine: Engine,
    folder: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    chunk_rows: int = 100_000,
) -> LakeWritten:
    """Write the events with `since <= ts < until` into `folder`, one folder per UTC day
    (those days' earlier files replaced); returns what was written."""
    started = time.perf_counter()
    stream = event_batches(engine, since=since, until=until, chunk_rows=chunk_rows, coded=())
    schema = lake_schema(stream.schema)
    report = progress.current()
    if progress.listening():
        report.start("writing the lake", count_events(engine, since=since, until=until))
    rows = 0
    days: set[str] = set()

    def with_days() -> Iterator[pa.RecordBatch]:
        nonlocal rows
        for batch in stream:
            arrays = [
                col.cast(pa.timestamp("us", tz="UTC")) if name in _TIMES else col
                for name, col in zip(batch.schema.names, batch.columns, strict=True)
            ]
            day = pc.strftime(arrays[batch.schema.get_field_index(c.TS)], "%Y-%m-%d")
            days.update(pc.unique(day).to_pylist())
            rows += batch.num_rows
            report.advance(batch.num_rows)
            yield pa.RecordBatch.from_arrays([*arrays, day], schema=schema)

    folder.mkdir(parents=True, exist_ok=True)
    ds.write_dataset(
        pa.RecordBatchReader.from_batches(schema, with_days()),
        folder,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([(DAY, pa.string())]), flavor="hive"),
        existing_data_behavior="delete_matching",
        basename_template="part-{i}.parquet",
        max_rows_per_file=chunk_rows * 10,
        max_rows_per_group=chunk_rows,
    )
    return LakeWritten(rows, len(days), time.perf_counter() - started)


def read_lake(folder: Path) -> ds.Dataset:
    """The lake at `folder` as one Arrow dataset, `day` from the folder names."""
    return ds.dataset(folder, format="parquet", partitioning="hive")
