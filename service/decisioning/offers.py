"""Which offers a customer may get, how likely they take each, and which is worth most.

Pure functions over frames, for one customer (the API) and for all (the e-mail export)
alike. The expected value of an offer is the chance the customer takes it times its
value, where the chance comes from the models:

- the churn model gives the chance the customer buys at all (1 - P(churn));
- the recommender gives, through the rank of each item in the customer's top
  suggestions, the share of their next purchase each item may take (weights 1/rank,
  normalised over the list);
- a product offer takes its item's share, a promotion on a category the summed share of
  its items, an offer about no item (a service) a flat `BASE_TAKE_RATE`;
- a retention incentive goes only to customers in the retention bands (settings), and
  is taken with the chance the customer is leaving times `SAVE_RATE`;
- once an offer kind (or an offer) has enough outcomes, the level of these chances is
  corrected by the rate customers really took it at (service.experiments.take_rates).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from features import columns as c
from service.experiments.take_rates import TakeRates
from service.storage.codec import micros

#: The chance a customer takes an offer that is about no item in particular.
BASE_TAKE_RATE = 0.05
#: The chance a retention incentive keeps a customer who would otherwise leave.
SAVE_RATE = 0.2
#: Chance of buying at all when no churn model is loaded.
UNKNOWN_BUY_RATE = 0.5
#: Offer channels a trigger or batch channel reads (a push goes to the app).
OFFER_CHANNEL = {"push": c.Channel.APP.value}

CANDIDATE_COLUMNS = [c.PERSON_ID, c.ITEM_ID, c.CATEGORY, "rank", "reason", c.NAME]


@dataclass(frozen=True)
class Where:
    """The channel asking, and for a store its stock (item ids and their categories)."""

    channel: str
    stock_items: frozenset[str] | None = None
    stock_categories: frozenset[str] | None = None


def offers_now(book: pd.DataFrame, channel: str, now: datetime) -> pd.DataFrame:
    """The offers of `book` (the offers table) valid at `now` and made in `channel`."""
    if book.empty:
        return book
    at = micros(now)
    keep = [open_in(offer, channel, at) for offer in book.to_dict("records")]
    found: pd.DataFrame = book[np.asarray(keep, dtype=bool)].reset_index(drop=True)
    return found


def open_in(offer: Mapping[Any, Any], channel: str, at: int) -> bool:
    """Whether the offer (a row of the offers table) is valid at `at` (microseconds) and
    made in `channel` (no channels listed: made in every one)."""
    listed = offer[c.CHANNELS] if isinstance(offer[c.CHANNELS], str) else ""
    wanted = OFFER_CHANNEL.get(channel, channel)
    made_here = not listed.strip() or wanted in [n.strip() for n in listed.split(",")]
    return made_here and int(offer[c.VALID_FROM]) <= at < int(offer[c.VALID_UNTIL])


def still_open(offer: Mapping[Any, Any] | None, where: Where, bought: set[str]) -> str | None:
    """Why a standing decision's offer is no longer open to the customer in `where` (None:
    it is): the rules of `eligible` but the churn band, for one offer, without pandas."""
    if offer is None:
        return f"not on offer in {where.channel} now"
    item, category = offer[c.ITEM_ID], offer[c.CATEGORY]
    if isinstance(item, str):
        if item in bought:
            return "the item was bought since"
        if where.stock_items is not None and item not in where.stock_items:
            return "out of stock here"
    elif (
        isinstance(category, str)
        and where.stock_categories is not None
        and category not in where.stock_categories
    ):
        return f"nothing in {category} on the shelf here"
    return None


def has_tiers(offers: pd.DataFrame) -> bool:
    """Whether any of the offers is kept for some loyalty tiers (then a person's tier is
    needed to decide)."""
    return c.TIERS in offers and bool(
        (offers[c.TIERS].fillna("").astype(str).str.strip() != "").any()
    )


def eligible(
    offers: pd.DataFrame,
    persons: pd.DataFrame,
    where: Where,
    *,
    bought: pd.DataFrame,
    answered: pd.DataFrame,
    retention_bands: list[str] | None,
    held: Collection[str] = (),
    tier_of: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Every (person, offer) pair the person may get in `where`.

    `persons`: person_id, band (None without a churn model). `bought`: person_id, item_id
    bought recently (a product offer on it is moot). `answered`: person_id, offer_id the
    person already accepted or declined. Offers on an item or category need it on the
    shelf when `where` is a store. Retention offers need a band in `retention_bands`
    (None: the band is not checked, as when an earlier decision is checked again). The
    persons in `held` (an open complaint) get no sales offer, only a retention one. An
    offer for some loyalty tiers goes only to persons whose tier (`tier_of`, by person
    id) is one of them.
    """
    pairs = persons[[c.PERSON_ID, "band"]].merge(offers, how="cross")
    keep = np.ones(len(pairs), dtype=bool)
    item = pairs[c.ITEM_ID].notna()
    if where.stock_items is not None:
        keep &= ~item | pairs[c.ITEM_ID].isin(where.stock_items)
    if where.stock_categories is not None:
        category = pairs[c.CATEGORY].notna() & ~item
        keep &= ~category | pairs[c.CATEGORY].isin(where.stock_categories)
    if retention_bands is not None:
        retention = pairs[c.KIND] == "retention"
        keep &= ~retention | pairs["band"].isin(retention_bands)
    if has_tiers(pairs):
        tiers = pairs[c.TIERS].fillna("").astype(str)
        theirs = pairs[c.PERSON_ID].map(dict(tier_of or {}))
        for listed in tiers[tiers.str.strip() != ""].unique():  # a few distinct lists
            named = {x.strip() for x in listed.split(",")}
            keep &= ~((tiers == listed) & ~theirs.isin(named)).to_numpy()
    if held:
        keep &= ~(pairs[c.PERSON_ID].isin(list(held)) & (pairs[c.KIND] != "retention"))
    keep &= ~_in(pairs, bought, [c.PERSON_ID, c.ITEM_ID])
    keep &= ~_in(pairs, answered, [c.PERSON_ID, c.OFFER_ID])
    return pairs[keep].reset_index(drop=True)


