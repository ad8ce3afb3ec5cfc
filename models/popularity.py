"""Recent popularity: what everybody, the customer's store, or their categories want now."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from features.matrix import InteractionMatrix
from models.base import Recommender, csr_from, csr_parts
from models.pair_features import CodeShares

Scope = Literal["global", "store", "category"]


class RecentPopularity(Recommender):
    """Items ranked by their summed, recency-decayed weight.

    `scope="global"`: one ranking for all. `scope="store"`: what sells in the store the
    customer uses most (the global ranking breaks ties and serves customers with no
    store). `scope="category"`: the global ranking re-weighted by each customer's share of
    interest in each category.
    """

    name = "popularity"

    def __init__(self, scope: Scope = "global") -> None:
        if scope not in ("global", "store", "category"):
            raise ValueError(f"scope must be 'global', 'store' or 'category', not {scope!r}")
        self.scope = scope

    def _fit(self, data: InteractionMatrix) -> None:
        weights = np.asarray(data.weights.sum(axis=0)).ravel()
        self.popularity_ = (weights / max(weights.max(), 1e-12)).astype(np.float32)
        n_items = len(data.items)
        if data.store_popularity is not None and data.user_store is not None:
            by_store = data.store_popularity.tocsr().astype(np.float32)
            peak = np.asarray(by_store.max(axis=1).todense()).ravel()
            scale = 1.0 / np.maximum(peak, 1e-12)
            self.store_popularity_ = csr_matrix(by_store.multiply(scale[:, None]))
            self.stores_ = np.asarray(data.stores, dtype=object)
        else:
            self.store_popularity_ = csr_matrix((0, n_items), dtype=np.float32)
            self.stores_ = np.empty(0, dtype=object)
        self._lookups()
        self._refresh(data)

    def _lookups(self) -> None:
        """Made once for the fitted model and shared by its views (a fold-in looks up one
        customer's store and category shares on every request): the stores as an index,
        the items' categories as codes."""
        self.store_index_ = pd.Index(self.stores_)
        self.categories_ = CodeShares(pd.factorize(pd.Series(self.item_category_))[0])

    def _refresh(self, history: InteractionMatrix) -> None:
        """Each customer's main store, as a position in the stores the model knows."""
        self.user_store_ = np.full(len(history.users), -1, dtype=np.int64)
        if history.user_store is None or history.stores is None:
            return
        has = history.user_store >= 0
        names = pd.Index(np.asarray(history.stores, dtype=object)[history.user_store[has]])
        self.user_store_[has] = self.store_index_.get_indexer(names)

    def _keep_users(self, keep: np.ndarray) -> None:
        self.user_store_ = self.user_store_[keep]

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        base = np.broadcast_to(self.popularity_, (len(rows), len(self.popularity_)))
        if self.scope == "global":
            return base.copy()
        if self.scope == "store":
            scores = 1e-3 * base
            store = self.user_store_[rows]
            has = store >= 0
            scores[has] += self.store_popularity_[store[has]].toarray()
            return np.asarray(scores, dtype=np.float32)
        categories = self.categories_
        share = categories.of(self.history_[rows])
        # A small floor keeps unexplored categories reachable, below the customer's own.
        return np.asarray(base * (share[:, categories.codes] + 0.01), dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "popularity": self.popularity_,
            "user_store": self.user_store_,
            "stores": self.stores_.astype(str),
            **csr_parts("store", self.store_popularity_),
        }

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.popularity_ = state["popularity"]
        self.user_store_ = state["user_store"]
        self.stores_ = state["stores"].astype(object)
        self.store_popularity_ = csr_from(state, "store")
        self._lookups()
