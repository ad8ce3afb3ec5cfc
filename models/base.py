"""The contract every recommender honours (after implicit's `RecommenderBase`).

A model implements `_fit(data)`, `_scores(rows)` (dense scores for some customers over
the whole catalogue) and `_state()` / `_restore(state)` for its learned arrays. This base
does the rest once for all: external ids, filters, top-k, similar items, and saving to
inspectable files (`params.json`, `state.npz` loaded with `allow_pickle=False`).
"""

from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from features.matrix import InteractionMatrix
from features.repurchase import AGE_EDGES, RepeatChance
from models.ids import IdMapping, UnknownCustomer, UnknownItem
from models.params import HyperParams

#: Scores held at once (customers x catalogue): bounds the dense score block's memory.
SCORE_BLOCK = 32_000_000
#: For a model fitted without repeat chances (before they existed, or on a bare matrix),
#: the repeat policy leaves out what was bought in this many days.
LEGACY_REPEAT_DAYS = 30.0
REGISTRY: dict[str, type[Recommender]] = {}


class ModelNotFitted(RuntimeError):
    """`recommend` or `save` called before `fit`."""


@dataclass(frozen=True)
class Filters:
    """What a recommendation must leave out (every model honours these)."""

    #: The repeat policy: leave out items the customer bought and is unlikely to buy again
    #: within the horizon, given the days since they bought it (the model's repeat chances,
    #: learned per item from repurchase intervals; see `features.repurchase`).
    repeat_policy: bool = False
    #: When the list is for: purchase ages count up to it (None: the model's `as_of`).
    at: pd.Timestamp | None = None
    #: Only these items (e.g. in stock in this store); None: the whole catalogue.
    only_items: Collection[str] | None = None
    #: Leave out items of these categories.
    exclude_categories: Collection[str] = ()
    #: Leave out every item the customer interacted with before (for "new to you").
    exclude_seen: bool = False
    #: Only items where this mask (over the model's items, in order) is True; combines
    #: with the rest. For callers that keep a mask per store rather than a list of ids.
    allowed: np.ndarray | None = None

    @classmethod
    def default_answer(
        cls, at: pd.Timestamp, *, include_purchased: bool = False, allowed: np.ndarray | None = None
    ) -> Filters:
        """The filters of the default answer for a list at `at`: what the API, the tablet,
        offers and exports serve and the offline evaluation scores (the repeat policy,
        unless `include_purchased`), within `allowed`."""
        return cls(repeat_policy=not include_purchased, at=pd.Timestamp(at), allowed=allowed)


