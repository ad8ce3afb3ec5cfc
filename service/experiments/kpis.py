"""The omnichannel KPIs a retailer runs by, over a period: cross-channel conversion,
churn rate, and customer lifetime value (historic, and predicted for 12 months by BG/NBD
with Gamma-Gamma, checked against what customers then spent)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from features import columns as c
from features.churn import churn_labels
from models.clv import CLVModel, rfm

#: What counts as browsing: looking at or handling an item short of buying it.
BROWSE = (c.EventType.VIEW.value, c.EventType.ADD_TO_CART.value)


@dataclass(frozen=True)
class CrossChannel:
    """Over a period: customers who browsed, who bought, and who bought in a channel
    other than one they browsed in; by browse channel x purchase channel."""

    browsers: int
    buyers: int
    cross_buyers: int
    share_of_buyers: float
    rate_of_browsers: float
    paths: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True)
class Churn:
    """Customers who bought in the year before `as_of`, and of them, how many bought
    nothing in the `horizon_days` after it (the churn model's label)."""

    active_before: int
    churned: int
    rate: float
    horizon_days: float
    as_of: datetime


@dataclass(frozen=True)
class LifetimeValue:
    """Historic value (revenue to date per customer who bought) and predicted 12-month
    value, with the check of the model on the period itself: fitted on what came before,
    its predicted spend in the period against the spend seen, beside the naive forecast
    (the same as the period before)."""

    customers: int
    historic_mean: float
    historic_median: float
    predicted_12m_mean: float
    predicted_12m_median: float
    predicted_12m_total: float
    check_customers: int
    check_mae_model: float | None
    check_mae_last_period: float | None
    predicted_12m: pd.Series = field(repr=False, default_factory=lambda: pd.Series(dtype=float))


def cross_channel(events: pd.DataFrame) -> CrossChannel:
    """From a period's browse and purchase events (with person ids)."""
    events = events[events[c.PERSON_ID].notna()]
    browsed = events[events[c.TYPE].isin(BROWSE)][[c.PERSON_ID, c.CHANNEL]].drop_duplicates()
    bought = events[events[c.TYPE] == c.EventType.PURCHASE.value][
        [c.PERSON_ID, c.CHANNEL]
    ].drop_duplicates()
    pairs = browsed.merge(bought, on=c.PERSON_ID, suffixes=("_browsed", "_bought"))
    other = pairs[pairs["channel_browsed"].astype(str) != pairs["channel_bought"].astype(str)]
    cross = other[c.PERSON_ID].nunique()
    n_browsers, n_buyers = browsed[c.PERSON_ID].nunique(), bought[c.PERSON_ID].nunique()
    paths = (
        pairs.groupby(["channel_browsed", "channel_bought"], observed=True)[c.PERSON_ID]
        .nunique()
        .rename("customers")
        .reset_index()
    )
    return CrossChannel(
        browsers=int(n_browsers),
        buyers=int(n_buyers),
        cross_buyers=int(cross),
        share_of_buyers=cross / n_buyers if n_buyers else float("nan"),
        rate_of_browsers=cross / n_browsers if n_browsers else float("nan"),
        paths=[
            {"browsed": str(b), "bought": str(p), "customers": int(n)}
            for b, p, n in paths.itertuples(index=False)
        ],
    )


def churn_rate(purchases: pd.DataFrame, until: datetime, horizon_days: float = 90) -> Churn:
    """The churn model's own label, read back: of the customers who bought in the year
    before `until - horizon_days`, the share who bought nothing in the `horizon_days` to
    `until` (`purchases`: person_id, ts)."""
    as_of = pd.Timestamp(until) - pd.Timedelta(days=horizon_days)
    frame = purchases[[c.PERSON_ID, c.TS, c.CHANNEL]].copy()
    frame[c.TYPE] = c.EventType.PURCHASE.value
    frame[c.PRICE] = purchases["revenue"]
    frame[c.QUANTITY] = 1
    labels = churn_labels(frame[frame[c.TS] < pd.Timestamp(until)], as_of=as_of,
                          horizon_days=horizon_days)  # fmt: skip
    churned = int(labels.sum())
    return Churn(
        active_before=len(labels),
        churned=churned,
        rate=churned / len(labels) if len(labels) else float("nan"),
        horizon_days=horizon_days,
        as_of=as_of.to_pydatetime(),
    )


def lifetime_value(purchases: pd.DataFrame, since: datetime, until: datetime) -> LifetimeValue:
    """Historic and predicted 12-month value at `until`; the model's check on [since,
    until). `purchases`: person_id, ts, revenue (all history to `until`)."""
    frame = purchases[[c.PERSON_ID, c.TS, "revenue"]].dropna(subset=[c.PERSON_ID])
    frame = frame.assign(**{c.PERSON_ID: frame[c.PERSON_ID].astype(str)})
    end, start = pd.Timestamp(until), pd.Timestamp(since)
    to_date = frame[frame[c.TS] < end].groupby(c.PERSON_ID)["revenue"].sum()
    now = rfm(frame, end)
    try:
        predicted = CLVModel().fit(now).lifetime_value(now) if len(now) > 10 else pd.Series()
    except ValueError:  # too little or too odd a history to fit: reported as unknown
        predicted = pd.Series(dtype=float)
    check_n, mae_model, mae_naive = _check(frame, start, end)
    return LifetimeValue(
        customers=len(to_date),
        historic_mean=float(to_date.mean()) if len(to_date) else float("nan"),
        historic_median=float(to_date.median()) if len(to_date) else float("nan"),
        predicted_12m_mean=float(predicted.mean()) if len(predicted) else float("nan"),
        predicted_12m_median=float(predicted.median()) if len(predicted) else float("nan"),
        predicted_12m_total=float(predicted.sum()) if len(predicted) else float("nan"),
        check_customers=check_n,
        check_mae_model=mae_model,
        check_mae_last_period=mae_naive,
        predicted_12m=predicted,
    )


def _check(
    frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[int, float | None, float | None]:
    """The model fitted at `start` predicting each customer's spend in [start, end),
    against the spend seen; and the naive forecast (their spend in the period before)."""
    known = rfm(frame, start)
    if len(known) <= 10 or end <= start:
        return 0, None, None
    days = (end - start) / pd.Timedelta(days=1)
    try:
        predicted = CLVModel().fit(known).predict_value(known, days)
    except ValueError:
        return len(known), None, None
    during = frame[(frame[c.TS] >= start) & (frame[c.TS] < end)]
    seen = during.groupby(c.PERSON_ID)["revenue"].sum().reindex(known.index).fillna(0.0)
    before = frame[(frame[c.TS] >= start - (end - start)) & (frame[c.TS] < start)]
    naive = before.groupby(c.PERSON_ID)["revenue"].sum().reindex(known.index).fillna(0.0)
    return (
        len(known),
        float(np.mean(np.abs(predicted - seen))),
        float(np.mean(np.abs(naive - seen))),
    )
