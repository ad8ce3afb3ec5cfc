"""Recent popularity: what everybody (or the customer's favourite categories) wants now."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from features.matrix import InteractionMatrix
from models.base import Recommender


class RecentPopularity(Recommender):
    """Items ranked by their summed, recency-decayed weight.

    `scope="global"`: one ranking for all. `scope="category"`: the global ranking
    re-weighted by each customer's share of interest in each category.
    """

    name = "popularity"

    def __init__(self, scope: Literal["global", "category"] = "global") -> None:
        if scope not in ("global", "category"):
            raise ValueError(f"scope must be 'global' or 'category', not {scope!r}")
        self.scope = scope

    def _fit(self, data: InteractionMatrix) -> None:
        weights = np.asarray(data.weights.sum(axis=0)).ravel()
        self.popularity_ = (weights / max(weights.max(), 1e-12)).astype(np.float32)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        base = np.broadcast_to(self.popularity_, (len(rows), len(self.popularity_)))
        if self.scope == "global":
            return base.copy()
        codes, categories = pd.factorize(pd.Series(self.item_category_))
        onehot = np.zeros((len(categories), len(codes)), dtype=np.float32)
        onehot[codes, np.arange(len(codes))] = 1.0
        per_category = np.asarray(self.history_[rows] @ onehot.T)
        share = per_category / np.maximum(per_category.sum(axis=1, keepdims=True), 1e-12)
        # A small floor keeps unexplored categories reachable, below the customer's own.
        return np.asarray(base * (share[:, codes] + 0.01), dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity_}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.popularity_ = state["popularity"]
