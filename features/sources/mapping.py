"""The column mapping: how a file whose columns are named differently becomes Omni records.

A mapping is a JSON file (see docs/mappings/ for examples)::

    {
      "table": "events",
      "explode": "events",
      "rename": {"session": "anonymous_id", "aid": "item_id"},
      "values": {"type": {"clicks": "view", "carts": "add_to_cart", "orders": "purchase"}},
      "constants": {"channel": "web"},
      "ts_unit": "ms",
      "event_id_from": ["anonymous_id", "ts", "item_id", "type"],
      "event_id_prefix": "otto-",
      "drop": []
    }

Steps run in this order: explode, rename, drop, values, constants, ts_unit, event_id_from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from features import columns as c


class MappingError(ValueError):
    """A mapping file that cannot be used, with the reason."""


class ColumnMapping(BaseModel):
    """How to turn a foreign file into Omni records."""

    model_config = ConfigDict(extra="forbid")

    #: Which Omni table the file feeds (when its name does not say).
    table: str | None = None
    #: A column holding a list of records (JSON Lines sessions): one row per element.
    explode: str | None = None
    #: Source column -> Omni column.
    rename: dict[str, str] = {}
    #: Omni column -> {source value: Omni value}; values not listed are kept as they are.
    values: dict[str, dict[str, str]] = {}
    #: Omni column -> the same value for every row.
    constants: dict[str, str] = {}
    #: `ts` holds epoch numbers in this unit instead of ISO-8601 text.
    ts_unit: Literal["s", "ms", "us", "ns"] | None = None
    #: Make `event_id` from these Omni columns (and a repeat count), stable across re-ingests.
    event_id_from: list[str] = []
    event_id_prefix: str = ""
    #: Source columns to leave out.
    drop: list[str] = []

    @classmethod
    def from_file(cls, path: Path) -> ColumnMapping:
        """Read a mapping file; raises `MappingError` naming the file and the problem."""
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError, ValidationError) as exc:
            raise MappingError(f"mapping {path}: {exc}") from exc

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame in Omni columns. Raises `MappingError` when a named column is absent."""
        if self.explode:
            frame = _explode(frame, self.explode)
        missing = [src for src in [*self.rename, *self.drop] if src not in frame.columns]
        if missing:
            raise MappingError(f"mapping names columns the file does not have: {missing}")
        frame = frame.rename(columns=self.rename).drop(columns=self.drop)
        for col, table in self.values.items():
            if col in frame.columns:
                frame[col] = frame[col].map(lambda v, t=table: t.get(str(v), v))
        for col, value in self.constants.items():
            frame[col] = value
        if self.ts_unit and c.TS in frame.columns:
            numbers = pd.to_numeric(frame[c.TS], errors="coerce")
            frame[c.TS] = pd.to_datetime(numbers, unit=self.ts_unit, utc=True)
        if self.event_id_from:
            frame[c.EVENT_ID] = stable_ids(frame, self.event_id_from, self.event_id_prefix)
        return frame


def stable_ids(frame: pd.DataFrame, cols: list[str], prefix: str) -> pd.Series:
    """Deterministic ids from `cols`: the same rows always get the same ids.

    Rows identical in `cols` are told apart by their order of appearance.
    """
    absent = [col for col in cols if col not in frame.columns]
    if absent:
        raise MappingError(f"event_id_from names columns the mapped file lacks: {absent}")
    digest = pd.util.hash_pandas_object(frame[cols].astype(str), index=False)
    repeat = digest.groupby(digest).cumcount()
    return prefix + digest.map("{:016x}".format) + "-" + repeat.astype(str)


def _explode(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    if column not in frame.columns:
        raise MappingError(f"mapping explodes column '{column}', which the file does not have")
    outer = frame.drop(columns=[column])
    exploded = frame[[column]].explode(column)
    exploded = exploded[exploded[column].notna()]
    inner = pd.json_normalize(exploded[column].tolist())
    inner.index = exploded.index
    return outer.join(inner, how="inner")
