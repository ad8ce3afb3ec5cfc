"""A person's history now, as the one-row matrix a recommender folds in, read from the
online state: a few rows per item they touched, never their events one by one.

Equal to `build_matrix(interactions(their events))` on the same item axis (tests hold
the two together), an event being theirs by its customer id, else its anonymous id (as
training resolves it), apart from events stamped after `now`, which the state counts.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from features import columns as c
from features.interactions import LAST_PURCHASE, LAST_TS, PURCHASES, WEIGHT
from features.matrix import InteractionMatrix, build_matrix
from service.people import Person
from service.storage import interests
from service.storage.codec import micros

#: Weights at or below this are no interaction (the cut `features.interactions` makes).
NO_WEIGHT = 1e-9


def history_now(
    conn: Connection, person: Person, items: np.ndarray, now: datetime
) -> InteractionMatrix | None:
    """The person's interactions with the items of `items` (a model's item axis) as of
    `now`; None when none of them is left."""
    at = micros(now)
    touched, places = interests.of_person(conn, person.customer_ids, person.anonymous_ids, at)
    axis = pd.Index(items)
    kept = [x for x in touched if x.weight > NO_WEIGHT and x.item_id in axis]
    if not kept:
        return None
    as_of = pd.Timestamp(now)
    last_buy = pd.array([x.last_purchase for x in kept], dtype="Int64")
    inter = pd.DataFrame(
        {
            c.PERSON_ID: person.person_id,
            c.ITEM_ID: [x.item_id for x in kept],
            WEIGHT: [x.weight for x in kept],
            LAST_TS: pd.to_datetime([x.last_ts for x in kept], unit="us", utc=True),
            PURCHASES: [x.units for x in kept],
            LAST_PURCHASE: pd.to_datetime(last_buy, unit="us", utc=True),
        }
    )
    stores = pd.DataFrame(
        {
            c.STORE_ID: list(places),
            c.PERSON_ID: person.person_id,
            c.ITEM_ID: None,
            WEIGHT: list(places.values()),
        }
    )
    return build_matrix(inter, as_of=as_of, items=items, stores=stores)
