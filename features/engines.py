"""The batch layer's engines: where the SQL definitions of features run.

An engine holds the event log as a table named `events` (the stored columns, times as
integer microseconds UTC: `ts`, `ingested_at`), takes small tables from the driver
(`register`: an identity map, a customer list), defines views and answers queries as
pandas frames. Two engines run the same text: `Embedded` (DuckDB, in this process, its
memory capped by a budget and spilling to disk beyond it) and `features.spark.SparkEngine`
(a Spark session, local or a cluster). Nothing in a feature depends on which one runs it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from features import columns as c

#: The name of the event table in every engine.
EVENTS = "events"
ARRIVED = "ingested_at"
#: Numeric event columns (as DOUBLE in every engine); the rest are text or times.
NUMBERS = (c.QUANTITY, c.PRICE)


class BatchEngine(Protocol):
    """What a feature definition needs of an engine."""

    name: str

    def register(self, name: str, frame: pd.DataFrame | pa.Table) -> None:
        """Make a small driver-side table queryable as `name` (replacing any before)."""

    def view(self, name: str, sql: str, *, reused: bool = False) -> None:
        """Name the result of `sql` (evaluated when read, not now; with `reused`, the
        engine may keep it once computed, for the several queries that read it)."""

    def query(self, sql: str) -> pd.DataFrame:
        """The result of `sql`, on the driver."""

    def arrow(self, sql: str) -> pa.Table:
        """The result of `sql`, on the driver, as Arrow (text without Python objects)."""

    def id_digest(self) -> int:
        """`id_digest` of every event's id, summed (mod 2**64): order-free, the same in
        every engine for the same events."""

    def close(self) -> None:
        """Release what the engine holds."""


def id_digest(ids: pd.Series) -> int:
    """An order-free digest of event ids: the sum of pandas' 64-bit hash of each, mod 2**64
    (partial sums of any split add up to the whole)."""
    hashed = pd.util.hash_pandas_object(ids.astype(str), index=False).to_numpy(np.uint64)
    return int(hashed.sum(dtype=np.uint64))


def event_table(events: pd.DataFrame) -> pa.Table:
    """An events frame (as `service.storage.reader` returns it, or any frame with the
    event columns that exist) as the engines' `events` relation: ids and words as text,
    times as integer microseconds, numbers as floats."""
    columns: dict[str, pa.Array] = {}
    for name in events.columns:
        values = events[name]
        if name in (c.TS, ARRIVED, "known_at") or isinstance(values.dtype, pd.DatetimeTZDtype):
            stamps = pd.DatetimeIndex(values)
            if stamps.tz is None:
                raise ValueError(f"events column {name!r} has times without a UTC offset")
            micros = stamps.tz_convert("UTC").as_unit("us").asi8
            columns[name] = pa.array(micros, mask=np.asarray(stamps.isna()), type=pa.int64())
        elif name in NUMBERS:
            # Missing (NaN or NA) is NULL: SQL's COALESCE does not see a NaN as missing.
            number = values.astype("Float64").to_numpy(float, na_value=np.nan)
            columns[name] = pa.array(number, from_pandas=True)
        elif isinstance(values.dtype, pd.CategoricalDtype):  # each distinct id once
            words = pa.array(values.cat.categories.astype(str).to_numpy(object), pa.string())
            codes = values.cat.codes.to_numpy()
            codes_array = pa.array(codes, mask=codes < 0, type=pa.int32())
            columns[name] = pa.DictionaryArray.from_arrays(codes_array, words)
        else:
            columns[name] = pa.array(values.astype("string"), type=pa.string())
    return pa.table(columns)


#: The table a frame of events is registered as (`frame_engine`).
FRAME = "frame_events"


def frame_engine(events: pd.DataFrame, columns: Sequence[str]) -> Embedded:
    """An embedded engine holding the `columns` of a frame of events as the table `FRAME`
    (`event_table`'s types; a column the frame lacks is all missing). Close it when done."""
    present = [col for col in columns if col in events.columns]
    table = event_table(events[present])
    for col in columns:
        if col not in present:
            kind = pa.float64() if col in NUMBERS else pa.string()
            table = table.append_column(col, pa.nulls(len(table), kind))
    engine = Embedded()
    engine.register(FRAME, table)
    return engine


class Embedded:
    """DuckDB in this process. `memory_limit` (e.g. "4GB") caps its working memory,
    spilling to `spill` beyond it. Events come from the store (`load_events`: a stream of
    Arrow batches, kept in DuckDB's own compressed columns), from a lake folder of Parquet
    files (`read_lake`), or from any Arrow table (`register(EVENTS, ...)`)."""

    name = "embedded"

    def __init__(
        self,
        *,
        memory_limit: str | None = None,
        threads: int | None = None,
        spill: Path | None = None,
    ) -> None:
        self._db = duckdb.connect(":memory:")
        if memory_limit:
            self._db.execute(f"SET memory_limit = '{_size(memory_limit)}'")
        if threads:
            self._db.execute(f"SET threads = {int(threads)}")
        if spill is not None:
            self._db.execute(f"SET temp_directory = '{_path(spill)}'")
        self._db.execute("SET preserve_insertion_order = false")

    def load_events(self, batches: pa.RecordBatchReader) -> None:
        """Copy a stream of event batches (the store's columns, times as integer
        microseconds) into the table `events`, a batch at a time."""
        self._db.register("_incoming", batches)
        self._db.execute(f"CREATE OR REPLACE TABLE {EVENTS} AS SELECT * FROM _incoming")
        self._db.unregister("_incoming")

    def read_lake(self, folder: Path, until: int | None = None) -> None:
        """The events of a lake folder (`service.storage.lake`; before `until`, in
        microseconds, when given) as `events`."""
        files = _path(folder / "**" / "*.parquet")
        # Days written by an earlier release may lack a column added since: NULL there.
        source = f"read_parquet('{files}', hive_partitioning = true, union_by_name = true)"
        present = set(self._db.sql(f"DESCRIBE SELECT * FROM {source}").df()["column_name"])
        where = "" if until is None else f" WHERE epoch_us(ts) < {int(until)}"
        self.view(EVENTS, _typed(source, times="epoch_us", present=present) + where)

    def register(self, name: str, frame: pd.DataFrame | pa.Table) -> None:
        self._db.register(name, frame)

    def view(self, name: str, sql: str, *, reused: bool = False) -> None:
        self._db.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")

    def query(self, sql: str) -> pd.DataFrame:
        found: pd.DataFrame = self._db.sql(sql).df()
        return found

    def arrow(self, sql: str) -> pa.Table:
        """The result of `sql` as an Arrow table (text stays Arrow text, no Python objects)."""
        found: pa.Table = self._db.sql(sql).to_arrow_table()
        return found

    def batches(self, sql: str, rows: int = 1_000_000) -> Iterator[pd.DataFrame]:
        """The result of `sql`, `rows` at a time."""
        for batch in self._db.sql(sql).to_arrow_reader(rows):
            yield batch.to_pandas()

    def id_digest(self) -> int:
        total = 0
        for chunk in self.batches(f"SELECT {c.EVENT_ID} FROM {EVENTS}"):
            total = (total + id_digest(chunk[c.EVENT_ID])) % 2**64
        return total

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Embedded:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _typed(source: str, times: str | None = None, present: set[str] | None = None) -> str:
    """SELECT the event columns from `source` with the engines' types (`times`: the
    function that turns a timestamp column into integer microseconds, when it is one;
    a text column not `present` in the source is NULL)."""
    cols = []
    for name in (*c.EVENT_COLUMNS, ARRIVED):
        if present is not None and name not in present and name not in NUMBERS:
            cols.append(f"CAST(NULL AS VARCHAR) AS {name}")
        elif name in (c.TS, ARRIVED) and times:
            cols.append(f"{times}({name}) AS {name}")
        elif name in NUMBERS:
            cols.append(f"CAST({name} AS DOUBLE) AS {name}")
        else:
            cols.append(name)
    return f"SELECT {', '.join(cols)} FROM {source}"


def _size(text: str) -> str:
    allowed = set("0123456789.KMGTiB ")
    if not text or set(text) - allowed:
        raise ValueError(f"memory budget {text!r} is not a size such as 4GB or 512MiB")
    return text


def _path(path: Path) -> str:
    text = str(path.resolve())
    if "'" in text:
        raise ValueError(f"path {text!r} holds a quote")
    return text
