"""Churn: the label and the features, as pure functions of (events, as_of).

The population at a cutoff is every person with a purchase in the `lookback_days` before
it; a person churns when they buy nothing, in any channel, in the `horizon_days` after
it. Features read only events strictly before the cutoff, so no future leaks in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features import churn_sql
from features import columns as c
from features.churn_sql import CHANNEL_FEATURES, RECENT_COUNTS, micros
from features.engines import FRAME, frame_engine

CHURNED = "churned"
DAY = pd.Timedelta(days=1)
#: The columns of events the churn definitions read.
READ = (c.PERSON_ID, c.TYPE, c.CHANNEL, c.TS, c.PRICE, c.QUANTITY)


def _check(as_of: pd.Timestamp) -> None:
    if as_of.tzinfo is None:
        raise ValueError(f"as_of {as_of} has no UTC offset")


def _query(events: pd.DataFrame, sql: Callable[[str], str]) -> pd.DataFrame:
    """`sql(source)` run by the embedded engine over `events` (a frame, as a relation)."""
    with frame_engine(events, READ) as engine:
        return engine.query(sql(FRAME))


def population(
    events: pd.DataFrame, *, as_of: pd.Timestamp, lookback_days: float = 365
) -> pd.Index:
    """Persons with at least one purchase in [as_of - lookback_days, as_of), sorted."""
    _check(as_of)
    found = _query(events, lambda src: churn_sql.population(src, micros(as_of), lookback_days))
    people: pd.Index = pd.Index(np.sort(found[c.PERSON_ID].astype(str)), name=c.PERSON_ID)
    return people


def churn_labels(
    events: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    lookback_days: float = 365,
    horizon_days: float = 90,
) -> pd.Series:
    """True for each person of the population who buys nothing in [as_of, as_of + horizon).

    Reads events after `as_of` (that is what a label is); features never do.
    """
    _check(as_of)
    found = _query(
        events, lambda src: churn_sql.labels(src, micros(as_of), lookback_days, horizon_days)
    )
    return label_series(found)


def label_series(found: pd.DataFrame) -> pd.Series:
    """`churn_sql.labels`' rows as a boolean Series by person."""
    index = pd.Index(found[c.PERSON_ID].astype(str), name=c.PERSON_ID)
    return pd.Series(found[CHURNED].to_numpy() == 1, index=index, name=CHURNED)


def churn_features(
    events: pd.DataFrame, *, as_of: pd.Timestamp, lookback_days: float = 365
) -> pd.DataFrame:
    """One row per person of the population, from events strictly before `as_of`.

    Columns: recency, frequency and monetary value overall and per channel (web, app,
    store); inter-purchase gaps (mean, std, the last gap against the usual one) and their
    trend (purchase days in the last 90 days against the 90 before); browsing and carts
    without purchase in the last 30 days; returns; e-mail opens and clicks and accepted
    offers in the last 90 days; channel diversity; store visits; tenure; days since any
    event; for BG/NBD, days since the first purchase and purchase days over the whole
    history; the purchase rate over that history, the chance of the silence so far at that
    rate (Poisson) and recency as a share of the history. A channel a person never used
    gives NaN recency and zero counts, never an error.

    The definition is SQL (`features.churn_sql`), run here by the embedded engine; Spark
    runs the same text over a lake (`features.spark`).
    """
    _check(as_of)
    found = _query(events, lambda src: churn_sql.features(src, micros(as_of), lookback_days))
    return feature_frame(found)


feature_frame = churn_sql.finish


#: An optional column of `OneHistory.of_frame`'s events: how many events a row stands for.
COUNT = "count"