def rank_offers(
    pairs: pd.DataFrame,
    persons: pd.DataFrame,
    candidates: pd.DataFrame,
    rates: TakeRates | None = None,
) -> pd.DataFrame:
    """The eligible `pairs` with their probability, expected value and reason, best first
    per person. `persons`: person_id, churn (probability or None), band, driver.
    `candidates`: the person's suggested items (CANDIDATE_COLUMNS), rank 1 first. With
    learned `rates`, the models' chance (`prior`) is corrected by them where they have
    enough outcomes (`source` says which was used)."""
    if pairs.empty:
        return pairs.assign(probability=[], expected_value=[], reason=[], prior=[], source=[])
    churn = persons["churn"].astype(float)
    people = pd.DataFrame(
        {
            c.PERSON_ID: persons[c.PERSON_ID],
            "buys": (1 - churn).fillna(UNKNOWN_BUY_RATE),
            "leaving": churn.where(churn.notna(), (persons["band"] == "lapsed").astype(float)),
            "driver": persons["driver"],
        }
    )
    shares = candidates.assign(share=1.0 / candidates["rank"].astype(float))
    shares["share"] /= shares.groupby(c.PERSON_ID)["share"].transform("sum")
    suggested = shares.groupby(c.PERSON_ID).size().rename("suggested").reset_index()
    # Only suggestions an offer is about matter from here on.
    shares = shares[
        shares[c.ITEM_ID].isin(pairs[c.ITEM_ID].dropna().unique())
        | shares[c.CATEGORY].isin(pairs[c.CATEGORY].dropna().unique())
    ]
    items = shares[[c.PERSON_ID, c.ITEM_ID, "share", "rank", "reason", c.NAME]].rename(
        columns={"share": "item_share", "reason": "item_reason", c.NAME: "item_name"}
    )
    categories = (
        shares.groupby([c.PERSON_ID, c.CATEGORY])
        .agg(cat_share=("share", "sum"), cat_n=("share", "size"))
        .reset_index()
    )
    x = (
        pairs.merge(people, on=c.PERSON_ID, how="left")
        .merge(suggested, on=c.PERSON_ID, how="left")
        .merge(items, on=[c.PERSON_ID, c.ITEM_ID], how="left")
        .merge(categories, on=[c.PERSON_ID, c.CATEGORY], how="left")
    )
    has_item = x[c.ITEM_ID].notna().to_numpy()
    has_category = x[c.CATEGORY].notna().to_numpy() & ~has_item
    retention = (x[c.KIND] == "retention").to_numpy()
    share = np.where(
        has_item,
        x["item_share"].fillna(0).to_numpy(dtype=float),
        np.where(has_category, x["cat_share"].fillna(0).to_numpy(dtype=float), BASE_TAKE_RATE),
    )
    prior = np.where(
        retention,
        x["leaving"].fillna(0).to_numpy(dtype=float) * SAVE_RATE,
        x["buys"].to_numpy(dtype=float) * share,
    )
    probability, source = (rates or TakeRates()).correct(x[c.OFFER_ID], x[c.KIND], prior)
    reasons = [
        reason_for(*row)
        for row in zip(
            retention,
            has_item,
            has_category,
            x["band"].to_numpy(dtype=object),
            x["driver"].to_numpy(dtype=object),
            x["rank"].to_numpy(dtype=float),
            x["item_reason"].to_numpy(dtype=object),
            x["item_name"].to_numpy(dtype=object),
            x["cat_n"].fillna(0).to_numpy(dtype=int),
            x["suggested"].fillna(0).to_numpy(dtype=int),
            x[c.CATEGORY].to_numpy(dtype=object),
            strict=True,
        )
    ]
    ranked = pairs.assign(
        probability=probability,
        expected_value=probability * pairs[c.VALUE].astype(float),
        reason=reasons,
        prior=prior,
        source=source,
    )
    ranked = ranked[ranked["probability"] > 0]
    ranked = ranked.sort_values(
        [c.PERSON_ID, "expected_value", c.OFFER_ID], ascending=[True, False, True]
    )
    return ranked.reset_index(drop=True)


