"""Open the batch engine a command runs on: the embedded one over the store, or Spark
over a lake folder (the settings' `lake_dir`, or the store exported to a temporary one)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd
import pyarrow as pa
from sqlalchemy import Engine

from features import progress
from features.churn_sql import micros
from features.engines import EVENTS, BatchEngine, Embedded
from service.settings import Settings
from service.storage.lake import write_lake
from service.storage.reader import count_events, event_batches

if TYPE_CHECKING:
    from features.spark import SparkEngine

EngineName = Literal["embedded", "spark"]


class EngineUnavailable(RuntimeError):
    """The batch engine asked for cannot run (Spark cannot start, an empty lake)."""


@contextmanager
def batch_engine(
    store: Engine,
    settings: Settings,
    *,
    name: EngineName | None = None,
    lake: Path | None = None,
    until: datetime | None = None,
) -> Iterator[BatchEngine]:
    """The engine `name` (default: the settings') holding the events before `until` as
    `events`: read from `lake` (default: the settings' `lake_dir`) when one is given, else
    from the store (Spark: through a temporary lake written from it)."""
    name = name or settings.batch_engine
    folder = lake or settings.lake_dir
    if folder is not None and not any(folder.glob("**/*.parquet")):
        raise EngineUnavailable(
            f"the lake {folder} holds no Parquet files: write it with "
            f"omni export events --format parquet --output {folder}"
        )
    limit = None if until is None else micros(pd.Timestamp(until))
    if name == "embedded":
        with Embedded(memory_limit=settings.batch_memory, spill=settings.batch_spill_dir) as db:
            if folder is not None:
                db.read_lake(folder, until=limit)
            else:
                db.load_events(_store_stream(store, until, settings.chunk_rows))
            yield db
        return
    with tempfile.TemporaryDirectory(prefix="omni-lake-") as tmp:
        if folder is None:
            folder = Path(tmp)
            write_lake(store, folder, until=until, chunk_rows=settings.chunk_rows)
        with spark_engine(settings) as engine:
            engine.read_lake(folder, until=limit)
            yield engine


def spark_engine(settings: Settings) -> SparkEngine:
    """A Spark engine on the settings' master; `EngineUnavailable` when it cannot start."""
    from features.spark import SparkEngine, session

    try:
        return SparkEngine(session(settings.spark_master, settings.spark_driver_memory))
    except Exception as exc:  # PySpark missing, no Java, a cluster that does not answer
        raise EngineUnavailable(
            f"the Spark engine could not start at {settings.spark_master}: {exc} (it needs "
            "PySpark, pip install 'omni[spark]', and Java 17; or use --engine embedded)"
        ) from exc


def _store_stream(store: Engine, until: datetime | None, chunk_rows: int) -> pa.RecordBatchReader:
    """The stored events before `until` as one stream of Arrow batches, reported as read."""
    report = progress.current()
    if progress.listening():
        report.start("reading events", count_events(store, until=until))
    stream = event_batches(store, until=until, chunk_rows=chunk_rows)

    def reported() -> Iterator[pa.RecordBatch]:
        for batch in stream:
            report.advance(batch.num_rows)
            yield batch

    return pa.RecordBatchReader.from_batches(stream.schema, reported())


def time_range(engine: BatchEngine) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The first and last event's time, None when there is none."""
    found = engine.query(f"SELECT MIN(ts) AS first_ts, MAX(ts) AS last_ts FROM {EVENTS}")
    first, last = found["first_ts"].iloc[0], found["last_ts"].iloc[0]
    if pd.isna(first):
        return None
    return _utc(first), _utc(last)


def _utc(value: float) -> pd.Timestamp:
    return pd.Timestamp(int(value), unit="us", tz="UTC")


def live_since(engine: BatchEngine) -> int:
    """When the store first received an event (microseconds): history from before it was
    loaded in bulk and counts as known from its own time (`features.point_in_time`)."""
    found = engine.query(f"SELECT MIN(ingested_at) AS first_arrival FROM {EVENTS}")
    value = found["first_arrival"].iloc[0]
    return 0 if pd.isna(value) else int(value)
