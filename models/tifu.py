"""TIFU-KNN (Hu et al., SIGIR 2020): a customer's own time-decayed item frequencies,
blended with the mean of their nearest customers' — the strong simple baseline of
next-basket recommendation.

Here on the decayed weights every model shares (`features.interactions`: recent
interactions weigh more) rather than on per-basket groups: each customer's vector is their
share of decayed weight per item; neighbours are the `neighbours` customers of highest
cosine similarity (implicit's top-K kernel on the transposed matrix); the score is
`alpha` x own vector + (1 - `alpha`) x the neighbours' mean vector. The defaults (100,
0.7) were the best of {100, 300} x {0.5, 0.7, 0.9} on completejourney's four weeks before
2017-12-04 (`benchmarks/recommender_quality.py` tests on the four weeks after).
"""

from __future__ import annotations

import numpy as np
from implicit.nearest_neighbours import ItemItemRecommender
from scipy.sparse import csr_matrix, diags
from sklearn.preprocessing import normalize

from features.matrix import InteractionMatrix
from models.base import Recommender, csr_from, csr_parts
from models.confidence import single_threaded_blas


class TifuKNN(Recommender):
    """Own decayed frequency blended with the nearest customers' (TIFU-KNN)."""

    name = "tifu-knn"

    def __init__(self, neighbours: int = 100, alpha: float = 0.7) -> None:
        self.neighbours = neighbours
        self.alpha = alpha

    def _fit(self, data: InteractionMatrix) -> None:
        self.vectors_ = _shares(data.weights)
        self.mean_of_ = self._nearest_in_training(self.vectors_, same=True)

    def _refresh(self, history: InteractionMatrix) -> None:
        self.mean_of_ = self._nearest_in_training(_shares(history.weights), same=False)

    def _keep_users(self, keep: np.ndarray) -> None:
        self.vectors_ = self.vectors_[keep]
        kept = self.mean_of_[keep][:, keep]
        totals = np.asarray(kept.sum(axis=1)).ravel()
        self.mean_of_ = csr_matrix(diags(1.0 / np.maximum(totals, 1e-12)) @ kept)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        own = _shares(self.history_[rows]).toarray()
        near = (self.mean_of_[rows] @ self.vectors_).toarray()
        return np.asarray(self.alpha * own + (1 - self.alpha) * near, dtype=np.float32)

    def _nearest_in_training(self, vectors: csr_matrix, *, same: bool) -> csr_matrix:
        """(len(vectors) x training customers): 1/K for each row's K nearest training
        customers by cosine (themselves left out when `same`)."""
        if vectors.shape[0] == 0 or self.vectors_.shape[0] == 0:
            return csr_matrix((vectors.shape[0], self.vectors_.shape[0]), dtype=np.float32)
        train = normalize(self.vectors_, axis=1).tocsr()
        k = max(1, min(self.neighbours, train.shape[0] - (1 if same else 0)))
        if same:
            with single_threaded_blas():
                knn = ItemItemRecommender(K=k + 1)
                knn.fit(train.T.tocsr().astype(np.float64), show_progress=False)
            sims = csr_matrix(knn.similarity, dtype=np.float32)
            sims.setdiag(0)
        else:
            sims = csr_matrix(normalize(vectors, axis=1) @ train.T, dtype=np.float32)
        sims.eliminate_zeros()
        return _top_k_uniform(sims, k)

    def _state(self) -> dict[str, np.ndarray]:
        return {**csr_parts("vectors", self.vectors_), **csr_parts("mean_of", self.mean_of_)}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.vectors_ = csr_from(state, "vectors")
        self.mean_of_ = csr_from(state, "mean_of")


def _shares(weights: csr_matrix) -> csr_matrix:
    """Each row's share of its weight per item (rows sum to 1; empty rows stay empty)."""
    if weights.shape[0] == 0:
        return csr_matrix(weights.shape, dtype=np.float32)
    return normalize(weights.tocsr().astype(np.float32), norm="l1", axis=1).tocsr()


def _top_k_uniform(sims: csr_matrix, k: int) -> csr_matrix:
    """Per row, weight 1/n on its (at most k) most similar columns with similarity > 0."""
    sims = sims.tocsr()
    rows, cols = [], []
    for r in range(sims.shape[0]):
        start, stop = sims.indptr[r], sims.indptr[r + 1]
        values, where = sims.data[start:stop], sims.indices[start:stop]
        keep = where[np.argsort(-values, kind="stable")[:k]] if len(values) > k else where
        rows.append(np.full(len(keep), r))
        cols.append(keep)
    row = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    col = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    counts = np.bincount(row, minlength=sims.shape[0]).astype(np.float32)
    data = 1.0 / counts[row] if len(row) else np.zeros(0, dtype=np.float32)
    return csr_matrix((data, (row, col)), shape=sims.shape, dtype=np.float32)
