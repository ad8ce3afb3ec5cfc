"""A person's history now, as the one-row matrix a recommender folds in, read from the
online state: a few rows per item they touched, never their events one by one.

The row path of `features.matrix.build_matrix` for one person, built in numpy (pandas'
fixed costs were most of a fold-in). Tests hold it equal to `build_matrix` over
`features.interactions` of their events on the same item axis, an event being theirs
by its customer id, else its anonymous id (as training resolves it), apart from events
stamped after `now`, which the state counts.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from sqlalchemy import Connection

from features.matrix import NO_CATEGORY, InteractionMatrix
from models.ids import IdMapping
from service.people import Person
from service.storage import interests
from service.storage.codec import DAY, micros

#: Weights at or below this are no interaction (the cut `features.interactions` makes).
NO_WEIGHT = 1e-9


def history_now(
    conn: Connection, person: Person, items: IdMapping, now: datetime
) -> InteractionMatrix | None:
    """The person's interactions with the items of `items` (a model's item axis) as of
    `now`; None when none of them is left."""
    at = micros(now)
    touched, places = interests.of_person(conn, person.customer_ids, person.anonymous_ids, at)
    cols = items.positions(touched.item_ids, missing="skip")
    keep = (touched.weight > NO_WEIGHT) & (cols >= 0)
    if not keep.any():
        return None
    order = np.argsort(cols[keep], kind="stable")
    col = cols[keep][order]

    def kept(values: np.ndarray) -> np.ndarray:
        return values[keep][order]

    n = len(items)

    def row(values: np.ndarray, where: np.ndarray | None = None) -> csr_matrix:
        # One row, its columns sorted and each item once (`of_person` sums per item).
        data = values.astype(np.float32)
        at_cols = col if where is None else col[where]
        data = data if where is None else data[where]
        return csr_matrix((data, at_cols, np.array([0, len(at_cols)])), shape=(1, n))

    weights = row(kept(touched.weight))
    last_purchase = kept(touched.last_purchase)
    bought = last_purchase != interests.NO_PURCHASE
    purchase_age = row(1.0 + (at - np.where(bought, last_purchase, at)) / DAY, bought)
    purchase_count = row(np.maximum(kept(touched.units), 0.0))
    purchase_count.eliminate_zeros()
    seen_age = row(1.0 + (at - kept(touched.last_ts)) / DAY)
    stores = np.array(sorted(places), dtype=object)
    user_store = np.full(1, -1, dtype=np.int64)
    if len(stores):
        user_store[0] = int(np.argmax([places[s] for s in stores]))
    total = float(weights.sum())
    share = np.clip(np.array([sum(places.values()) / max(total, 1e-12)]), 0.0, 1.0)
    return InteractionMatrix(
        users=np.array([person.person_id], dtype=object),
        items=items.ids,
        weights=weights,
        purchase_age_days=purchase_age,
        item_category=np.full(n, NO_CATEGORY, dtype=object),
        as_of=pd.Timestamp(now),
        item_brand=np.full(n, NO_CATEGORY, dtype=object),
        item_price=np.full(n, np.nan),
        purchase_count=purchase_count,
        seen_age_days=seen_age,
        stores=stores if len(stores) else None,
        store_popularity=csr_matrix((len(stores), n), dtype=np.float32) if len(stores) else None,
        user_store=user_store if len(stores) else None,
        user_store_share=share,
    )