class Recommender(HyperParams, ABC):
    """Fit on an `InteractionMatrix`; recommend with external ids; save and load safely."""

    name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            REGISTRY[cls.name] = cls

    # -- what a model implements -------------------------------------------------------
    @abstractmethod
    def _fit(self, data: InteractionMatrix) -> None: ...

    @abstractmethod
    def _scores(self, rows: np.ndarray) -> np.ndarray:
        """Scores (len(rows) x n_items, float32) for customer positions `rows`."""

    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        return None

    def _keep_users(self, keep: np.ndarray) -> None:
        """Keep only the per-customer learned rows where `keep` (a mask over the fitted
        customers) is True (see `without`). Models whose only per-customer state is the
        history need nothing; models with per-customer factors or features override this."""
        return None

    # -- the contract --------------------------------------------------------------------
    def fit(self, data: InteractionMatrix) -> Self:
        """Learn from `data`; returns self."""
        self.users_ = IdMapping(data.users, UnknownCustomer)
        self.items_ = IdMapping(data.items, UnknownItem)
        self.item_category_ = np.asarray(data.item_category, dtype=object)
        self.history_ = data.weights.tocsr().astype(np.float32)
        self.purchase_age_ = data.purchase_age_days.tocsr().astype(np.float32)
        self.as_of_ = data.as_of
        self.item_popularity_ = _popularity(self.history_)
        self.repeat_ = data.repeat
        self._fit(data)
        return self

    def recommend(
        self, customers: Sequence[str], k: int = 10, filters: Filters | None = None
    ) -> pd.DataFrame:
        """Top `k` items for each customer: columns customer_id, rank (1..k), item_id, score.

        Raises `UnknownCustomer` naming every customer the model was not fitted on,
        `UnknownItem` for an unknown id in `filters.only_items`.
        """
        self._check_fitted()
        rows = self.users_.positions(customers)
        positions, scores = self.rank(rows, k, filters)
        keep = positions >= 0
        return pd.DataFrame(
            {
                "customer_id": np.repeat(self.users_.ids[rows], k).reshape(-1, k)[keep],
                "rank": np.cumsum(keep, axis=1)[keep],
                "item_id": self.items_.ids[positions[keep]],
                "score": scores[keep],
            }
        )

    def recommend_history(
        self, history: InteractionMatrix, k: int = 10, filters: Filters | None = None
    ) -> pd.DataFrame:
        """Recommendations for the customers of `history`, scored from that history instead
        of the one the model was fitted on: what they did since training changes the
        answer, without retraining (fold-in). Customers need not be known to the model.

        `history` must be built on the model's item axis (`items=model.items_.ids`);
        raises ValueError otherwise.
        """
        return self._view(history).recommend(list(history.users), k, filters)

    def recommend_view(self, history: InteractionMatrix) -> Self:
        """The fitted model seen through `history` (its customers, their rows now): what
        `recommend_history` ranks with, for callers that rank many times (evaluation).
        Keeps the model's repeat chances. Raises ValueError off the model's item axis."""
        return self._view(history)

    def _view(self, history: InteractionMatrix) -> Self:
        """A shallow copy of the fitted model whose customers are those of `history`.

        Raises ValueError when `history` is not on the model's item axis.
        """
        self._check_fitted()
        same = history.items is self.items_.ids  # built on this model's axis (a fold-in)
        if not same and (
            len(history.items) != len(self.items_)
            or not np.array_equal(np.asarray(history.items, dtype=object), self.items_.ids)
        ):
            raise ValueError("history must be built on the model's items (items=model.items_.ids)")
        view = copy.copy(self)
        view.users_ = IdMapping(history.users, UnknownCustomer)
        view.history_ = history.weights.tocsr().astype(np.float32)
        view.purchase_age_ = history.purchase_age_days.tocsr().astype(np.float32)
        view.as_of_ = history.as_of
        view._refresh(history)
        return view

    def _refresh(self, history: InteractionMatrix) -> None:
        """Recompute per-customer learned state for a fresh `history` (see `recommend_history`).

        Models whose scores come from the history rows alone need nothing; models with
        per-customer factors or features override this.
        """
        return None

    def without(self, customers: Collection[str]) -> Self:
        """A copy of the fitted model that no longer holds these customers (erasure): their
        ids, their history rows and every per-customer learned row are gone, and what is
        summed over customers (popularity) is summed again without them. What it learned
        about items stays; no retraining. Ids the model does not know are ignored; with
        none it knows, the model itself is returned."""
        self._check_fitted()
        found = self.users_.positions(list(customers), missing="skip")
        keep = np.ones(len(self.users_), dtype=bool)
        keep[found[found >= 0]] = False
        if keep.all():
            return self
        scrubbed = copy.copy(self)
        scrubbed._drop_rows(keep)
        return scrubbed

    def _drop_rows(self, keep: np.ndarray) -> None:
        """In place, on a copy: keep the customers where `keep`, and their rows."""
        self.users_ = IdMapping(self.users_.ids[keep], UnknownCustomer)
        self.history_ = self.history_[keep]
        self.purchase_age_ = self.purchase_age_[keep]
        self.item_popularity_ = _popularity(self.history_)
        self._keep_users(keep)

    def recommend_or_popular(
        self,
        customers: Sequence[str],
        k: int = 10,
        filters: Filters | None = None,
        history: InteractionMatrix | None = None,
    ) -> pd.DataFrame:
        """Like `recommend`, but nobody gets an error: customers the model cannot score get
        the most popular allowed items (a cold-start answer). With `history`, customers in
        it are scored from it (fold-in, as `recommend_history`) and everyone else is cold.
        Rows follow the order of `customers`.
        """
        self._check_fitted()
        source = self if history is None else self._view(history)
        rows = source.users_.positions(customers, missing="skip")
        known = source.recommend(
            [c for c, r in zip(customers, rows, strict=True) if r >= 0], k, filters
        )
        strangers = [c for c, r in zip(customers, rows, strict=True) if r < 0]
        if not strangers:
            return known
        popularity = self.item_popularity_.copy()
        popularity[~self._allowed(filters or Filters())] = -np.inf
        top, scores = _top_k(popularity[None, :], min(k, len(popularity)))
        keep = np.isfinite(scores[0])
        cold = pd.DataFrame(
            {
                "customer_id": np.repeat(strangers, int(keep.sum())),
                "rank": np.tile(np.arange(1, int(keep.sum()) + 1), len(strangers)),
                "item_id": np.tile(self.items_.ids[top[0][keep]], len(strangers)),
                "score": np.tile(scores[0][keep], len(strangers)),
            }
        )
        order = {c: i for i, c in enumerate(customers)}
        both = pd.concat([known, cold], ignore_index=True)
        both = both.sort_values(
            ["customer_id", "rank"], key=lambda s: s.map(order) if s.name == "customer_id" else s
        )
        return both.reset_index(drop=True)

    def rank(
        self, rows: np.ndarray, k: int, filters: Filters | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` item positions and scores for customer positions `rows`, best first.

        Both arrays are (len(rows) x k); a customer with fewer than k allowed items has
        position -1 and score -inf in the rest. Customers are scored in batches of at most
        `SCORE_BLOCK` scores.
        """
        return self.rank_each(rows, k, [filters or Filters()])[0]

    def rank_each(
        self, rows: np.ndarray, k: int, each: Sequence[Filters]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """`rank` under each of several filters, the customers scored once for all of them
        (what an evaluation of several answers needs)."""
        self._check_fitted()
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        allowed = [self._allowed(filters) for filters in each]
        k_eff = min(k, len(self.items_))
        out = [
            (
                np.full((len(rows), k), -1, dtype=np.int64),
                np.full((len(rows), k), -np.inf, dtype=np.float32),
            )
            for _ in each
        ]
        step = block_rows(len(self.items_))
        for start in range(0, len(rows), step):
            batch = rows[start : start + step]
            raw = np.asarray(self._scores(batch), dtype=np.float32)
            for i, (filters, mask) in enumerate(zip(each, allowed, strict=True)):
                scores = raw if i == len(each) - 1 else raw.copy()
                scores[:, ~mask] = -np.inf
                self._mask_personal(scores, batch, filters)
                top, top_scores = _top_k(scores, k_eff)
                positions, values = out[i]
                positions[start : start + len(batch), :k_eff] = np.where(
                    np.isfinite(top_scores), top, -1
                )
                values[start : start + len(batch), :k_eff] = top_scores
        return out

    def similar_items(self, item: str, k: int = 10) -> pd.DataFrame:
        """Items most often chosen by the same customers (cosine over the history)."""
        self._check_fitted()
        col = self.items_.positions([item])[0]
        x = self.history_.tocsc()
        target = x[:, col]
        overlap = np.asarray((x.T @ target).todense()).ravel()
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
        sims = overlap / np.maximum(norms * norms[col], 1e-12)
        sims[col] = -np.inf
        order = np.argsort(-sims)[:k]
        order = order[np.isfinite(sims[order]) & (sims[order] > 0)]
        return pd.DataFrame({"item_id": self.items_.ids[order], "score": sims[order]})

    def save(self, path: Path) -> Path:
        """Write `params.json` and `state.npz` into the folder `path`; returns `path`."""
        self._check_fitted()
        path.mkdir(parents=True, exist_ok=True)
        meta = {"model": self.name, "params": self.get_params(), "as_of": self.as_of_.isoformat()}
        (path / "params.json").write_text(json.dumps(meta, indent=2))
        arrays = {
            "users": self.users_.ids.astype(str),
            "items": self.items_.ids.astype(str),
            "item_category": self.item_category_.astype(str),
            **csr_parts("history", self.history_),
            **csr_parts("purchase_age", self.purchase_age_),
            **{f"model_{key}": value for key, value in self._state().items()},
            **_repeat_parts(self.repeat_),
        }
        with (path / "state.npz").open("wb") as handle:
            np.savez_compressed(handle, allow_pickle=False, **arrays)
        return path

    @classmethod
    def load(cls, path: Path) -> Recommender:
        """A model saved by `save`, of whatever registered class it was."""
        meta = json.loads((path / "params.json").read_text())
        model_cls = REGISTRY[meta["model"]]
        if cls is not Recommender and not issubclass(model_cls, cls):
            raise TypeError(f"{path} holds a {meta['model']} model, not a {cls.name}")
        model = model_cls(**meta["params"])
        with np.load(path / "state.npz", allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        model.users_ = IdMapping(arrays["users"].astype(object), UnknownCustomer)
        model.items_ = IdMapping(arrays["items"].astype(object), UnknownItem)
        model.item_category_ = arrays["item_category"].astype(object)
        model.history_ = csr_from(arrays, "history")
        model.purchase_age_ = csr_from(arrays, "purchase_age")
        model.item_popularity_ = _popularity(model.history_)
        model.as_of_ = pd.Timestamp(meta["as_of"])
        model.repeat_ = _repeat_from(arrays)
        prefix = "model_"
        model._restore({k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)})
        return model

    # -- shared machinery ----------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "items_"):
            raise ModelNotFitted(f"{type(self).__name__} is not fitted yet")

    def _allowed(self, filters: Filters) -> np.ndarray:
        allowed = np.ones(len(self.items_), dtype=bool)
        if filters.only_items is not None:
            allowed[:] = False
            allowed[self.items_.positions(list(filters.only_items))] = True
        if filters.exclude_categories:
            allowed &= ~np.isin(self.item_category_, list(filters.exclude_categories))
        if filters.allowed is not None:
            if filters.allowed.shape != allowed.shape:
                raise ValueError(f"the allowed mask must have one entry per item ({len(allowed)})")
            allowed &= filters.allowed
        return allowed

    def _mask_personal(self, scores: np.ndarray, rows: np.ndarray, filters: Filters) -> None:
        if filters.exclude_seen:
            seen = self.history_[rows]
            scores[seen.nonzero()] = -np.inf
        if filters.repeat_policy:
            age = self.purchase_age_[rows].tocoo()
            hidden = self.unlikely_again(age.col, age.data, filters.at)
            scores[age.row[hidden], age.col[hidden]] = -np.inf

    def unlikely_again(
        self,
        cols: np.ndarray,
        purchase_age: np.ndarray,
        at: pd.Timestamp | None = None,
        *,
        as_of: pd.Timestamp | None = None,
    ) -> np.ndarray:
        """The repeat policy for items `cols` with `purchase_age` (as stored: 1 + days
        from the last purchase to `as_of`, by default the model's; 0 = never bought) on a
        list for `at`: True where the item is left out."""
        bought = np.asarray(purchase_age) > 0
        if not bought.any():  # nothing of these bought: nothing left out
            return bought
        since_of = self.as_of_ if as_of is None else pd.Timestamp(as_of)
        since = 0.0 if at is None else (pd.Timestamp(at) - since_of).total_seconds() / 86_400
        days = np.asarray(purchase_age, dtype=np.float64) - 1.0 + max(since, 0.0)
        hidden: np.ndarray = bought & self.left_out(np.asarray(cols, dtype=np.int64), days)
        return hidden

    def left_out(self, cols: np.ndarray, days: np.ndarray) -> np.ndarray:
        """The repeat policy with this model's chances (see `repeat_left_out`)."""
        return repeat_left_out(self.repeat_, cols, days)


def repeat_left_out(repeat: RepeatChance | None, cols: np.ndarray, days: np.ndarray) -> np.ndarray:
    """The repeat policy: True where item `cols` (positions on the chances' item axis;
    -1 = not on it), last bought `days` ago, is left out. Without learned chances (an
    item off the axis, a model saved before them, no model at all), what was bought in
    the last `LEGACY_REPEAT_DAYS` days is."""
    days = np.asarray(days, dtype=np.float64)
    out: np.ndarray = days <= LEGACY_REPEAT_DAYS
    known = np.asarray(cols) >= 0
    if repeat is not None and known.any():
        out[known] = repeat.unlikely(np.asarray(cols)[known], days[known])
    return out


def _repeat_parts(repeat: RepeatChance | None) -> dict[str, np.ndarray]:
    if repeat is None:
        return {}
    return {
        "repeat_chance": repeat.chance,
        "repeat_edges": repeat.edges,
        "repeat_settings": np.array([repeat.horizon_days, repeat.min_chance]),
    }


def _repeat_from(arrays: dict[str, np.ndarray]) -> RepeatChance | None:
    if "repeat_chance" not in arrays:
        return None  # saved before repeat chances: the legacy rule applies
    horizon, min_chance = (float(v) for v in arrays["repeat_settings"])
    edges = arrays.get("repeat_edges", AGE_EDGES)
    return RepeatChance(arrays["repeat_chance"], horizon, edges, min_chance)


def block_rows(n_items: int) -> int:
    """Customers scored at once over `n_items` items: dense blocks stay within `SCORE_BLOCK`
    scores, whatever the number of customers."""
    return max(1, min(1024, SCORE_BLOCK // max(n_items, 1)))


def _popularity(history: csr_matrix) -> np.ndarray:
    """Each item's summed weight over every customer: the cold-start ranking."""
    return np.asarray(history.sum(axis=0), dtype=np.float32).ravel()


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k columns per row and their scores, best first; vectorised over the batch."""
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_scores, order, axis=1)


def csr_parts(prefix: str, m: csr_matrix) -> dict[str, np.ndarray]:
    """A sparse matrix as plain arrays for `state.npz` (`csr_from` reads them back)."""
    return {
        f"{prefix}_data": m.data,
        f"{prefix}_indices": m.indices,
        f"{prefix}_indptr": m.indptr,
        f"{prefix}_shape": np.asarray(m.shape),
    }


def csr_from(arrays: dict[str, np.ndarray], prefix: str) -> csr_matrix:
    return csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
        shape=tuple(arrays[f"{prefix}_shape"]),
    )
