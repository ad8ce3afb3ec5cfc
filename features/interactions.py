"""Customer x item interaction weights from events, strictly before an explicit cutoff.

Pure functions of (events, as_of): nothing at or after `as_of` is read, so a model
trained on them never sees the future it is evaluated on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features import columns as c

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

WEIGHT = "weight"
LAST_TS = "last_ts"
PURCHASES = "purchases"
LAST_PURCHASE = "last_purchase"


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
    """
    ev, weight = _weighted(events, as_of, weights, needs=c.PERSON_ID)
    purchase = (ev[c.TYPE] == c.EventType.PURCHASE).to_numpy()
    units = ev[c.QUANTITY].astype("Float64").fillna(1.0).to_numpy(dtype=float)
    bought = np.where(purchase, units, 0.0) - np.where(
        (ev[c.TYPE] == c.EventType.RETURN).to_numpy(), units, 0.0
    )
    # Arrays as they are (categoricals, aware datetimes): never a Python object per row.
    frame = pd.DataFrame(
        {
            c.PERSON_ID: ev[c.PERSON_ID].array,
            c.ITEM_ID: ev[c.ITEM_ID].array,
            WEIGHT: weight,
            LAST_TS: ev[c.TS].array,
            PURCHASES: bought,
            LAST_PURCHASE: ev[c.TS].where(purchase).array,
        }
    )
    grouped = frame.groupby([c.PERSON_ID, c.ITEM_ID], sort=True, as_index=False).agg(
        {WEIGHT: "sum", LAST_TS: "max", PURCHASES: "sum", LAST_PURCHASE: "max"}
    )
    return grouped[grouped[WEIGHT] > 1e-9].reset_index(drop=True)


def store_activity(
    events: pd.DataFrame, *, as_of: pd.Timestamp, weights: InteractionWeights | None = None
) -> pd.DataFrame:
    """Decayed weight per (store_id, person_id, item_id) from events carrying a store.

    In-store events and online orders collected in a store count for that store; the
    same weights, decay and cutoff as `interactions`. Rows with no person are kept (an
    anonymous till receipt still says what sells in the store), with person_id missing.
    """
    ev, weight = _weighted(events, as_of, weights, needs=c.STORE_ID)
    frame = pd.DataFrame(
        {
            c.STORE_ID: ev[c.STORE_ID].array,
            c.PERSON_ID: ev[c.PERSON_ID].array,
            c.ITEM_ID: ev[c.ITEM_ID].array,
            WEIGHT: weight,
        }
    )
    keys = [c.STORE_ID, c.PERSON_ID, c.ITEM_ID]
    return frame.groupby(keys, dropna=False, as_index=False).agg({WEIGHT: "sum"})


def _weighted(
    events: pd.DataFrame, as_of: pd.Timestamp, weights: InteractionWeights | None, needs: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """Events before `as_of` with an item, a weighted type and a value in `needs`, and each
    one's weight: type x channel x the decay of its age. Raises ValueError for a naive cutoff.
    """
    if as_of.tzinfo is None:
        raise ValueError(f"as_of {as_of} has no UTC offset")
    w = weights or InteractionWeights()
    ev = events[
        (events[c.TS] < as_of)
        & events[needs].notna()
        & events[c.ITEM_ID].notna()
        & events[c.TYPE].isin(list(w.by_type))
    ]
    age_days = (as_of - ev[c.TS]).dt.total_seconds().to_numpy() / 86_400.0
    decay = np.power(0.5, age_days / w.half_life_days)
    by_type = lookup(ev[c.TYPE], w.by_type, 0.0)
    by_channel = lookup(ev[c.CHANNEL], w.by_channel, 1.0)
    return ev, by_type * by_channel * decay


def lookup(values: pd.Series, table: dict[str, float], default: float) -> np.ndarray:
    """`table[value]` for each value (`default` where missing or not in it), worked out
    once per distinct value."""
    codes, uniques = pd.factorize(values)
    per_value = np.array([table.get(str(u), default) for u in uniques] + [default], dtype=float)
    out: np.ndarray = per_value[codes]  # code -1 (missing) takes the trailing default
    return out


def item_trend(
    events: pd.DataFrame, *, as_of: pd.Timestamp, recent_days: float = 14, baseline_days: float = 90
) -> pd.Series:
    """Per item: purchases in the last `recent_days` against the rate over `baseline_days`.

    1.0 means selling at its usual pace, 2.0 twice as fast lately, 0 not at all (smoothed
    so that rare items stay near 1). Only events before `as_of` are read.
    """
    if as_of.tzinfo is None:
        raise ValueError(f"as_of {as_of} has no UTC offset")
    bought = events[
        (events[c.TYPE] == c.EventType.PURCHASE)
        & (events[c.TS] < as_of)
        & (events[c.TS] >= as_of - pd.Timedelta(days=baseline_days))
        & events[c.ITEM_ID].notna()
    ]
    recent = bought[bought[c.TS] >= as_of - pd.Timedelta(days=recent_days)]
    expected = bought[c.ITEM_ID].value_counts() * (recent_days / baseline_days)
    seen = recent[c.ITEM_ID].value_counts().reindex(expected.index, fill_value=0)
    trend: pd.Series = ((seen + 1.0) / (expected + 1.0)).rename("trend")
    return trend
