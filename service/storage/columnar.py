"""Stream a query's result as Arrow record batches, read by ConnectorX in a child process.

The batch layer reads the whole event log; ConnectorX reads it columnar, without a
Python object per value. It runs in a child process of its own because it carries its
own copy of SQLite: two SQLite libraries in one process share that process's POSIX file
locks, so one closing the file drops the other's locks (SQLite then reports a disk I/O
error, and a writer elsewhere could corrupt the file). In a child, its locks are its
own, as any other reader's. The child dictionary-encodes the `coded` columns before
sending, so what crosses the pipe is compact.

Run as a script by `stream` only: it reads its orders as JSON on standard input (the
ConnectorX URL, the SQL text, the batch rows, the columns to encode), never on its
command line, where any user of the machine could read a database password.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path

import pyarrow as pa


class ColumnarReadError(RuntimeError):
    """The child reading the store failed (its message is included)."""


class Batches:
    """The record batches of one query, its schema known before the first batch."""

    def __init__(self, url: str, sql: str, batch_rows: int, coded: Collection[str]) -> None:
        orders = {"url": url, "sql": sql, "batch_rows": batch_rows, "coded": sorted(coded)}
        # Closed when the read ends (`_failed` or the iteration), not in this scope.
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(orders).encode())
        self._proc.stdin.close()
        try:
            self._reader = pa.ipc.open_stream(self._proc.stdout)
        except pa.ArrowInvalid as exc:
            raise self._failed() from exc
        self.schema = self._reader.schema

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        finished = False
        try:
            for batch in self._reader:
                if batch.num_rows:
                    yield batch
            finished = True
        except pa.ArrowInvalid as exc:
            raise self._failed() from exc
        finally:
            if not finished and self._proc.poll() is None:
                self._proc.kill()  # abandoned before the end: the child stops reading
            self._proc.wait()
            assert self._proc.stdout is not None
            self._proc.stdout.close()
        if self._proc.returncode:
            raise self._failed()
        self._errors.close()

    def _failed(self) -> ColumnarReadError:
        self._proc.wait()
        self._errors.seek(0)
        lines = self._errors.read().decode(errors="replace").strip().splitlines()
        self._errors.close()
        why = lines[-1] if lines else "no message"
        return ColumnarReadError(f"reading the store failed: {why}")


def stream(url: str, sql: str, batch_rows: int, coded: Collection[str] = ()) -> Batches:
    """The result of `sql` on the store at `url` (as ConnectorX takes it), `batch_rows`
    rows a batch, with the `coded` columns dictionary-encoded."""
    return Batches(url, sql, batch_rows, coded)


def _child(url: str, sql: str, batch_rows: int, coded: set[str]) -> None:
    import connectorx as cx

    reader: pa.RecordBatchReader = cx.read_sql(
        url, sql, return_type="arrow_stream", batch_size=batch_rows
    )
    schema = pa.schema(
        [pa.field(f.name, pa.dictionary(pa.int32(), f.type)) if f.name in coded else f
         for f in reader.schema]
    )  # fmt: skip
    with pa.ipc.new_stream(sys.stdout.buffer, schema) as out:
        for batch in reader:
            arrays = [
                col.dictionary_encode() if name in coded else col
                for name, col in zip(batch.schema.names, batch.columns, strict=True)
            ]
            out.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))


if __name__ == "__main__":
    given = json.load(sys.stdin)
    _child(given["url"], given["sql"], int(given["batch_rows"]), set(given["coded"]))
