"""The event log as the recommender's matrices read it, on either batch engine.

`EngineLog` answers the few questions `features.matrix` and the evaluation ask of the
events (interaction weights, store activity, item trends, purchase days, the purchases
of a window, the events known at a cutoff) with the SQL definitions, on the engine that
holds them: the embedded one over the store or a frame, or Spark over a lake. Only the
answers, one row per customer and item at most, come back to the driver.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from features import columns as c
from features.churn_sql import DAY, micros
from features.engines import FRAME, BatchEngine, Embedded, frame_engine
from features.interactions import (
    READ,
    InteractionWeights,
    frame_of,
    interactions_on,
    item_trend_on,
    store_activity_on,
)
from features.interactions_sql import text
from features.point_in_time import KNOWN_AT, known_at_sql


@dataclass(frozen=True)
class EngineLog:
    """The events of relation `source` on `engine` (with person_id; `known_at` when the
    source is the store's, from `live_since` and each event's arrival)."""

    engine: BatchEngine
    source: str
    live_since: int | None = None

    def interactions(self, as_of: pd.Timestamp, weights: InteractionWeights | None) -> pd.DataFrame:
        return interactions_on(self.engine, self.source, as_of=as_of, weights=weights)

    def store_activity(
        self, as_of: pd.Timestamp, weights: InteractionWeights | None
    ) -> pd.DataFrame:
        return store_activity_on(self.engine, self.source, as_of=as_of, weights=weights)

    def item_trend(self, as_of: pd.Timestamp) -> pd.Series:
        return item_trend_on(self.engine, self.source, as_of=as_of)

    def purchase_days(self, as_of: pd.Timestamp) -> pd.DataFrame:
        """Each (person_id, item_id, day) with a purchase before `as_of`: `day` as whole
        days since 1970 (UTC)."""
        sql = f"""
SELECT DISTINCT person_id, item_id, CAST(FLOOR(ts / {DAY}) AS BIGINT) AS day
FROM {self.source}
WHERE type = {text(c.EventType.PURCHASE)} AND person_id IS NOT NULL
  AND item_id IS NOT NULL AND ts < {micros(as_of)}"""
        return frame_of(self.engine.arrow(sql), coded=(c.PERSON_ID, c.ITEM_ID))

    def purchases(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Each purchase in [start, end) by a known person: person_id, item_id."""
        sql = f"""
SELECT person_id, item_id FROM {self.source}
WHERE type = {text(c.EventType.PURCHASE)} AND person_id IS NOT NULL
  AND ts >= {micros(start)} AND ts < {micros(end)}"""
        return frame_of(self.engine.arrow(sql), coded=(c.PERSON_ID, c.ITEM_ID))

    def at_cutoff(self, cutoff: pd.Timestamp) -> EngineLog:
        """The events as known at `cutoff`: those before it that arrived after it left out."""
        if self.live_since is None:
            return self
        at = micros(cutoff)
        name = f"{self.source}_known_{at}"
        self.engine.view(
            name,
            f"SELECT * FROM {self.source} e "
            f"WHERE NOT (e.ts < {at} AND {known_at_sql(self.live_since)} >= {at})",
        )
        return EngineLog(self.engine, name, None)


def frame_log(events: pd.DataFrame) -> tuple[EngineLog, Embedded]:
    """A frame of events (the reader's, or any with the event columns) as an `EngineLog`
    on an embedded engine of its own (close it when done). A `known_at` column is kept:
    `at_cutoff` then leaves out what had not arrived."""
    known = KNOWN_AT in events.columns
    if known:  # as the store's: `ingested_at` read from the first arrival on
        events = events.assign(ingested_at=events[KNOWN_AT])
    extra = [c.CUSTOMER_ID, c.ANONYMOUS_ID, *(["ingested_at"] if known else [])]
    engine = frame_engine(events, [*READ, *(col for col in extra if col in events.columns)])
    return EngineLog(engine, FRAME, 0 if known else None), engine
