"""The customer x item matrices every recommender is fitted on, built from interactions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from features import columns as c
from features.interactions import LAST_PURCHASE, WEIGHT

#: Category given to items missing from the catalogue.
NO_CATEGORY = ""


@dataclass(frozen=True)
class InteractionMatrix:
    """Rows are customers (`users`), columns items (`items`), both sorted external ids.

    `weights` holds the decayed interaction weight; `purchase_age_days` holds, for items a
    customer bought, 1 + days between the last purchase and `as_of` (0 = never bought).
    `item_category` gives each column's category.
    """

    users: np.ndarray
    items: np.ndarray
    weights: csr_matrix
    purchase_age_days: csr_matrix
    item_category: np.ndarray
    as_of: pd.Timestamp

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.users), len(self.items))


def build_matrix(
    inter: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    catalogue: pd.DataFrame | None = None,
    items: np.ndarray | None = None,
) -> InteractionMatrix:
    """Matrices from `features.interactions.interactions` output.

    The item axis is `items` when given (e.g. the whole catalogue, so never-seen items can
    still be ranked), else every item in `inter` and `catalogue`. Interactions with items
    outside that axis are dropped. Categories come from `catalogue` (item_id, category).
    """
    if items is None:
        known = [inter[c.ITEM_ID]]
        if catalogue is not None:
            known.append(catalogue[c.ITEM_ID])
        items = np.unique(pd.concat(known).astype(str).to_numpy())
    item_index = pd.Index(items)
    users = np.unique(inter[c.PERSON_ID].astype(str).to_numpy())
    rows = pd.Index(users).get_indexer(pd.Index(inter[c.PERSON_ID].astype(str)))
    cols = item_index.get_indexer(pd.Index(inter[c.ITEM_ID].astype(str)))
    keep = cols >= 0
    rows, cols = rows[keep], cols[keep]
    shape = (len(users), len(items))
    weights = csr_matrix(
        (inter[WEIGHT].to_numpy(dtype=np.float32)[keep], (rows, cols)), shape=shape
    )
    bought = inter[LAST_PURCHASE].notna().to_numpy()[keep]
    age = (as_of - pd.to_datetime(inter[LAST_PURCHASE], utc=True)).dt.total_seconds() / 86_400
    age_days = 1.0 + age.to_numpy(dtype=float)[keep]
    purchase_age = csr_matrix(
        (age_days[bought].astype(np.float32), (rows[bought], cols[bought])), shape=shape
    )
    category = np.full(len(items), NO_CATEGORY, dtype=object)
    if catalogue is not None:
        cats = catalogue.set_index(catalogue[c.ITEM_ID].astype(str))[c.CATEGORY]
        found = item_index.get_indexer(cats.index)
        category[found[found >= 0]] = cats.to_numpy()[found >= 0]
    return InteractionMatrix(
        users=users,
        items=np.asarray(items, dtype=object),
        weights=weights,
        purchase_age_days=purchase_age,
        item_category=category,
        as_of=as_of,
    )
