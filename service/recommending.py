"""Recommendations for one person, now: precomputed, folded in, or cold start, with reasons.

Three paths, cheapest first:
- a known customer with nothing new since training: their precomputed top items
  (`serving.WarmTop`), filtered by stock, category and recent purchases;
- anyone with events the model has not seen (new events, a new customer, an anonymous
  visitor with views): their history now, read from the online state (a row per item
  they touched, never their events one by one), is folded in (no retraining);
- nobody to go on: the best sellers of the store (with `store_id`), else overall.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from sqlalchemy import Connection

from features import columns as c
from models.base import Filters, Recommender, repeat_left_out
from service.answer_cache import person_key
from service.erasure import was_erased
from service.fold_in import history_now
from service.people import Person, seen_of
from service.serving import Served
from service.shelf import Shelf
from service.storage import activity
from service.storage.codec import micros


@dataclass(frozen=True)
class Ask:
    """What the caller wants: how many, where, which category, and whether rebuys count."""

    k: int = 10
    store_id: str | None = None
    category: str | None = None
    include_purchased: bool = False


@dataclass(frozen=True)
class Suggestion:
    item_id: str
    name: str
    category: str
    score: float
    reason: str
    in_stock: int | None = None


@dataclass(frozen=True)
class Answer:
    items: list[Suggestion]
    #: True when the answer is not from the person's own history (unknown, anonymous).
    cold_start: bool
    #: "history", "history and recent activity", "recent activity", "store best sellers"
    #: or "best sellers".
    basis: str
    model_version: str | None


def recommend(
    served: Served,
    shelf: Shelf,
    conn: Connection,
    person: Person | None,
    ask: Ask,
    now: datetime,
) -> Answer:
    """The top `ask.k` items for `person` (None: a stranger) under `ask`'s filters.

    What the model learned of a person erased since it was trained is ignored: only
    their events stored now count (whoever asks: the API, the offers, the tablet).
    """
    model = served.need_recommender()
    allowed = _allowed(shelf, model, ask)
    filters = Filters.default_answer(
        pd.Timestamp(now), include_purchased=ask.include_purchased, allowed=allowed
    )
    sales = shelf.store_sales(ask.store_id, model) if ask.store_id else None
    if person is not None:
        use_training = not was_erased(conn, person)
        row = int(model.users_.positions([person.person_id], missing="skip")[0])
        row = row if use_training else -1
        # Someone the model never saw and who did nothing since has no usable history
        # (the model saw every item event before its cutoff): no need to read it.
        seen = fresh_seen(served, conn, person) if use_training else None
        if seen is not None or not use_training:
            folded = (
                fold(served, conn, person, now)
                if seen is None
                else served.folded.get_or_make(
                    person_key(served.recommender_version, person, seen),
                    lambda: fold(served, conn, person, now),
                )
            )
            if folded is not None:
                return _listed(
                    served, shelf, ask, filters, sales, (folded.positions, folded.scores),
                    folded.history, folded.purchase_age, folded.as_of, now,
                    lambda: _rescored(served, conn, person, now, ask.k, filters),
                    row < 0, "history and recent activity" if row >= 0 else "recent activity",
                )  # fmt: skip
        if row >= 0:
            # Purchase ages in the trained history count from its end, not from now.
            warm = served.warm
            best = (warm.positions[row], warm.scores[row]) if warm is not None else None
            return _listed(served, shelf, ask, filters, sales, best, Row.of(model.history_, row),
                           Row.of(model.purchase_age_, row), model.as_of_, now,
                           lambda: _ranked(model, row, ask.k, filters), False,
                           "history")  # fmt: skip
    return _cold(served, shelf, model, ask, allowed, sales)


def left_out(served: Served, bought: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """person_id, item_id of the rows of `bought` (each person's last purchase of an item:
    person_id, item_id, ts) that the repeat policy leaves out of a list for `now`: what
    suggestions and offers skip. The served recommender's policy; without one, the rule
    of a model with no learned chances."""
    age = pd.Timestamp(now) - pd.to_datetime(bought[c.TS], utc=True)
    days = age.dt.total_seconds().to_numpy(dtype=np.float64) / 86_400
    mask = _left_out(served, bought[c.ITEM_ID].astype(str).tolist(), days)
    return bought.loc[mask, [c.PERSON_ID, c.ITEM_ID]].reset_index(drop=True)


def left_out_items(served: Served, last: Mapping[str, int], now: datetime) -> frozenset[str]:
    """`left_out` for one person: the items of `last` (item id -> last purchase,
    microseconds) that the repeat policy leaves out of a list for `now`."""
    items = list(last)
    days = (micros(now) - np.fromiter(last.values(), np.int64, len(items))) / 1e6 / 86_400
    mask = _left_out(served, items, days)
    return frozenset(item for item, out in zip(items, mask.tolist(), strict=True) if out)


def _left_out(served: Served, items: list[str], days: np.ndarray) -> np.ndarray:
    model = served.recommender
    if model is None:
        return repeat_left_out(None, np.full(len(items), -1), days)
    return model.left_out(model.items_.positions(items, missing="skip"), days)


@dataclass(frozen=True)
class Row:
    """One person's row of a sparse items matrix (history weights, purchase ages): the
    columns they have a value in, sorted, and those values. Reading it costs a few
    microseconds where indexing a scipy matrix costs tens."""

    columns: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, matrix: csr_matrix, row: int) -> Row:
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        columns, values = matrix.indices[start:end], matrix.data[start:end]
        if len(columns) > 1 and not bool(np.all(columns[1:] > columns[:-1])):
            order = np.argsort(columns, kind="stable")
            columns, values = columns[order], values[order]
        return cls(columns, values)

    def at(self, positions: np.ndarray) -> np.ndarray:
        """The values at `positions` (0 where the row has none)."""
        if len(self.columns) == 0:
            return np.zeros(len(positions), dtype=self.values.dtype)
        where = np.minimum(np.searchsorted(self.columns, positions), len(self.columns) - 1)
        return np.where(self.columns[where] == positions, self.values[where], 0)


@dataclass(frozen=True)
class Folded:
    """A person's history now folded into the served recommender: their best items by
    score before any filter (what the batch's warm top is for someone it has seen), and
    the history rows their filters and reasons read, as of `as_of` (the moment folded).
    Only the person's own rows: what is kept per person stays small whatever the
    catalogue."""

    positions: np.ndarray
    scores: np.ndarray
    history: Row  # interaction weights
    purchase_age: Row  # 1 + days since the last purchase (0: never)
    as_of: pd.Timestamp


#: Items folded per person when no warm top says how many (the default `warm_top_n`).
FOLDED_TOP = 128


def fold(served: Served, conn: Connection, person: Person, now: datetime) -> Folded | None:
    """The person's history now (their online state) folded in; None when they have none
    on the model's items."""
    view = _view_now(served, conn, person, now)
    if view is None:
        return None
    model = served.need_recommender()
    n = served.warm.positions.shape[1] if served.warm is not None else FOLDED_TOP
    positions, scores = view.rank(np.array([0]), max(min(n, len(model.items_)), 1))
    history, purchase_age = Row.of(view.history_, 0), Row.of(view.purchase_age_, 0)
    return Folded(positions[0], scores[0], history, purchase_age, view.as_of_)


def _view_now(
    served: Served, conn: Connection, person: Person, now: datetime
) -> Recommender | None:
    """The served recommender seen through the person's history now (one customer)."""
    model = served.need_recommender()
    history = history_now(conn, person, model.items_, now)
    return None if history is None else model.recommend_view(history)


def _rescored(
    served: Served, conn: Connection, person: Person, now: datetime, k: int, filters: Filters
) -> tuple[np.ndarray, np.ndarray]:
    """The person's top `k` under `filters` from their history now, every item scored (when
    too few of the folded best pass the filters)."""
    view = _view_now(served, conn, person, now)
    if view is None:
        return np.array([], dtype=np.int64), np.array([], dtype=np.float32)
    return _ranked(view, 0, k, filters)


def _ranked(
    model: Recommender, row: int, k: int, filters: Filters
) -> tuple[np.ndarray, np.ndarray]:
    ranked, values = model.rank(np.array([row]), k, filters)
    keep = ranked[0] >= 0
    return ranked[0][keep], values[0][keep]


def fresh_seen(served: Served, conn: Connection, person: Person) -> activity.Seen | None:
    """The person's activity when they have events the served recommender has not seen:
    any at or after its cutoff, or any stored after its training read the log (late ones
    included), else None. Their answer then needs their events folded in (the slow path,
    once per new activity: see `answer_cache`). One read of the online state by its key,
    whatever the length of their history."""
    model = served.need_recommender()
    seen = seen_of(conn, person)
    if seen is None:
        return None
    if seen.last_ts >= micros(model.as_of_.to_pydatetime()):
        return seen
    read_at = served.recommender_read_at
    return seen if read_at is not None and seen.last_arrival > read_at else None


def _allowed(shelf: Shelf, model: Recommender, ask: Ask) -> np.ndarray | None:
    mask = None
    if ask.store_id is not None:
        mask = shelf.stock_mask(ask.store_id, model)
    if ask.category is not None:
        in_category = shelf.category_mask(ask.category, model)
        mask = in_category if mask is None else mask & in_category
    return mask


def _listed(
    served: Served,
    shelf: Shelf,
    ask: Ask,
    filters: Filters,
    sales: np.ndarray | None,
    top: tuple[np.ndarray, np.ndarray] | None,
    history: Row,
    purchase_age: Row,
    as_of: pd.Timestamp,
    now: datetime,
    rescore: Callable[[], tuple[np.ndarray, np.ndarray]],
    cold: bool,
    basis: str,
) -> Answer:
    """The answer from a person's best items before filters (`top`) and their history
    rows as of `as_of` (the training's end, or the moment they were folded in)."""
    model = served.need_recommender()
    positions, scores = _passing(model, purchase_age, as_of, top, ask.k, filters, rescore)
    since = max((pd.Timestamp(now) - as_of).total_seconds() / 86_400, 0)
    reasons = _reasons(served, shelf, positions, history, purchase_age, sales, since)
    return _answer(served, shelf, ask, positions, scores, reasons, cold, basis)


def _passing(
    model: Recommender,
    purchase_age: Row,
    as_of: pd.Timestamp,
    top: tuple[np.ndarray, np.ndarray] | None,
    k: int,
    filters: Filters,
    rescore: Callable[[], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """The first `k` of the customer's precomputed best items (`top`: positions, scores,
    unfiltered; `purchase_age`: their row, as of `as_of`) that pass the filters; scored
    afresh (`rescore`) when too few pass."""
    if top is not None:
        positions, scores = top
        ok = positions >= 0
        if filters.allowed is not None:
            ok &= filters.allowed[np.maximum(positions, 0)]
        if filters.repeat_policy:
            cols = np.maximum(positions, 0)
            age = purchase_age.at(cols)
            ok &= ~model.unlikely_again(cols, age, filters.at, as_of=as_of)
        if ok.sum() >= k or ok.sum() == len(model.items_):
            return positions[ok][:k].astype(np.int64), scores[ok][:k]
    return rescore()


def _cold(
    served: Served,
    shelf: Shelf,
    model: Recommender,
    ask: Ask,
    allowed: np.ndarray | None,
    sales: np.ndarray | None,
) -> Answer:
    in_store = sales is not None and bool(sales.any())
    base = sales if in_store and sales is not None else model.item_popularity_
    # Store sales first, then overall popularity to order the rest.
    scores = np.asarray(base, dtype=np.float64) + model.item_popularity_ / max(
        float(model.item_popularity_.max()), 1.0
    ) * (0.5 if in_store else 0.0)
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    k = min(ask.k, len(scores))
    top = np.argsort(-scores, kind="stable")[:k]
    top = top[np.isfinite(scores[top])]
    where = "in this store" if in_store else "right now"
    reasons = [
        f"popular {where}" if not ask.category else f"popular in {ask.category} {where}"
    ] * len(top)
    basis = "store best sellers" if in_store else "best sellers"
    return _answer(served, shelf, ask, top, scores[top], reasons, True, basis)


def _reasons(
    served: Served,
    shelf: Shelf,
    positions: np.ndarray,
    weights: Row,
    purchase_age: Row,
    sales: np.ndarray | None,
    days_since_history: float = 0.0,
) -> list[str]:
    """A short reason per item: bought before, often bought with one of theirs, or popular.

    `days_since_history` is how old the history is (purchase ages count from its end).
    """
    if len(positions) == 0:
        return []
    model = served.need_recommender()
    catalogue = shelf.items()
    age = purchase_age.at(positions)
    with_item: list[str | None] = [None] * len(positions)
    mine = weights.columns
    if len(mine) and served.neighbours is not None:
        near = served.neighbours[positions]
        # Theirs by position; one slot more, never theirs, where a -1 (no neighbour) lands.
        theirs = np.zeros(len(model.items_) + 1, dtype=bool)
        theirs[mine] = True
        hit = theirs[near]
        first = hit.argmax(axis=1)
        for found in np.flatnonzero(hit.any(axis=1)).tolist():
            item_id = str(model.items_.ids[near[found, first[found]]])
            known = catalogue.get(item_id)
            with_item[found] = known.name if known else item_id
    out = []
    for j, pos in enumerate(positions.tolist()):
        if age[j] > 0:
            days = round(float(age[j]) - 1 + days_since_history)
            out.append("you bought this today" if days == 0 else f"you bought this {days} days ago")
        elif with_item[j] is not None:
            out.append(f"bought together with {with_item[j]}")
        elif sales is not None and sales[pos] > 0:
            out.append("popular in this store")
        else:
            out.append(f"popular in {model.item_category_[pos]}")
    return out


def _answer(
    served: Served,
    shelf: Shelf,
    ask: Ask,
    positions: np.ndarray,
    scores: np.ndarray | pd.Series,
    reasons: list[str],
    cold: bool,
    basis: str,
) -> Answer:
    model = served.need_recommender()
    catalogue = shelf.items()
    stock = shelf.stock(ask.store_id) if ask.store_id else None
    items = []
    for pos, score, reason in zip(positions, np.asarray(scores, dtype=float), reasons, strict=True):
        item_id = str(model.items_.ids[pos])
        known = catalogue.get(item_id)
        items.append(
            Suggestion(
                item_id=item_id,
                name=known.name if known else item_id,
                category=known.category if known else str(model.item_category_[pos]),
                score=round(float(score), 6),
                reason=reason,
                in_stock=None if stock is None else stock.get(item_id, 0),
            )
        )
    return Answer(items, cold, basis, served.recommender_version)


def similar(
    served: Served, shelf: Shelf, item_id: str, k: int, store_id: str | None
) -> list[Suggestion] | None:
    """Items most often chosen by the customers who chose `item_id` (in stock in
    `store_id` when given), best first; None when the model does not know the item."""
    model = served.need_recommender()
    col = int(model.items_.positions([item_id], missing="skip")[0])
    x, norms = served.history_by_item, served.item_norms
    if col < 0 or x is None or norms is None:
        return None
    overlap = np.asarray((x.T @ x[:, col]).todense()).ravel()
    sims = overlap / np.maximum(norms * norms[col], 1e-12)
    sims[col] = 0
    if store_id is not None:
        sims = np.where(shelf.stock_mask(store_id, model), sims, 0)
    top = np.argsort(-sims)[:k]
    top = top[sims[top] > 0]
    reasons = ["chosen by the same customers"] * len(top)
    ask = Ask(k=k, store_id=store_id)
    return _answer(served, shelf, ask, top, sims[top], reasons, False, "similar").items
