"""Churn: the label and the features, as pure functions of (events, as_of).

The population at a cutoff is every person with a purchase in the `lookback_days` before
it; a person churns when they buy nothing, in any channel, in the `horizon_days` after
it. Features read only events strictly before the cutoff, so no future leaks in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import columns as c

CHURNED = "churned"
DAY = pd.Timedelta(days=1)
#: Channels that get their own recency and frequency columns.
CHANNEL_FEATURES = (c.Channel.WEB, c.Channel.APP, c.Channel.STORE)


def _check(as_of: pd.Timestamp) -> None:
    if as_of.tzinfo is None:
        raise ValueError(f"as_of {as_of} has no UTC offset")


def _purchases(events: pd.DataFrame) -> pd.DataFrame:
    return events[(events[c.TYPE] == c.EventType.PURCHASE) & events[c.PERSON_ID].notna()]


def population(
    events: pd.DataFrame, *, as_of: pd.Timestamp, lookback_days: float = 365
) -> pd.Index:
    """Persons with at least one purchase in [as_of - lookback_days, as_of), sorted."""
    _check(as_of)
    bought = _purchases(events)
    recent = bought[(bought[c.TS] < as_of) & (bought[c.TS] >= as_of - lookback_days * DAY)]
    people: pd.Index = pd.Index(np.sort(recent[c.PERSON_ID].astype(str).unique()), name=c.PERSON_ID)
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
    people = population(events, as_of=as_of, lookback_days=lookback_days)
    bought = _purchases(events)
    later = bought[(bought[c.TS] >= as_of) & (bought[c.TS] < as_of + horizon_days * DAY)]
    active = set(later[c.PERSON_ID].astype(str))
    return pd.Series([p not in active for p in people], index=people, name=CHURNED)


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
    """
    people = population(events, as_of=as_of, lookback_days=lookback_days)
    past = events[(events[c.TS] < as_of) & events[c.PERSON_ID].notna()]
    past = past[past[c.PERSON_ID].astype(str).isin(people)].assign(
        **{c.PERSON_ID: lambda f: f[c.PERSON_ID].astype(str)}
    )
    age = (as_of - past[c.TS]).dt.total_seconds() / 86_400
    past = past.assign(age=age.to_numpy(), day=past[c.TS].dt.floor("D"))
    bought = past[past[c.TYPE] == c.EventType.PURCHASE]
    out = pd.DataFrame(index=people)
    out = out.join(_rfm(bought, "", lookback_days))
    for channel in CHANNEL_FEATURES:
        out = out.join(_rfm(bought[bought[c.CHANNEL] == channel], f"{channel}_", lookback_days))
    out = out.join(_gaps(bought))
    lifetime = bought.groupby(c.PERSON_ID)
    out["first_purchase_days"] = lifetime["age"].max()
    out["lifetime_purchase_days"] = lifetime["day"].nunique()
    out = out.join(_rate(out))
    out = out.join(_recent_counts(past))
    by_person = past.groupby(c.PERSON_ID)
    out["tenure_days"] = by_person["age"].max()
    out["days_since_any_event"] = by_person["age"].min()
    out["channels_used"] = by_person[c.CHANNEL].nunique()
    in_store = past[past[c.CHANNEL] == c.Channel.STORE]
    out["store_visit_days"] = in_store.groupby(c.PERSON_ID)["day"].nunique()
    counts = [
        col for col in out.columns if not col.endswith(("recency_days", "_gap_days", "gap_ratio"))
    ]
    out[counts] = out[counts].fillna(0.0)
    return out.astype(float)


def _rfm(bought: pd.DataFrame, prefix: str, lookback_days: float) -> pd.DataFrame:
    """Recency (days since the last purchase), frequency (purchase days) and monetary value."""
    window = bought[bought["age"] <= lookback_days]
    spend = window[c.PRICE].fillna(0.0) * window[c.QUANTITY].astype("Float64").fillna(1.0)
    grouped = window.assign(spend=spend.astype(float)).groupby(c.PERSON_ID)
    return pd.DataFrame(
        {
            f"{prefix}recency_days": bought.groupby(c.PERSON_ID)["age"].min(),
            f"{prefix}purchase_days": grouped["day"].nunique(),
            f"{prefix}spend": grouped["spend"].sum(),
        }
    )


def _rate(out: pd.DataFrame) -> pd.DataFrame:
    """Purchase days per day of history and how unusual the current silence is at that rate."""
    history = out["first_purchase_days"].clip(lower=1.0)
    rate = out["lifetime_purchase_days"] / history
    return pd.DataFrame(
        {
            "purchase_rate": rate,
            "silence_chance": np.exp(-rate * out["recency_days"]),
            "recency_share": out["recency_days"] / history,
        }
    )


def _gaps(bought: pd.DataFrame) -> pd.DataFrame:
    """Gaps between purchase days: mean, spread, the open gap against the usual, the trend."""
    days = bought[[c.PERSON_ID, "day", "age"]].drop_duplicates([c.PERSON_ID, "day"])
    days = days.sort_values([c.PERSON_ID, "day"])
    gap = days.groupby(c.PERSON_ID)["day"].diff().dt.total_seconds() / 86_400
    gaps = days.assign(gap=gap).groupby(c.PERSON_ID)["gap"]
    out = pd.DataFrame({"mean_gap_days": gaps.mean(), "std_gap_days": gaps.std()})
    last = days.groupby(c.PERSON_ID)["age"].min()
    out["gap_ratio"] = last / out["mean_gap_days"]
    recent = days[days["age"] < 90].groupby(c.PERSON_ID).size()
    before = days[(days["age"] >= 90) & (days["age"] < 180)].groupby(c.PERSON_ID).size()
    out["purchase_days_last_90"] = recent
    out["purchase_days_prev_90"] = before
    out["purchase_trend"] = (recent.reindex(out.index).fillna(0) + 1) / (
        before.reindex(out.index).fillna(0) + 1
    )
    return out


