"""How likely a buyer is to buy an item again, learned from repurchase intervals.

For every item and band of "days since the customer last bought it", the chance that they
buy it again within the next `horizon_days`: groceries come back within weeks, shoes
after months, a sofa never. Estimated from each customer's distinct purchase days per
item before `as_of`, counting only purchases watched long enough to know the answer
(right-censoring), and shrunk per item toward its category and per category toward the
whole catalogue, so that an item bought by a handful of customers borrows from its
neighbours. This is what the repeat policy (`models.base.Filters.repeat_policy`) reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features import columns as c
from features.event_log import EngineLog, frame_log

#: Lower edges, in days since the last purchase of the item, of the bands estimated.
AGE_EDGES = np.array([0, 3, 7, 14, 30, 60, 90, 180, 365], dtype=np.float32)
#: How many observations an item's (a category's) own estimate is worth against its
#: category's (the catalogue's): the strength of the shrinkage.
PRIOR_STRENGTH = 5.0
#: A bought item is left out while the chance of buying it again within the horizon is
#: below this (the repeat policy); above it, it is recommended like any other.
MIN_CHANCE = 0.05
_DAY_US = 86_400 * 1_000_000


@dataclass(frozen=True)
class RepeatChance:
    """Per item (rows, the model's item axis) and age band (columns, `edges`): the chance
    of buying the item again before `horizon_days` past the band's end, not having
    bought it again by the band's start."""

    chance: np.ndarray
    horizon_days: float
    edges: np.ndarray = field(default_factory=AGE_EDGES.copy)
    min_chance: float = MIN_CHANCE

    def at(self, cols: np.ndarray, age_days: np.ndarray) -> np.ndarray:
        """The chance for items `cols` last bought `age_days` ago (one per pair)."""
        band = np.searchsorted(self.edges, np.maximum(age_days, 0.0), side="right") - 1
        return np.asarray(self.chance[cols, band], dtype=np.float32)

    def unlikely(self, cols: np.ndarray, age_days: np.ndarray) -> np.ndarray:
        """True where the item bought `age_days` ago is unlikely to be bought again soon."""
        return self.at(cols, age_days) < self.min_chance


def repeat_chance(
    events: pd.DataFrame | EngineLog,
    *,
    as_of: pd.Timestamp,
    items: np.ndarray,
    item_category: np.ndarray,
    horizon_days: float,
    min_chance: float = MIN_CHANCE,
) -> RepeatChance | None:
    """The chance table from the purchases before `as_of` on the item axis `items`
    (`item_category` per item); None when no purchase was watched for a whole horizon.
    `events`: a frame of events, or an `EngineLog` (the purchase days come from its engine)."""
    if isinstance(events, pd.DataFrame):
        log, engine = frame_log(events)
        try:
            days = log.purchase_days(as_of)
        finally:
            engine.close()
    else:
        days = events.purchase_days(as_of)
    cols = pd.Index(items).get_indexer(pd.Index(days[c.ITEM_ID].astype(str)))
    keep = cols >= 0
    if not keep.any():
        return None
    people = pd.factorize(days[c.PERSON_ID].astype(str).to_numpy()[keep])[0]
    day = days["day"].to_numpy(dtype=np.int64)[keep]
    col = cols[keep].astype(np.int64)
    order = np.lexsort((day, col, people))  # each (person, item, day) is there once
    person, col, day = people[order], col[order], day[order]
    same = (person[1:] == person[:-1]) & (col[1:] == col[:-1])
    gap = np.full(len(day), np.inf)
    gap[:-1][same] = (day[1:] - day[:-1])[same]
    end_day = pd.Timestamp(as_of).value // 1_000 // _DAY_US
    watched = (end_day - day).astype(np.float64)
    n_items, bands = len(items), len(AGE_EDGES)
    tried = np.zeros((n_items, bands))
    again = np.zeros((n_items, bands))
    edges = AGE_EDGES.astype(np.float64)
    for b, edge in enumerate(edges):
        # Not bought again by the band's start, watched to a horizon past its end; bought
        # again by then. (Up to the band's end: an age late in the band is served too.)
        until = (edges[b + 1] if b + 1 < bands else edge) + horizon_days
        eligible = (gap >= edge) & (watched >= until)
        tried[:, b] = np.bincount(col[eligible], minlength=n_items)
        again[:, b] = np.bincount(col[eligible & (gap < until)], minlength=n_items)
    if tried.sum() == 0:
        return None
    chance = _shrunk(tried, again, np.asarray(item_category, dtype=object))
    return RepeatChance(chance.astype(np.float32), float(horizon_days), min_chance=min_chance)


def _shrunk(tried: np.ndarray, again: np.ndarray, category: np.ndarray) -> np.ndarray:
    """Item chances shrunk toward their category's, categories' toward the catalogue's;
    bands never observed take the last observed band's value."""
    overall = _fill_bands(again.sum(axis=0), tried.sum(axis=0))
    groups, group = np.unique(category.astype(str), return_inverse=True)
    cat_tried = np.zeros((len(groups), tried.shape[1]))
    cat_again = np.zeros_like(cat_tried)
    np.add.at(cat_tried, group, tried)
    np.add.at(cat_again, group, again)
    per_category = (cat_again + PRIOR_STRENGTH * overall) / (cat_tried + PRIOR_STRENGTH)
    prior = per_category[group]
    result: np.ndarray = (again + PRIOR_STRENGTH * prior) / (tried + PRIOR_STRENGTH)
    return result


def _fill_bands(again: np.ndarray, tried: np.ndarray) -> np.ndarray:
    """The catalogue's chance per band; a band with no observation carries the one before."""
    out = np.full(len(tried), np.nan)
    seen = tried > 0
    out[seen] = again[seen] / tried[seen]
    filled = pd.Series(out).ffill().bfill().to_numpy()
    return np.asarray(filled, dtype=np.float64)
