"""Customers' histories as of a date, on a fitted model's item axis (for fold-in)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine

from features import columns as c
from features.interactions import interactions, item_trend, store_activity
from features.matrix import InteractionMatrix, build_matrix
from models.base import Recommender
from service.storage.reader import load_events


def history_as_of(
    engine: Engine, model: Recommender, customers: Sequence[str], until: datetime
) -> InteractionMatrix:
    """The stored events of `customers` before `until`, as a matrix the model can score.

    Reads every event before `until` once (item trends need them all), keeps the
    customers' own, and weighs them exactly as training does.
    """
    as_of = pd.Timestamp(until)
    events = load_events(engine, until=until)
    own = events[events[c.PERSON_ID].isin(set(customers))]
    return build_matrix(
        interactions(own, as_of=as_of),
        as_of=as_of,
        items=model.items_.ids,
        stores=store_activity(own, as_of=as_of),
        trend=item_trend(events, as_of=as_of),
    )
