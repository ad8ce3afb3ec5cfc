"""How the synthetic customers answer what Omni sends them, with the truth known.

Each contacted customer (given an offer or a message, or held back and recorded at that
moment) buys anyway within `days` with their own chance, from how often they bought
before: 1 - exp(-days x purchase days per day over the `history_days` before). A customer
who was given an offer also takes it with the chance their arm's `take` says (by arm
name, or "treated" outside experiments): an `offer_accepted` event in the channel the
offer went out in and a purchase of the offered item (or one of its category) in a store
or online, both carrying the offer's served_id. The truth: a treated customer buys with
P = take + (1 - take) x p_base, a control customer with p_base, so the true incremental
conversion of a group is take x mean(1 - p_base).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features import columns as c

#: How far back a customer's own purchase rate is read.
HISTORY_DAYS = 90.0
#: Where a customer who takes an offer buys (an e-mail sends many to a store).
BUY_CHANNELS = (c.Channel.STORE.value, c.Channel.WEB.value, c.Channel.APP.value)


@dataclass(frozen=True)
class Responses:
    """The events the customers sent back, and per customer what was drawn."""

    events: pd.DataFrame
    truth: pd.DataFrame  # person_id, group, p_base, treated, took, bought_anyway


def base_chance(purchases: pd.DataFrame, persons: pd.Index, at: pd.Timestamp,
                days: float, history_days: float = HISTORY_DAYS) -> pd.Series:  # fmt: skip
    """Each person's chance of buying within `days` after `at`, from their purchase days
    in the `history_days` before it (`purchases`: person_id, ts)."""
    recent = purchases[
        (purchases[c.TS] < at) & (purchases[c.TS] >= at - pd.Timedelta(days=history_days))
    ]
    per_day = recent.assign(day=recent[c.TS].dt.floor("D")).groupby(c.PERSON_ID)["day"].nunique()
    rate = per_day.reindex(persons).fillna(0.0) / history_days
    return pd.Series(1.0 - np.exp(-rate.to_numpy(dtype=float) * days), index=rate.index)


def respond(
    exposed: pd.DataFrame,
    base: pd.Series,
    take: Mapping[str, float],
    catalogue: pd.DataFrame,
    offers: pd.DataFrame,
    days: float,
    seed: int,
) -> Responses:
    """The answers of the persons in `exposed` (the exposures ledger's rows, with a
    `group` column: arm, "treated" or "holdout"); `base`: each person's chance to buy
    anyway; `take`: the chance an offer is taken, by group (0 when not named)."""
    rng = np.random.default_rng(seed)
    firsts = exposed.sort_values("served_at").drop_duplicates(c.PERSON_ID).reset_index(drop=True)
    n = len(firsts)
    p_base = base.reindex(firsts[c.PERSON_ID]).fillna(0.0).to_numpy()
    given = firsts["held_by"].isna().to_numpy() & firsts[c.OFFER_ID].notna().to_numpy()
    chance = firsts["group"].map(lambda g: float(take.get(str(g), 0.0))).to_numpy()
    took = given & (rng.random(n) < chance)
    anyway = rng.random(n) < p_base
    t0 = pd.to_datetime(firsts["served_at"], utc=True)
    served = firsts["served_id"].astype(str).to_numpy()
    customer = firsts[c.CUSTOMER_ID].fillna(firsts[c.PERSON_ID]).astype(str).to_numpy()
    prices = catalogue.set_index(c.ITEM_ID)[c.PRICE].astype(float)
    items = catalogue[c.ITEM_ID].astype(str).to_numpy()
    by_category = {str(k): [str(i) for i in v] for k, v in catalogue.groupby(c.CATEGORY)[c.ITEM_ID]}
    offer_rows = offers.set_index(c.OFFER_ID)
    rows: list[dict[str, object]] = []
    for i in np.flatnonzero(anyway):
        at = t0.iloc[i] + pd.Timedelta(days=float(rng.uniform(0.01, days - 0.01)))
        item = str(items[rng.integers(len(items))])
        where = str(rng.choice(BUY_CHANNELS))
        rows.append(
            _purchase(
                f"sim-{seed}-{served[i]}-base",
                customer[i],
                at,
                where,
                item,
                prices,
                None,
            )
        )
    for i in np.flatnonzero(took):
        served_id, offer_id = str(firsts.at[i, "served_id"]), str(firsts.at[i, c.OFFER_ID])
        at = t0.iloc[i] + pd.Timedelta(days=float(rng.uniform(0.01, days / 2)))
        tag = f"sim-{seed}-{served_id}"
        rows.append({c.EVENT_ID: f"{tag}-take", c.TS: at, c.CUSTOMER_ID: customer[i],
                     c.CHANNEL: _event_channel(str(firsts.at[i, c.CHANNEL])),
                     c.TYPE: c.EventType.OFFER_ACCEPTED.value, c.OFFER_ID: offer_id,
                     c.SERVED_ID: served_id})  # fmt: skip
        item = _offered_item(offer_rows, offer_id, by_category, items, rng)
        where, later = str(rng.choice(BUY_CHANNELS)), at + pd.Timedelta(hours=2)
        rows.append(_purchase(f"{tag}-buy", customer[i], later, where, item, prices, served_id))
    events = pd.DataFrame(rows)
    truth = pd.DataFrame(
        {
            c.PERSON_ID: firsts[c.PERSON_ID].to_numpy(),
            "group": firsts["group"].to_numpy(),
            "p_base": p_base,
            "treated": given,
            "took": took,
            "bought_anyway": anyway,
        }
    )
    return Responses(events, truth)


def _purchase(event_id: str, customer: str, at: pd.Timestamp, channel: str, item: str,
              prices: pd.Series, served_id: str | None) -> dict[str, object]:  # fmt: skip
    row: dict[str, object] = {c.EVENT_ID: event_id, c.TS: at, c.CUSTOMER_ID: customer,
                              c.CHANNEL: channel, c.TYPE: c.EventType.PURCHASE.value,
                              c.ITEM_ID: item, c.QUANTITY: 1, c.PRICE: float(prices[item]),
                              c.SERVED_ID: served_id}  # fmt: skip
    if channel == c.Channel.STORE.value:
        row[c.STORE_ID] = "S001"
    return row


def _event_channel(channel: str) -> str:
    """The event channel of an answer to a message (a push is answered in the app)."""
    known = {ch.value for ch in c.Channel}
    return channel if channel in known else c.Channel.APP.value


def _offered_item(offers: pd.DataFrame, offer_id: str, by_category: Mapping[str, list[str]],
                  items: np.ndarray, rng: np.random.Generator) -> str:  # fmt: skip
    """The offer's item, else an item of its category, else any item."""
    if offer_id in offers.index:
        item, category = offers.at[offer_id, c.ITEM_ID], offers.at[offer_id, c.CATEGORY]
        if isinstance(item, str):
            return item
        if isinstance(category, str) and by_category.get(category):
            pool = by_category[category]
            return str(pool[rng.integers(len(pool))])
    return str(items[rng.integers(len(items))])
