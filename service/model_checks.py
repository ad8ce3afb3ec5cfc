"""Whether a model belongs to this store and answers sensibly: the checks a version must
pass before it is served (at load and reload) and before `omni promote` points an alias
at it. Each returns None when the model passes, else why not, in words.

- A recommender must know the store: most of its items are in the catalogue and a fair
  share of the people it learnt are people the store has seen.
- A churn model must tell customers apart: its scores vary with its features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Connection, select

from features import columns as c
from models.base import Recommender
from models.churn import ChurnModel
from service.storage.tables import activity, catalogue, customers

#: Below this share of its items in the catalogue (of its people known to the store), a
#: recommender was trained on another store.
MIN_ITEMS_IN_CATALOGUE = 0.5
MIN_PEOPLE_KNOWN = 0.2
#: People sampled for the check (one query, whatever the model's size).
PEOPLE_SAMPLE = 1_000


def recommender_misfit(model: Recommender, conn: Connection) -> str | None:
    """Why the recommender does not fit the store behind `conn` (None: it does). A store
    with no catalogue or no one in it yet (a first load) is not held against it."""
    known_items = set(conn.execute(select(catalogue.c[c.ITEM_ID])).scalars())
    if known_items:
        ids = model.items_.ids.astype(str)
        share = float(np.isin(ids, list(known_items)).mean()) if len(ids) else 0.0
        if share < MIN_ITEMS_IN_CATALOGUE:
            return (
                f"only {share:.0%} of its {len(ids):,} items are in the store's catalogue "
                f"(at least {MIN_ITEMS_IN_CATALOGUE:.0%} expected): trained on another store?"
            )
    people = model.users_.ids.astype(str)
    if len(people) == 0:
        return None
    rng = np.random.default_rng(0)
    sample = sorted(rng.choice(people, min(PEOPLE_SAMPLE, len(people)), replace=False).tolist())
    found = set(
        conn.execute(
            select(customers.c[c.CUSTOMER_ID]).where(customers.c[c.CUSTOMER_ID].in_(sample))
        )
        .scalars()
        .all()
    )
    found |= set(
        conn.execute(select(activity.c[c.ID_VALUE]).where(activity.c[c.ID_VALUE].in_(sample)))
        .scalars()
        .all()
    )
    anyone = conn.execute(select(activity.c[c.ID_VALUE]).limit(1)).first() is not None
    share = len(found) / len(sample)
    if anyone and share < MIN_PEOPLE_KNOWN:
        return (
            f"only {share:.0%} of the people it learnt (a sample of {len(sample):,}) are known "
            f"to the store (at least {MIN_PEOPLE_KNOWN:.0%} expected): trained on another store?"
        )
    return None


def churn_misfit(model: ChurnModel) -> str | None:
    """Why the churn model cannot tell customers apart (None: it can): every feature is
    moved in turn from a plain customer, and the scores must not all be the same."""
    n = len(model.features_)
    rows = np.zeros((2 * n + 1, n))
    for j in range(n):
        rows[1 + 2 * j, j] = 30.0
        rows[2 + 2 * j, j] = 365.0
    p = model.predict_proba(pd.DataFrame(rows, columns=model.features_))
    if not np.isfinite(p).all():
        return "it gives scores that are not numbers"
    if float(np.ptp(p)) < 1e-6:
        return f"it gives every customer the same score ({float(p[0]):.3f}), whatever they did"
    return None