@dataclass(frozen=True)
class OneHistory:
    """One person's events as columns, what `churn_row` reads: ts (int64 nanoseconds,
    UTC), type and channel (text), price (NaN: none), quantity (NaN: one) and count (how
    many events of one UTC day, type and channel a row stands for, all inside or all
    outside every window: the online state's day rows; else one)."""

    ts: np.ndarray
    type: np.ndarray
    channel: np.ndarray
    price: np.ndarray
    quantity: np.ndarray
    count: np.ndarray

    @classmethod
    def of_frame(cls, events: pd.DataFrame) -> OneHistory:
        """The events of a frame (columns ts, type, channel, price, quantity; `COUNT` when
        rows stand for several), in its order."""
        ts = events[c.TS].dt.tz_convert("UTC").dt.as_unit("ns").astype("int64").to_numpy()
        price = events[c.PRICE].astype(float).to_numpy()
        quantity = events[c.QUANTITY].astype("Float64").astype(float).to_numpy()
        count = events[COUNT].to_numpy(dtype=float) if COUNT in events.columns else None
        return cls(
            ts,
            events[c.TYPE].astype(str).to_numpy(dtype=object),
            events[c.CHANNEL].to_numpy(dtype=object),
            price,
            quantity,
            np.ones(len(events)) if count is None else count,
        )


def churn_row(
    history: OneHistory, *, as_of: pd.Timestamp, lookback_days: float = 365
) -> dict[str, float] | None:
    """One person's churn features from their events strictly before `as_of`, in numpy:
    `churn_features`' columns and values for them (in its order; tests hold the two
    together), without pandas' cost per operation (the service's answer for one
    customer); None when they are not in the population. Only the event counts read
    `count`; every other feature is a first, last or distinct day."""
    _check(as_of)
    at = as_of.as_unit("ns").value
    before = history.ts < at
    ts = history.ts[before]
    age = (at - ts) / 1e9 / 86_400
    day = ts // 86_400_000_000_000
    kind = history.type[before]
    channel = history.channel[before]
    buy = kind == c.EventType.PURCHASE.value
    if not (buy & (age <= lookback_days)).any():
        return None
    price = np.nan_to_num(history.price[before], nan=0.0)
    quantity = np.nan_to_num(history.quantity[before], nan=1.0)
    cents = np.floor(price * quantity * 100 + 0.5)  # as `churn_sql`: whole cents
    row: dict[str, float] = {}
    for prefix, mask in [("", buy)] + [
        (f"{ch}_", buy & (channel == ch)) for ch in CHANNEL_FEATURES
    ]:
        window = mask & (age <= lookback_days)
        row[f"{prefix}recency_days"] = age[mask].min() if mask.any() else np.nan
        row[f"{prefix}purchase_days"] = len(np.unique(day[window]))
        row[f"{prefix}spend"] = cents[window].sum() / 100
    # Purchase days, each with the age of its first event (the first row, as drop_duplicates).
    days, first = np.unique(day[buy], return_index=True)
    day_age = age[buy][first]
    gaps = np.diff(days).astype(float)
    mean_gap = gaps.mean() if len(gaps) else np.nan
    recent = int((day_age < 90).sum())
    earlier = int(((day_age >= 90) & (day_age < 180)).sum())
    row["mean_gap_days"] = mean_gap
    row["std_gap_days"] = gaps.std(ddof=1) if len(gaps) > 1 else np.nan
    row["gap_ratio"] = day_age.min() / mean_gap
    row["purchase_days_last_90"] = recent
    row["purchase_days_prev_90"] = earlier
    row["purchase_trend"] = (recent + 1) / (earlier + 1)
    row["first_purchase_days"] = age[buy].max()
    row["lifetime_purchase_days"] = len(days)
    span = max(row["first_purchase_days"], 1.0)
    rate = row["lifetime_purchase_days"] / span
    row["purchase_rate"] = rate
    row["silence_chance"] = np.exp(-rate * row["recency_days"])
    row["recency_share"] = row["recency_days"] / span
    times = history.count[before].astype(float)
    for name, event_type, days_back in RECENT_COUNTS:
        row[name] = int(times[(kind == event_type) & (age < days_back)].sum())
    row["tenure_days"] = age.max()
    row["days_since_any_event"] = age.min()
    row["channels_used"] = len(set(channel[pd.notna(channel)]))
    row["store_visit_days"] = len(np.unique(day[channel == c.Channel.STORE.value]))
    return {name: float(value) for name, value in row.items()}
