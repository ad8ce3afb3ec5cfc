"""Personal frequency: the customer's own items again, most (and most recently) wanted first."""

from __future__ import annotations

import numpy as np

from features.matrix import InteractionMatrix
from models.base import Recommender


class Repurchase(Recommender):
    """Scores are the customer's own decayed weights; unseen items follow by popularity."""

    name = "repurchase"

    def _fit(self, data: InteractionMatrix) -> None:
        weights = np.asarray(data.weights.sum(axis=0)).ravel()
        # Below any own item (weights are > 0): popularity only breaks the tail's ties.
        self.fallback_ = (1e-6 * weights / max(weights.max(), 1e-12)).astype(np.float32)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        own = self.history_[rows].toarray()
        return np.asarray(own + self.fallback_, dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {"fallback": self.fallback_}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.fallback_ = state["fallback"]
