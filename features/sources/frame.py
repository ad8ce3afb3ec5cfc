"""A frame read from a source, with the place each row came from for error messages."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class SourceFrame:
    """Rows for one table, and `where[i]`: a human label for row i ("events.csv line 12")."""

    table: str
    origin: str
    frame: pd.DataFrame
    where: pd.Series
    #: Notes on rows an adapter deliberately left out, for the ingest report.
    notes: tuple[str, ...] = ()


def label_rows(origin: str, unit: str, first: int, n: int) -> pd.Series:
    """Labels like "events.csv line 2", "line 3", ... for `n` rows starting at `first`."""
    numbers = pd.Series(range(first, first + n)).astype(str)
    return f"{origin} {unit} " + numbers
