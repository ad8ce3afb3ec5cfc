"""What a training run read, logged as an MLflow dataset input.

A run's input is the event log as the store held it: where (the store's URL, password
hidden), which slice (`until`), how many rows, the date range, the columns, and a digest
of the event ids that changes whenever an event is added or removed. MLflow shows it on
the run's page and in `mlflow.search_runs`; the same figures are set as `data.*` tags.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.types import ColSpec, Schema
from sqlalchemy import Engine

from features import columns as c
from features.engines import EVENTS, BatchEngine, id_digest
from training.batch import time_range

#: MLflow's type for each event column (the rest are text).
_TYPES = {c.TS: "datetime", c.QUANTITY: "long", c.PRICE: "double"}


class EventStoreSource(DatasetSource):
    """The Omni event log a run read: the store's URL (no password), or the lake folder's
    (file://...), and the time cutoff."""

    def __init__(self, url: str, until: str | None) -> None:
        self.url = url
        self.until = until

    @staticmethod
    def _get_source_type() -> str:
        return "omni_event_store"

    def load(self, **_: Any) -> str:
        raise NotImplementedError("read the store with omni's own reader (service.storage)")

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> EventStoreSource:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "until": self.until}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> EventStoreSource:
        return cls(str(source_dict["url"]), source_dict.get("until"))


class EventLog(MetaDataset):
    """The events a run read, described without their rows: source, digest, schema and a
    profile (rows, date range)."""

    def __init__(
        self, source: EventStoreSource, *, digest: str, schema: Schema, profile: dict[str, str]
    ) -> None:
        self._profile = profile
        super().__init__(source, name="events", digest=digest, schema=schema)

    @property
    def profile(self) -> dict[str, str]:
        return self._profile

    def to_dict(self) -> dict[str, str]:
        config = super().to_dict()
        config["profile"] = json.dumps(self._profile)
        return config


def fingerprint(events: pd.DataFrame | BatchEngine) -> dict[str, str]:
    """Identifies the training data: count, an order-free hash of event ids, date range;
    the same figures for the same events in a frame or in any batch engine."""
    if isinstance(events, pd.DataFrame):
        digest, rows = id_digest(events[c.EVENT_ID]), len(events)
        first, last = (events[c.TS].min(), events[c.TS].max()) if rows else (None, None)
    else:
        rows = int(events.query(f"SELECT COUNT(*) AS n FROM {EVENTS}")["n"].iloc[0])
        span = time_range(events)
        first, last = span if span else (None, None)
        digest = events.id_digest()
    return {
        "data.events": str(rows),
        "data.fingerprint": f"{digest:016x}",
        "data.first_event": "" if first is None else first.isoformat(),
        "data.last_event": "" if last is None else last.isoformat(),
    }


def log_events_input(
    engine: Engine,
    events: pd.DataFrame | BatchEngine,
    *,
    until: datetime | None,
    lake: Path | None = None,
) -> dict[str, str]:
    """Log `events` (as read from the store behind `engine`, or from the `lake` folder: a
    frame, or a batch engine holding them) as the active run's training input and as
    `data.*` tags; returns the tags."""
    tags = fingerprint(events)
    url = lake.resolve().as_uri() if lake else engine.url.render_as_string(hide_password=True)
    source = EventStoreSource(url, None if until is None else until.isoformat())
    schema = Schema([ColSpec(_TYPES.get(col, "string"), col) for col in c.EVENT_COLUMNS])
    profile = {key.removeprefix("data."): value for key, value in tags.items()}
    dataset = EventLog(source, digest=tags["data.fingerprint"][:8], schema=schema, profile=profile)
    mlflow.log_input(dataset, context="training")
    mlflow.set_tags(tags)
    return tags
