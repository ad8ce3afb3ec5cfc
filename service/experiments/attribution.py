"""Which purchases an answer led to.

A purchase is attributed to an exposure (an answer given out, not held back) of the same
person made before it and at most `days` before it:

- **direct**: the purchase carries the exposure's `served_id` (sent back by the channel);
- **last touch**: otherwise, the person's latest exposure before the purchase;
- **any touch**: every exposure of the person in the window before the purchase gets it
  (so a purchase may count for several answers; their sum is not the revenue).

Across channels: an e-mail in the morning and a purchase at a store till in the afternoon
are one person's, by the identity map, so the e-mail gets the store purchase.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import columns as c

#: What attribution reads of each purchase.
PURCHASE_COLUMNS = [c.EVENT_ID, c.PERSON_ID, c.TS, c.CHANNEL, c.SERVED_ID, "revenue"]
ATTRIBUTED_COLUMNS = [
    c.EVENT_ID, c.PERSON_ID, c.TS, c.CHANNEL, "revenue", "served_id", "rule", c.KIND,
    "exposure_channel",
]  # fmt: skip


def purchases_of(events: pd.DataFrame) -> pd.DataFrame:
    """The purchases of `events` (with person ids) and their revenue (price x quantity;
    a purchase without a price counts as a conversion with no revenue)."""
    bought = events[events[c.TYPE] == c.EventType.PURCHASE.value]
    quantity = bought[c.QUANTITY].astype("float64").fillna(1.0)
    revenue = (bought[c.PRICE].astype("float64") * quantity).fillna(0.0)
    out = bought.assign(revenue=revenue, **{c.TS: _utc_ns(bought[c.TS])})
    if c.SERVED_ID not in out:
        out = out.assign(**{c.SERVED_ID: None})
    return out[PURCHASE_COLUMNS].reset_index(drop=True)


def last_touch(exposures: pd.DataFrame, purchases: pd.DataFrame, days: float) -> pd.DataFrame:
    """Each purchase with the exposure it is attributed to (direct, else last touch), or
    none: ATTRIBUTED_COLUMNS, one row per attributed purchase."""
    given = _given(exposures)
    if given.empty or purchases.empty:
        return pd.DataFrame(columns=ATTRIBUTED_COLUMNS)
    bought = _sent_back(purchases)
    touches = given[[c.PERSON_ID, "served_at", "served_id", c.KIND, c.CHANNEL]].rename(
        columns={c.CHANNEL: "exposure_channel"}
    )
    # Direct: the purchase names an answer given to the same person, before, in the window.
    direct = bought.merge(touches, left_on=["sent_back", c.PERSON_ID],
                          right_on=["served_id", c.PERSON_ID])  # fmt: skip
    direct = direct[_within(direct, days)].assign(rule="direct")
    rest = bought[~bought[c.EVENT_ID].isin(direct[c.EVENT_ID]) & bought[c.PERSON_ID].notna()]
    rest = rest.assign(**{c.PERSON_ID: rest[c.PERSON_ID].astype(str)}).sort_values(c.TS)
    matched = pd.merge_asof(
        rest,
        touches.assign(**{c.PERSON_ID: touches[c.PERSON_ID].astype(str)}).sort_values("served_at"),
        left_on=c.TS,
        right_on="served_at",
        by=c.PERSON_ID,
        direction="backward",
        tolerance=pd.Timedelta(days=days),
    )
    matched = matched[matched["served_id"].notna()].assign(rule="last touch")
    out: pd.DataFrame = pd.concat([direct, matched], ignore_index=True)[ATTRIBUTED_COLUMNS]
    return out


def any_touch(exposures: pd.DataFrame, purchases: pd.DataFrame, days: float) -> pd.DataFrame:
    """Every (purchase, exposure) pair of one person with the exposure at most `days`
    before the purchase: ATTRIBUTED_COLUMNS with rule "any touch"."""
    given = _given(exposures)
    if given.empty or purchases.empty:
        return pd.DataFrame(columns=ATTRIBUTED_COLUMNS)
    bought = _sent_back(purchases)
    pairs = bought[bought[c.PERSON_ID].notna()].merge(
        given[[c.PERSON_ID, "served_at", "served_id", c.KIND, c.CHANNEL]].rename(
            columns={c.CHANNEL: "exposure_channel"}
        ),
        on=c.PERSON_ID,
    )
    pairs = pairs[_within(pairs, days)].assign(rule="any touch")
    out: pd.DataFrame = pairs[ATTRIBUTED_COLUMNS].reset_index(drop=True)
    return out


def _sent_back(purchases: pd.DataFrame) -> pd.DataFrame:
    """The purchases with the served id they carried as `sent_back` (their own column name
    is the exposures' key)."""
    return purchases.rename(columns={c.SERVED_ID: "sent_back"}).assign(
        **{c.TS: lambda f: _utc_ns(f[c.TS])}
    )


def _within(pairs: pd.DataFrame, days: float) -> pd.Series:
    """(purchase, exposure) pairs with the purchase at most `days` after the exposure."""
    return (pairs["served_at"] <= pairs[c.TS]) & (
        pairs[c.TS] <= pairs["served_at"] + pd.Timedelta(days=days)
    )


def summary(attributed: pd.DataFrame) -> pd.DataFrame:
    """Attributed purchases and revenue by rule, kind and channel of the answer, and how
    many of them were bought in another channel than the answer was given in."""
    if attributed.empty:
        return pd.DataFrame(
            columns=["rule", c.KIND, "exposure_channel", "purchases", "revenue", "cross_channel"]
        )
    cross = attributed[c.CHANNEL].astype(str) != attributed["exposure_channel"].astype(str)
    table = (
        attributed.assign(cross_channel=cross.astype(int))
        .groupby(["rule", c.KIND, "exposure_channel"], observed=True)
        .agg(
            purchases=(c.EVENT_ID, "count"),
            revenue=("revenue", "sum"),
            cross_channel=("cross_channel", "sum"),
        )
        .reset_index()
    )
    table["revenue"] = np.round(table["revenue"].astype(float), 2)
    return table


def _given(exposures: pd.DataFrame) -> pd.DataFrame:
    """The exposures given out (not held back), their times in one unit."""
    given = exposures[exposures["held_by"].isna()].reset_index(drop=True)
    return given.assign(served_at=_utc_ns(given["served_at"]))


def _utc_ns(times: pd.Series) -> pd.Series:
    return pd.to_datetime(times, utc=True).astype("datetime64[ns, UTC]")
