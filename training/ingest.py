"""Ingest: validate every source first, then write them all in one transaction.

Nothing is written unless every record of every file is good, so a rejected ingest leaves
the store exactly as it was. Events already stored (same event_id) are skipped and counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from sqlalchemy import Engine

from features.progress import Reporter, Silent
from features.schema import TABLES
from features.sources.frame import SourceFrame
from features.validation import BatchRejected, RecordError, ValidBatch, validate
from service.erasure import drop_before_erasure
from service.storage import state
from service.storage.engine import refresh_statistics
from service.storage.identities import rebuild_identities
from service.storage.tables import BY_SCHEMA
from service.storage.writer import Applied, write_batch

#: How many problems a rejection lists before it says "and N more".
SHOWN_PROBLEMS = 20


class IngestRejected(ValueError):
    """One or more sources had bad records; nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:SHOWN_PROBLEMS]
        more = len(problems) - len(shown)
        lines = "\n".join(f"  {p}" for p in shown)
        tail = f"\n  ... and {more} more" if more else ""
        super().__init__(
            f"rejected, nothing was written: {len(problems)} problem(s)\n{lines}{tail}"
        )


@dataclass(frozen=True)
class IngestReport:
    """What an ingest did, table by table."""

    applied: list[Applied]
    anonymous_stitched: int
    identity_conflicts: int
    seconds: float
    notes: list[str] = field(default_factory=list)


def ingest(
    engine: Engine,
    sources: list[SourceFrame],
    *,
    chunk_rows: int = 100_000,
    progress: Reporter | None = None,
) -> IngestReport:
    """Validate `sources`, then write them and re-stitch identities in one transaction.

    Raises `IngestRejected` (nothing written) when any record of any source is bad.
    """
    report = progress or Silent()
    started = time.perf_counter()
    checked: list[tuple[SourceFrame, ValidBatch]] = []
    problems: list[str] = []
    report.start("checking", sum(len(s.frame) for s in sources))
    for source in sources:
        try:
            checked.append((source, validate(source.frame, TABLES[source.table])))
        except BatchRejected as rejected:
            problems.extend(describe(source, e, TABLES[source.table].key) for e in rejected.errors)
        report.advance(len(source.frame))
    if problems:
        raise IngestRejected(problems)
    applied: list[Applied] = []
    with engine.begin() as conn:
        report.start("writing", sum(len(batch.frame) for _, batch in checked))
        for source, batch in checked:
            kept, erased = drop_before_erasure(conn, batch.frame, source.table)
            done = write_batch(
                conn,
                TABLES[source.table],
                replace(batch, frame=kept),
                chunk_rows=chunk_rows,
                on_rows=report.advance,
            )
            applied.append(replace(done, received=done.received + erased, erased=erased))
        report.start("stitching identities", 1)
        identity_map = rebuild_identities(conn)
        report.advance(1)
        report.start("online state", 1)
        state.rebuild(conn)  # refreshes the statistics of the events and the state
        written = (BY_SCHEMA[source.table] for source, _ in checked)
        refresh_statistics(conn, (t for t in written if t not in state.REFRESHED))
        report.advance(1)
    notes = [note for source in sources for note in source.notes]
    return IngestReport(
        applied=applied,
        anonymous_stitched=identity_map.stitched_anonymous,
        identity_conflicts=identity_map.conflicts,
        seconds=time.perf_counter() - started,
        notes=notes,
    )


def describe(source: SourceFrame, error: RecordError, key: tuple[str, ...]) -> str:
    """One problem as a user reads it: file, line, the record's key, the field, what is wrong."""
    if error.index is None:
        return f"{source.origin}: column '{error.field}': {error.message}"
    where = source.where.iloc[error.index]
    who = f" ({'/'.join(key)} {error.key!r})" if error.key else ""
    return f"{where}{who}: field '{error.field}': {error.message}"
