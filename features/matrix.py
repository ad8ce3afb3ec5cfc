"""The customer x item matrices every recommender is fitted on, built from interactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from features import columns as c
from features import progress
from features.event_log import EngineLog, frame_log
from features.interactions import (
    LAST_PURCHASE,
    LAST_TS,
    PURCHASES,
    WEIGHT,
    InteractionWeights,
)
from features.repurchase import RepeatChance, repeat_chance

#: Category given to items missing from the catalogue.
NO_CATEGORY = ""


@dataclass(frozen=True)
class InteractionMatrix:
    """Rows are customers (`users`), columns items (`items`), both sorted external ids.

    `weights` holds the decayed interaction weight; `purchase_age_days` holds, for items a
    customer bought, 1 + days between the last purchase and `as_of` (0 = never bought).
    `item_category`, `item_brand` and `item_price` describe each column (from the
    catalogue; "" or NaN when unknown). `holdouts`, when present, are the same history cut
    one, two, ... windows earlier, each with what was bought in the window after its cut:
    what a model that learns
    to rank (the two-stage model) is trained on without looking past `as_of`.
    """

    users: np.ndarray
    items: np.ndarray
    weights: csr_matrix
    purchase_age_days: csr_matrix
    item_category: np.ndarray
    as_of: pd.Timestamp
    item_brand: np.ndarray | None = None
    item_price: np.ndarray | None = None
    #: Net units bought per customer and item (purchases less returns, at least 0).
    purchase_count: csr_matrix | None = None
    #: 1 + days since the customer last interacted with the item (0 = never).
    seen_age_days: csr_matrix | None = None
    #: Store ids; per store, decayed item weights (stores x items); per customer, the
    #: position of the store they use most (-1: none).
    stores: np.ndarray | None = None
    store_popularity: csr_matrix | None = None
    user_store: np.ndarray | None = None
    #: Per customer, the share of their weight that happened with a store (in store,
    #: click & collect); per item, recent sales against its usual pace (1 = usual).
    user_store_share: np.ndarray | None = None
    item_trend: np.ndarray | None = None
    #: Per item and age band, the chance of buying it again (the repeat policy's input).
    repeat: RepeatChance | None = None
    holdouts: tuple[Holdout, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.users), len(self.items))


@dataclass(frozen=True)
class Holdout:
    """An earlier cut of the history and the purchases in the window after it."""

    early: InteractionMatrix
    #: (early.users x items) purchases in [as_of - holdout_days, as_of).
    labels: csr_matrix


def build_matrix(
    inter: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    catalogue: pd.DataFrame | None = None,
    items: np.ndarray | None = None,
    stores: pd.DataFrame | None = None,
    trend: pd.Series | None = None,
) -> InteractionMatrix:
    """Matrices from `features.interactions.interactions` output.

    The item axis is `items` when given (e.g. the whole catalogue, so never-seen items can
    still be ranked), else every item in `inter` and `catalogue`. Interactions with items
    outside that axis are dropped. Categories come from `catalogue` (item_id, category).
    `stores` is `features.interactions.store_activity` output, for store popularity and
    each customer's store share; `trend` is `features.interactions.item_trend` output.
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
    units = np.maximum(inter[PURCHASES].to_numpy(dtype=np.float32)[keep], 0)
    purchase_count = csr_matrix((units, (rows, cols)), shape=shape)
    purchase_count.eliminate_zeros()
    seen = (as_of - pd.to_datetime(inter[LAST_TS], utc=True)).dt.total_seconds() / 86_400
    seen_age = csr_matrix(
        ((1.0 + seen.to_numpy(dtype=float)[keep]).astype(np.float32), (rows, cols)), shape=shape
    )
    store_ids, store_popularity, user_store = _store_fields(stores, users, item_index)
    in_store = np.zeros(len(users))
    if stores is not None and not stores.empty:
        per_person = stores.dropna(subset=[c.PERSON_ID]).groupby(c.PERSON_ID)[WEIGHT].sum()
        in_store = per_person.reindex(users).fillna(0.0).to_numpy(dtype=float)
    total = np.asarray(weights.sum(axis=1)).ravel()
    store_share = np.clip(in_store / np.maximum(total, 1e-12), 0.0, 1.0)
    item_trend_values = (
        trend.reindex(item_index).fillna(1.0).to_numpy(dtype=float) if trend is not None else None
    )
    return InteractionMatrix(
        users=users,
        items=np.asarray(items, dtype=object),
        weights=weights,
        purchase_age_days=purchase_age,
        item_category=_attribute(catalogue, item_index, c.CATEGORY, NO_CATEGORY),
        as_of=as_of,
        item_brand=_attribute(catalogue, item_index, c.BRAND, NO_CATEGORY),
        item_price=_attribute(catalogue, item_index, c.PRICE, np.nan).astype(np.float64),
        purchase_count=purchase_count,
        seen_age_days=seen_age,
        stores=store_ids,
        store_popularity=store_popularity,
        user_store=user_store,
        user_store_share=store_share,
        item_trend=item_trend_values,
    )


