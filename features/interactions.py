"""Customer x item interaction weights from events, strictly before an explicit cutoff.

Pure functions of (events, as_of): nothing at or after `as_of` is read, so a model
trained on them never sees the future it is evaluated on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pandas as pd
import pyarrow as pa

from features import columns as c
from features import interactions_sql
from features.churn_sql import micros
from features.engines import FRAME, BatchEngine, frame_engine

T = TypeVar("T")

#: How much each event type says about wanting an item; a return cancels a purchase.
DEFAULT_TYPE_WEIGHTS: dict[str, float] = {
    c.EventType.VIEW: 1.0,
    c.EventType.EMAIL_CLICK: 1.0,
    c.EventType.WISHLIST: 2.0,
    c.EventType.ADD_TO_CART: 3.0,
    c.EventType.REMOVE_FROM_CART: -1.0,
    c.EventType.PURCHASE: 6.0,
    c.EventType.RETURN: -6.0,
}
#: Channel multipliers (an e-mail click is a weaker signal than a visit).
DEFAULT_CHANNEL_WEIGHTS: dict[str, float] = {
    c.Channel.WEB: 1.0,
    c.Channel.APP: 1.0,
    c.Channel.STORE: 1.0,
    c.Channel.EMAIL: 0.5,
    c.Channel.CALL_CENTER: 1.0,
    c.Channel.SOCIAL: 0.5,
}

WEIGHT, LAST_TS, PURCHASES, LAST_PURCHASE = (
    interactions_sql.WEIGHT, interactions_sql.LAST_TS, interactions_sql.PURCHASES,
    interactions_sql.LAST_PURCHASE,
)  # fmt: skip


@dataclass(frozen=True)
class InteractionWeights:
    """Weights by event type and channel, and the half-life of an event's influence."""

    by_type: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_TYPE_WEIGHTS))
    by_channel: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_CHANNEL_WEIGHTS))
    half_life_days: float = 90.0

    def __post_init__(self) -> None:
        if self.half_life_days <= 0:
            raise ValueError(f"half_life_days must be positive, not {self.half_life_days}")


def interactions(
    events: pd.DataFrame, *, as_of: pd.Timestamp, weights: InteractionWeights | None = None
) -> pd.DataFrame:
    """One row per (person_id, item_id) with a positive decayed weight, from events before `as_of`.

    `events` needs person_id, item_id, type, channel, ts (UTC) and quantity columns
    (as `service.storage.reader` returns them). Columns out: person_id, item_id, weight,
    last_ts (latest event), purchases (net units bought) and last_purchase (or NaT).
    Events without a person or an item, or of a type with no weight, are ignored.
    Raises ValueError when `as_of` has no time zone.

    The definition is SQL (`features.interactions_sql`), run here by the embedded engine
    over the frame; `interactions_on` runs it on any engine (Spark over a lake).
    """
    return _on_frame(events, interactions_on, as_of=as_of, weights=weights)


def interactions_on(
    engine: BatchEngine,
    source: str,
    *,
    as_of: pd.Timestamp,
    weights: InteractionWeights | None = None,
) -> pd.DataFrame:
    """`interactions` of the events in `source` (with person_id) on `engine`."""
    sql = interactions_sql.interactions(source, micros(as_of), weights or InteractionWeights())
    coded, times = (c.PERSON_ID, c.ITEM_ID), (LAST_TS, LAST_PURCHASE)
    return frame_of(engine.arrow(sql), coded=coded, times=times)


def store_activity(
    events: pd.DataFrame, *, as_of: pd.Timestamp, weights: InteractionWeights | None = None
) -> pd.DataFrame:
    """Decayed weight per (store_id, person_id, item_id) from events carrying a store.

    In-store events and online orders collected in a store count for that store; the
    same weights, decay and cutoff as `interactions`. Rows with no person are kept (an
    anonymous till receipt still says what sells in the store), with person_id missing.
    """
    return _on_frame(events, store_activity_on, as_of=as_of, weights=weights)


def store_activity_on(
    engine: BatchEngine,
    source: str,
    *,
    as_of: pd.Timestamp,
    weights: InteractionWeights | None = None,
) -> pd.DataFrame:
    """`store_activity` of the events in `source` on `engine`."""
    sql = interactions_sql.store_activity(source, micros(as_of), weights or InteractionWeights())
    return frame_of(engine.arrow(sql), coded=(c.STORE_ID, c.PERSON_ID, c.ITEM_ID))


#: The event columns the definitions read.
READ = (c.PERSON_ID, c.ITEM_ID, c.STORE_ID, c.TYPE, c.CHANNEL, c.TS, c.QUANTITY)


def _on_frame(events: pd.DataFrame, on: Callable[..., T], **kwargs: object) -> T:
    """`on(engine, source, **kwargs)` on the embedded engine over `events` (a frame)."""
    with frame_engine(events, READ) as engine:  # a frame without stores reads them as missing
        return on(engine, FRAME, **kwargs)


def frame_of(
    table: pa.Table, *, coded: tuple[str, ...] = (), times: tuple[str, ...] = ()
) -> pd.DataFrame:
    """A query's Arrow result as a frame: the `coded` text columns as categoricals (each
    distinct id once), the `times` (integer microseconds) as UTC datetimes."""
    columns = {}
    for name in table.column_names:
        values = table.column(name)
        if name in coded:
            columns[name] = values.cast(pa.string()).dictionary_encode().to_pandas()
        elif name in times:
            columns[name] = pd.Series(
                values.cast(pa.int64()).cast(pa.timestamp("us", tz="UTC")).to_pandas()
            )
        else:
            columns[name] = values.to_pandas()
    out = pd.DataFrame(columns)
    return out.reset_index(drop=True)


def item_trend(
    events: pd.DataFrame, *, as_of: pd.Timestamp, recent_days: float = 14, baseline_days: float = 90
) -> pd.Series:
    """Per item: purchases in the last `recent_days` against the rate over `baseline_days`.

    1.0 means selling at its usual pace, 2.0 twice as fast lately (smoothed so that rare
    items stay near 1); an item not bought in the baseline window is left out (read it as
    1.0, as `features.matrix` does). Only events before `as_of` are read.
    """
    return _on_frame(
        events, item_trend_on, as_of=as_of, recent_days=recent_days, baseline_days=baseline_days
    )


def item_trend_on(
    engine: BatchEngine,
    source: str,
    *,
    as_of: pd.Timestamp,
    recent_days: float = 14,
    baseline_days: float = 90,
) -> pd.Series:
    """`item_trend` of the events in `source` on `engine`."""
    sql = interactions_sql.item_trend(source, micros(as_of), recent_days, baseline_days)
    found = frame_of(engine.arrow(sql))
    trend: pd.Series = pd.Series(
        found["trend"].to_numpy(dtype=float),
        index=pd.Index(found[c.ITEM_ID].astype(str), name=c.ITEM_ID),
        name="trend",
    )
    return trend
