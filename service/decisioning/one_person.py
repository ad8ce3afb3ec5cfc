"""The offer rules of `offers.eligible`, `offers.rank_offers` and `offers.best` for one
person, in plain Python: what a single ask (the API, the tablet) decides with.

The frame functions decide for a whole audience at once (the e-mail export); for one
person and a book of a few dozen offers their fixed costs (merges, groupbys) were most of
a first ask. The rules are the same and tests hold the two paths equal on random books,
persons and suggestions (`tests/service/test_offer_one_person.py`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from features import columns as c
from service.decisioning.offers import (
    BASE_TAKE_RATE,
    SAVE_RATE,
    UNKNOWN_BUY_RATE,
    Where,
    reason_for,
    text_or_none,
)
from service.experiments.take_rates import TakeRates


@dataclass(frozen=True)
class Terms:
    """What one person brings to the decision: their churn answer (None: no churn model)
    and what rules them out of some offers."""

    person_id: str
    churn: float | None
    band: str | None
    driver: str | None
    #: Items left out of their lists (bought lately): a product offer on one is moot.
    bought: frozenset[str] = frozenset()
    #: Offers they accepted or declined.
    answered: frozenset[str] = frozenset()
    #: An open complaint: no sales offer, only a retention one.
    held: bool = False
    tier: str | None = None


@dataclass(frozen=True)
class Suggested:
    """One of the person's suggestions, rank 1 first."""

    item_id: str
    category: str
    reason: str
    name: str


def eligible_one(
    book: Sequence[Mapping[Any, Any]],
    terms: Terms,
    where: Where,
    retention_bands: Collection[str] | None,
) -> list[Mapping[Any, Any]]:
    """The offers of `book` (rows of the offers table) the person may get in `where`:
    `offers.eligible` for one person."""
    tiered = any(tiers_of(offer) for offer in book)
    out = []
    for offer in book:
        item, category = text_or_none(offer[c.ITEM_ID]), text_or_none(offer[c.CATEGORY])
        retention = offer[c.KIND] == "retention"
        if item is not None and where.stock_items is not None and item not in where.stock_items:
            continue
        if (
            item is None
            and category is not None
            and where.stock_categories is not None
            and category not in where.stock_categories
        ):
            continue
        if retention and retention_bands is not None and terms.band not in retention_bands:
            continue
        listed = tiers_of(offer) if tiered else ""
        if listed and terms.tier not in {x.strip() for x in listed.split(",")}:
            continue
        if terms.held and not retention:
            continue
        if item is not None and item in terms.bought:
            continue
        if str(offer[c.OFFER_ID]) in terms.answered:
            continue
        out.append(offer)
    return out


def rank_one(
    pairs: Sequence[Mapping[Any, Any]],
    terms: Terms,
    suggested: Sequence[Suggested],
    rates: TakeRates | None = None,
) -> list[dict[str, Any]]:
    """The eligible offers with probability, expected value, reason, prior and source,
    best first (`offers.rank_offers` for one person): each a row of the offers table
    with the person's id and band before it."""
    churn = terms.churn if terms.churn is not None and not math.isnan(terms.churn) else None
    buys = UNKNOWN_BUY_RATE if churn is None else 1 - churn
    leaving = float(terms.band == "lapsed") if churn is None else churn
    inverse = [1.0 / rank for rank in range(1, len(suggested) + 1)]
    total = math.fsum(inverse)
    shares = [value / total for value in inverse]
    by_item = {s.item_id: (rank, shares[rank - 1], s) for rank, s in enumerate(suggested, 1)}
    by_category: dict[str, list[float]] = {}
    for s, share in zip(suggested, shares, strict=True):
        by_category.setdefault(s.category, []).append(share)
    rates = rates or TakeRates()
    ranked = []
    for offer in pairs:
        item, category = text_or_none(offer[c.ITEM_ID]), text_or_none(offer[c.CATEGORY])
        retention = offer[c.KIND] == "retention"
        has_item = item is not None
        has_category = category is not None and not has_item
        found = by_item.get(item) if item is not None else None
        in_category = by_category.get(category, []) if category is not None else []
        if has_item:
            share = found[1] if found else 0.0
        elif has_category:
            share = math.fsum(in_category)
        else:
            share = BASE_TAKE_RATE
        prior = leaving * SAVE_RATE if retention else buys * share
        probability, source = rates.correct_one(str(offer[c.OFFER_ID]), str(offer[c.KIND]), prior)
        if probability <= 0:
            continue
        reason = reason_for(
            retention, has_item, has_category, terms.band, terms.driver,
            float(found[0]) if found else math.nan,
            found[2].reason if found else None, found[2].name if found else None,
            len(in_category), len(suggested), category,
        )  # fmt: skip
        ranked.append(
            {
                c.PERSON_ID: terms.person_id,
                "band": terms.band,
                **offer,
                "probability": probability,
                "expected_value": probability * float(offer[c.VALUE]),
                "reason": reason,
                "prior": prior,
                "source": source,
            }
        )
    ranked.sort(key=lambda row: (-row["expected_value"], str(row[c.OFFER_ID])))
    return ranked


def best_one(ranked: Sequence[dict[str, Any]], most_likely: bool) -> dict[str, Any] | None:
    """The best of `rank_one`'s offers (`offers.best` for one person): the first, or with
    `most_likely` (an experiment arm's policy) the likeliest taken."""
    if not ranked:
        return None
    if not most_likely:
        return ranked[0]
    return min(ranked, key=lambda row: (-row["probability"], str(row[c.OFFER_ID])))


def tiers_of(offer: Mapping[Any, Any]) -> str:
    """The offer's tier list when it is kept for some loyalty tiers, else ""."""
    listed = offer.get(c.TIERS)
    return listed if isinstance(listed, str) and listed.strip() else ""