#: Events of a type counted over recent days: (column, type, days).
RECENT_COUNTS = (
    ("views_30", c.EventType.VIEW, 30),
    ("carts_30", c.EventType.ADD_TO_CART, 30),
    ("purchases_30", c.EventType.PURCHASE, 30),
    ("returns_365", c.EventType.RETURN, 365),
    ("email_opens_90", c.EventType.EMAIL_OPEN, 90),
    ("email_clicks_90", c.EventType.EMAIL_CLICK, 90),
    ("offers_accepted_90", c.EventType.OFFER_ACCEPTED, 90),
)


def _recent_counts(past: pd.DataFrame) -> pd.DataFrame:
    """Browsing, carts, returns, e-mail and offer responses in recent windows."""

    def count(kind: str, days: float) -> pd.Series:
        rows = past[(past[c.TYPE] == kind) & (past["age"] < days)]
        return rows.groupby(c.PERSON_ID).size()

    return pd.DataFrame({name: count(kind, days) for name, kind, days in RECENT_COUNTS})


#: An optional column of `churn_features_one`'s events: how many events a row stands for.
COUNT = "count"


def churn_features_one(
    events: pd.DataFrame, *, as_of: pd.Timestamp, lookback_days: float = 365
) -> pd.DataFrame:
    """`churn_features` for the events of one person, in numpy: the same columns and
    values (tests hold the two together), without pandas' cost per operation, for the
    service's one-customer answers. Empty when the person is not in the population.

    A row may stand for several events of one UTC day, type and channel, all inside or
    all outside every window, with a `COUNT` column (the online state's day rows): only
    the event counts read it, every other feature is a first, last or distinct day."""
    _check(as_of)
    ev = events[(events[c.TS] < as_of) & events[c.PERSON_ID].notna()]
    ts = ev[c.TS].dt.tz_convert("UTC").dt.as_unit("ns").astype("int64").to_numpy()
    age = (as_of.as_unit("ns").value - ts) / 1e9 / 86_400
    day = ts // 86_400_000_000_000
    kind = ev[c.TYPE].astype(str).to_numpy()
    channel = ev[c.CHANNEL].to_numpy(dtype=object)
    buy = kind == c.EventType.PURCHASE
    if not (buy & (age <= lookback_days)).any():
        return pd.DataFrame()
    price = ev[c.PRICE].astype(float).fillna(0.0).to_numpy()
    quantity = ev[c.QUANTITY].astype("Float64").fillna(1.0).astype(float).to_numpy()
    spend = price * quantity
    row: dict[str, float] = {}
    for prefix, mask in [("", buy)] + [
        (f"{ch}_", buy & (channel == ch)) for ch in CHANNEL_FEATURES
    ]:
        window = mask & (age <= lookback_days)
        row[f"{prefix}recency_days"] = age[mask].min() if mask.any() else np.nan
        row[f"{prefix}purchase_days"] = len(np.unique(day[window]))
        row[f"{prefix}spend"] = spend[window].sum()
    # Purchase days, each with the age of its first event (the first row, as drop_duplicates).
    days, first = np.unique(day[buy], return_index=True)
    day_age = age[buy][first]
    gaps = np.diff(days).astype(float)
    mean_gap = gaps.mean() if len(gaps) else np.nan
    recent = int((day_age < 90).sum())
    before = int(((day_age >= 90) & (day_age < 180)).sum())
    row["mean_gap_days"] = mean_gap
    row["std_gap_days"] = gaps.std(ddof=1) if len(gaps) > 1 else np.nan
    row["gap_ratio"] = day_age.min() / mean_gap
    row["purchase_days_last_90"] = recent
    row["purchase_days_prev_90"] = before
    row["purchase_trend"] = (recent + 1) / (before + 1)
    row["first_purchase_days"] = age[buy].max()
    row["lifetime_purchase_days"] = len(days)
    history = max(row["first_purchase_days"], 1.0)
    rate = row["lifetime_purchase_days"] / history
    row["purchase_rate"] = rate
    row["silence_chance"] = np.exp(-rate * row["recency_days"])
    row["recency_share"] = row["recency_days"] / history
    # Rows may stand for several events of one day, type and channel (`COUNT`).
    times = ev[COUNT].to_numpy(dtype=float) if COUNT in ev.columns else np.ones(len(ev))
    for name, event_type, days_back in RECENT_COUNTS:
        row[name] = int(times[(kind == event_type) & (age < days_back)].sum())
    row["tenure_days"] = age.max()
    row["days_since_any_event"] = age.min()
    row["channels_used"] = len(set(channel[pd.notna(channel)]))
    row["store_visit_days"] = len(np.unique(day[channel == c.Channel.STORE]))
    person = str(ev[c.PERSON_ID].iloc[0])
    return pd.DataFrame([row], index=pd.Index([person], name=c.PERSON_ID)).astype(float)
