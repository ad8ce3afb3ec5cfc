"""EASE (Steck, 2019): a closed-form item-item model on the most frequent items."""

from __future__ import annotations

import numpy as np

from features.matrix import InteractionMatrix
from models.base import Recommender


class EASE(Recommender):
    """B = I - P / diag(P), P = (X'X + lambda I)^-1, over the `max_items` most frequent items.

    Items outside that set are ranked after them by popularity.
    """

    name = "ease"

    def __init__(self, l2: float = 200.0, max_items: int = 5000) -> None:
        self.l2 = l2
        self.max_items = max_items

    def _fit(self, data: InteractionMatrix) -> None:
        x = data.weights.tocsc()
        counts = np.asarray((x > 0).sum(axis=0)).ravel()
        kept = np.sort(np.argsort(-counts, kind="stable")[: self.max_items])
        xk = x[:, kept].astype(np.float64)
        xk.data = np.log1p(xk.data)
        gram = (xk.T @ xk).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)
        np.fill_diagonal(b, 0.0)
        self.kept_ = kept.astype(np.int64)
        self.weights_ = b.astype(np.float32)
        self.fallback_ = (counts / max(counts.max(), 1) * 1e-6).astype(np.float32)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        x = self.history_[rows][:, self.kept_]
        x.data = np.log1p(x.data)
        kept_scores = np.asarray(x @ self.weights_) + self.fallback_[self.kept_]
        # Items outside the kept set come after every kept item, by popularity.
        floor = kept_scores.min(axis=1, keepdims=True) - 1.0
        scores = floor + self.fallback_[None, :]
        scores[:, self.kept_] = kept_scores
        out: np.ndarray = scores.astype(np.float32)
        return out

    def _state(self) -> dict[str, np.ndarray]:
        return {"kept": self.kept_, "weights": self.weights_, "fallback": self.fallback_}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.kept_ = state["kept"]
        self.weights_ = state["weights"]
        self.fallback_ = state["fallback"]
