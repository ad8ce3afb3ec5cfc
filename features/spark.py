"""The batch engine on Spark: the same SQL definitions as the embedded engine, over a
lake folder (`service.storage.lake`), on a local session or a cluster.

PySpark is the `spark` extra (`pip install 'omni[spark]'`); a local session needs Java 17.
The session is made once per process and kept (Spark's own rule: one per JVM).
"""

from __future__ import annotations

import atexit
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from features import columns as c
from features.engines import ARRIVED, EVENTS, NUMBERS, id_digest

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def session(master: str = "local[2]", driver_memory: str = "4g") -> SparkSession:
    """The process's Spark session (made on first use): Arrow transfers on, times in
    UTC, a small number of shuffle partitions for one machine's local mode."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - the extra is installed by make
        raise RuntimeError(
            "the Spark engine needs PySpark: pip install 'omni[spark]' (and Java 17)"
        ) from exc
    # The executors' Python is this one (a virtual environment, not the system's).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    local = master.startswith("local")
    logging = Path(__file__).with_name("spark_log4j2.properties")
    # PySpark 4 warns on every conversion that pandas 3 is newer than it has tested; the
    # conversions used here (Arrow tables both ways) are covered by the parity tests.
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    builder = (
        SparkSession.builder.master(master)
        .appName("omni-batch")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4" if local else "200")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={logging.as_uri()}")
    )
    if local:
        builder = builder.config("spark.driver.memory", driver_memory)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    if not _STOPPING:
        _STOPPING.append(spark)
        atexit.register(_stop)  # jobs end before the JVM does, not under it
    return spark


#: The session stopped when the process exits (one per process).
_STOPPING: list[SparkSession] = []


def _stop() -> None:
    for spark in _STOPPING:
        if spark.sparkContext._jsc is not None:  # not stopped already
            quiesce(spark)
            spark.stop()


def quiesce(spark: SparkSession, wait_seconds: float = 10.0) -> None:
    """Cancel what still runs (adaptive execution may leave stages of a finished query
    running) and wait until it has stopped."""
    context = spark.sparkContext
    context.cancelAllJobs()
    deadline = time.monotonic() + wait_seconds
    while context.statusTracker().getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.05)


class SparkEngine:
    """Spark SQL over the events of a lake folder, as the table `events`."""

    name = "spark"

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self._views: list[str] = []
        self._cached: DataFrame | None = None
        #: Views kept once computed (`view(..., reused=True)`), by name.
        self._kept: dict[str, DataFrame] = {}

    def read_lake(self, folder: Path, until: int | None = None) -> None:
        """The events of the lake at `folder` (before `until`, in microseconds, when
        given) as `events`: times as integer microseconds, numbers as doubles."""
        frame = self.spark.read.option("mergeSchema", "true").parquet(str(folder.resolve()))
        columns = []
        present = set(frame.columns)  # a day written by an earlier release may lack a column
        for name in (*c.EVENT_COLUMNS, ARRIVED):
            if name not in present and name not in NUMBERS:
                columns.append(f"CAST(NULL AS STRING) AS {name}")
            elif name in (c.TS, ARRIVED):
                columns.append(f"unix_micros({name}) AS {name}")
            elif name in NUMBERS:
                columns.append(f"CAST({name} AS DOUBLE) AS {name}")
            else:
                columns.append(name)
        events = frame.selectExpr(*columns)
        if until is not None:
            events = events.where(f"ts < {int(until)}")
        # Read once, kept by the executors (spilling to their disks) for every query after.
        self._cached = events.persist()
        self._name(self._cached, EVENTS)

    def register(self, name: str, frame: pd.DataFrame | pa.Table) -> None:
        table = (
            frame
            if isinstance(frame, pa.Table)
            else pa.Table.from_pandas(frame, preserve_index=False)
        )
        # Text stays text even when a column is empty or all missing.
        table = table.cast(
            pa.schema(
                [
                    pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f
                    for f in table.schema
                ]
            )
        )
        self._name(self.spark.createDataFrame(table), name)

    def view(self, name: str, sql: str, *, reused: bool = False) -> None:
        earlier = self._kept.pop(name, None)
        frame = self.spark.sql(sql)
        if reused:  # computed once by the first query, kept by the executors
            frame = frame.persist()
            self._kept[name] = frame
        self._name(frame, name)
        if earlier is not None:
            quiesce(self.spark)
            earlier.unpersist(blocking=True)

    def query(self, sql: str) -> pd.DataFrame:
        found: pd.DataFrame = self.spark.sql(sql).toArrow().to_pandas()
        return found

    def arrow(self, sql: str) -> pa.Table:
        found: pa.Table = self.spark.sql(sql).toArrow()
        return found

    def frame(self, sql: str) -> DataFrame:
        """The result of `sql` as a Spark DataFrame, left on the executors."""
        return self.spark.sql(sql)

    def id_digest(self) -> int:
        def partial(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            total = 0
            for chunk in chunks:
                total = (total + id_digest(chunk[c.EVENT_ID])) % 2**64
            # Spark has no unsigned 64-bit type: the sum travels as a signed one.
            yield pd.DataFrame({"digest": [np.uint64(total).astype(np.int64)]})

        ids = self.spark.table(EVENTS).select(c.EVENT_ID)
        partials = ids.mapInPandas(partial, "digest long").toArrow().column("digest")
        return int(partials.to_numpy().astype(np.int64).view(np.uint64).sum(dtype=np.uint64))

    def close(self) -> None:
        for name in self._views:
            self.spark.catalog.dropTempView(name)
        self._views.clear()
        kept = [*self._kept.values(), *([self._cached] if self._cached is not None else [])]
        if kept:
            quiesce(self.spark)
        for frame in kept:
            frame.unpersist(blocking=True)
        self._kept.clear()
        if self._cached is not None:
            self._cached = None

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _name(self, frame: DataFrame, name: str) -> None:
        frame.createOrReplaceTempView(name)
        if name not in self._views:
            self._views.append(name)
