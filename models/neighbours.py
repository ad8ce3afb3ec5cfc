"""Item-item nearest neighbours: cosine similarity, top-K per item (implicit's kernel)."""

from __future__ import annotations

import numpy as np
from implicit.nearest_neighbours import ItemItemRecommender
from scipy.sparse import csr_matrix
from sklearn.preprocessing import normalize

from features.matrix import InteractionMatrix
from models.base import Recommender
from models.confidence import confidence, single_threaded_blas


class ItemKNN(Recommender):
    """Score = the customer's items times their `neighbours` most similar items."""

    name = "itemknn"

    def __init__(self, neighbours: int = 100, alpha: float = 1.0) -> None:
        self.neighbours = neighbours
        self.alpha = alpha

    def _fit(self, data: InteractionMatrix) -> None:
        # Cosine = dot products of L2-normalised item columns (what implicit's
        # CosineRecommender does, but handing its kernel a CSR matrix as it expects).
        unit_items = (
            normalize(confidence(data.weights, self.alpha), axis=0).tocsr().astype(np.float64)
        )
        with single_threaded_blas():
            knn = ItemItemRecommender(K=self.neighbours)
            knn.fit(unit_items, show_progress=False)
        self.similarity_ = csr_matrix(knn.similarity, dtype=np.float32)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        user_items = confidence(self.history_[rows], self.alpha)
        return np.asarray((user_items @ self.similarity_).toarray(), dtype=np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        m = self.similarity_
        return {
            "data": m.data,
            "indices": m.indices,
            "indptr": m.indptr,
            "shape": np.array(m.shape),
        }

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        shape = tuple(int(v) for v in state["shape"])
        self.similarity_ = csr_matrix(
            (state["data"], state["indices"], state["indptr"]), shape=shape
        )