def offer_fields(offer: Mapping[Any, Any]) -> dict[str, object]:
    """One row of the offer book as the API shows an offer."""
    return {
        c.OFFER_ID: str(offer[c.OFFER_ID]),
        c.NAME: str(offer[c.NAME]),
        c.KIND: str(offer[c.KIND]),
        c.ITEM_ID: text_or_none(offer[c.ITEM_ID]),
        c.CATEGORY: text_or_none(offer[c.CATEGORY]),
        c.VALUE: float(offer[c.VALUE]),
        c.DESCRIPTION: text_or_none(offer[c.DESCRIPTION]),
    }


def text_or_none(value: object) -> str | None:
    """A text field of an offer row as text, None when missing (None or NaN)."""
    return value if isinstance(value, str) else None


def best(ranked: pd.DataFrame, most_likely: Collection[str] = ()) -> pd.DataFrame:
    """The best offer per person: the first in `rank_offers`' order (expected value), or
    for the persons in `most_likely` (an experiment arm's policy) the likeliest taken."""
    if len(most_likely) and len(ranked):
        likely = ranked[c.PERSON_ID].isin(list(most_likely))
        key = np.where(likely, ranked["probability"], ranked["expected_value"])
        ranked = ranked.assign(_key=key).sort_values(
            [c.PERSON_ID, "_key", c.OFFER_ID], ascending=[True, False, True]
        )
        ranked = ranked.drop(columns="_key")
    return ranked.drop_duplicates(c.PERSON_ID).reset_index(drop=True)


def reason_for(
    retention: bool,
    has_item: bool,
    has_category: bool,
    band: object,
    driver: object,
    rank: float,
    why: object,
    name: object,
    in_category: int,
    suggested: int,
    category: object,
) -> str:
    """Why an offer is made, in words (the `rank_offers` reason)."""
    if retention:
        because = f" ({driver})" if isinstance(driver, str) and driver else ""
        return f"churn risk {band}{because}"
    if has_item:
        if rank != rank:  # NaN: the item is not among their suggestions
            return "on offer"
        return f"{name} is #{int(rank)} of their suggestions ({why})"
    if has_category:
        return f"{in_category} of their top {suggested} suggestions are in {category}"
    return "open to every customer in this channel"


def _in(pairs: pd.DataFrame, listed: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """True for rows of `pairs` whose `keys` appear in `listed`."""
    if listed.empty:
        return np.zeros(len(pairs), dtype=bool)
    index = pd.MultiIndex.from_frame(listed[keys].astype(object))
    return np.asarray(pd.MultiIndex.from_frame(pairs[keys].astype(object)).isin(index))