def _store_fields(
    activity: pd.DataFrame | None, users: np.ndarray, item_index: pd.Index
) -> tuple[np.ndarray | None, csr_matrix | None, np.ndarray | None]:
    """Store ids, store x item popularity, each customer's main store (see InteractionMatrix)."""
    if activity is None or activity.empty:
        return None, None, None
    store_ids = np.unique(activity[c.STORE_ID].astype(str).to_numpy())
    rows = pd.Index(store_ids).get_indexer(pd.Index(activity[c.STORE_ID].astype(str)))
    cols = item_index.get_indexer(pd.Index(activity[c.ITEM_ID].astype(str)))
    keep = cols >= 0
    popularity = csr_matrix(
        (activity[WEIGHT].to_numpy(dtype=np.float32)[keep], (rows[keep], cols[keep])),
        shape=(len(store_ids), len(item_index)),
    )
    per_person = activity.dropna(subset=[c.PERSON_ID])
    per_person = per_person.groupby([c.PERSON_ID, c.STORE_ID], as_index=False).agg({WEIGHT: "sum"})
    main = per_person.sort_values(WEIGHT, ascending=False).drop_duplicates(c.PERSON_ID)
    user_store = np.full(len(users), -1, dtype=np.int64)
    at = pd.Index(users).get_indexer(pd.Index(main[c.PERSON_ID].astype(str)))
    user_store[at[at >= 0]] = pd.Index(store_ids).get_indexer(
        pd.Index(main[c.STORE_ID].astype(str))
    )[at >= 0]
    return store_ids.astype(object), popularity, user_store


def _attribute(
    catalogue: pd.DataFrame | None, item_index: pd.Index, column: str, missing: object
) -> np.ndarray:
    """One catalogue column on the item axis (`missing` where unknown)."""
    out = np.full(len(item_index), missing, dtype=object)
    if catalogue is None or column not in catalogue.columns:
        return out
    values = catalogue.set_index(catalogue[c.ITEM_ID].astype(str))[column]
    found = item_index.get_indexer(values.index)
    present = (found >= 0) & values.notna().to_numpy()
    out[found[present]] = values.to_numpy()[present]
    return out


def with_holdout(
    events: pd.DataFrame | EngineLog,
    *,
    as_of: pd.Timestamp,
    holdout_days: float,
    windows: int = 1,
    catalogue: pd.DataFrame | None = None,
    weights: InteractionWeights | None = None,
) -> InteractionMatrix:
    """The training matrix at `as_of`, carrying `windows` consecutive holdouts.

    Holdout i is the history cut i x `holdout_days` before `as_of`, labelled with the
    purchases of the following `holdout_days`. All share the item axis; nothing at or
    after `as_of` is read. Each matrix carries its repeat chances over a horizon of
    `holdout_days` (the window a list is judged on). `events`: a frame of events, or an
    `EngineLog` (the aggregates are then computed by its engine).
    """
    report = progress.current()
    report.start(f"building matrices at {as_of:%Y-%m-%d}", windows + 1)
    with reading(events) as log:
        full = matrix_at(log, as_of, catalogue, weights, horizon_days=holdout_days)
        report.advance(1)
        holdouts = []
        for i in range(1, windows + 1):
            cut = as_of - pd.Timedelta(days=i * holdout_days)
            end = cut + pd.Timedelta(days=holdout_days)
            # What was known at the cut (late events left out); the labels are what happened.
            early = matrix_at(
                log.at_cutoff(cut),
                cut,
                catalogue,
                weights,
                items=full.items,
                horizon_days=holdout_days,
            )
            holdouts.append(Holdout(early, purchased(log, early, cut, end)))
            report.advance(1)
    return replace(full, holdouts=tuple(holdouts))


@contextmanager
def reading(events: pd.DataFrame | EngineLog) -> Iterator[EngineLog]:
    """`events` as an `EngineLog`: as it is, or a frame on an embedded engine of its own
    for the time of the block."""
    if isinstance(events, EngineLog):
        yield events
        return
    log, engine = frame_log(events)
    try:
        yield log
    finally:
        engine.close()


def matrix_at(
    events: pd.DataFrame | EngineLog,
    as_of: pd.Timestamp,
    catalogue: pd.DataFrame | None,
    weights: InteractionWeights | None,
    items: np.ndarray | None = None,
    *,
    horizon_days: float,
) -> InteractionMatrix:
    """The training matrix at `as_of` (no holdouts), with repeat chances over
    `horizon_days`, on the item axis `items` when given."""
    with reading(events) as log:
        matrix = build_matrix(
            log.interactions(as_of, weights),
            as_of=as_of,
            catalogue=catalogue,
            items=items,
            stores=log.store_activity(as_of, weights),
            trend=log.item_trend(as_of),
        )
        chance = repeat_chance(
            log,
            as_of=as_of,
            items=matrix.items,
            item_category=matrix.item_category,
            horizon_days=horizon_days,
        )
    return replace(matrix, repeat=chance)


def purchased(
    events: EngineLog, early: InteractionMatrix, start: pd.Timestamp, end: pd.Timestamp
) -> csr_matrix:
    """Binary (early.users x items): what each customer bought in [start, end)."""
    window = events.purchases(start, end)
    rows = pd.Index(early.users).get_indexer(pd.Index(window[c.PERSON_ID].astype(str)))
    cols = pd.Index(early.items).get_indexer(pd.Index(window[c.ITEM_ID].astype(str)))
    keep = (rows >= 0) & (cols >= 0)
    labels = csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=early.shape)
    labels.data[:] = 1.0
    return labels
