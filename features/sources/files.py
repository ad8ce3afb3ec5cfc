"""Read CSV, Parquet and JSON Lines files in the Omni schema (or through a column mapping)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from features.schema import TABLES
from features.sources.frame import SourceFrame
from features.sources.mapping import ColumnMapping
from features.validation import frame_of

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".json": "jsonl",
}


class SourceError(ValueError):
    """A file that cannot be read as a table, with the reason."""


def table_for(path: Path) -> str:
    """The table a file feeds, from its name: `events.csv`, `events-2026-01.parquet`, ..."""
    stem = path.name.split(".")[0].lower()
    for name in TABLES:
        if stem == name or stem.startswith(name + "-") or stem.startswith(name + "_"):
            return name
    raise SourceError(
        f"{path}: cannot tell which table this file feeds; name it after one of "
        f"{', '.join(TABLES)} (e.g. events.csv) or pass --table"
    )


def read_file(
    path: Path, *, table: str | None = None, mapping: ColumnMapping | None = None
) -> SourceFrame:
    """Read one file into a `SourceFrame`.

    The format comes from the extension (.csv, .parquet, .jsonl/.json). Every value is
    read as it is written (no type guessing for ids); validation types the columns later.
    Raises `SourceError` for an unreadable file or unknown extension.
    """
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(f"{path}: unknown file type '{path.suffix}' (use {', '.join(FORMATS)})")
    table = table or (mapping.table if mapping else None) or table_for(path)
    if table not in TABLES:
        raise SourceError(f"{path}: unknown table '{table}' (one of {', '.join(TABLES)})")
    try:
        if fmt == "csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
            unit, first = "line", 2
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
            unit, first = "row", 1
        else:
            frame = _read_jsonl(path)
            unit, first = "line", 1
    except (OSError, ValueError) as exc:
        raise SourceError(f"{path}: cannot be read as {fmt}: {exc}") from exc
    if fmt != "jsonl":
        frame.index = pd.RangeIndex(len(frame))
    if mapping is not None:
        frame = mapping.apply(frame)
    where = f"{path.name} {unit} " + (frame.index.to_series() + first).astype(str)
    frame = frame.reset_index(drop=True)
    return SourceFrame(table, path.name, frame, where.reset_index(drop=True))


def _read_jsonl(path: Path) -> pd.DataFrame:
    """One record per line, values exactly as written; the index is the 0-based line number."""
    records: list[dict[str, object]] = []
    lines: list[int] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SourceError(
                    f"{path.name} line {number + 1}: not valid JSON: {exc.msg}"
                ) from exc
            if not isinstance(record, dict):
                raise SourceError(f"{path.name} line {number + 1}: expected a JSON object")
            records.append(record)
            lines.append(number)
    return frame_of(records, index=pd.Index(lines))


def read_folder(folder: Path) -> list[SourceFrame]:
    """Every table file directly in `folder`, reference data first, events last."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FORMATS)
    if not files:
        raise SourceError(f"{folder}: no .csv, .parquet or .jsonl files here")
    order = list(TABLES)
    sources = [read_file(p) for p in files]
    return sorted(sources, key=lambda s: order.index(s.table))
