"""Full-ranking metrics, vectorised over customers.

Inputs: `ranked`, an (n_users x K) array of item positions, best first (-1 = no item),
and `relevant`, a sparse (n_users x n_items) matrix whose non-zeros are the items each
customer actually chose in the test window. Customers with nothing relevant are left
out of every average (there is nothing to find for them).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix


def hits(ranked: np.ndarray, relevant: csr_matrix) -> np.ndarray:
    """Boolean (n_users x K): is the item at each rank relevant to that customer?"""
    n_items = relevant.shape[1]
    rel = relevant.tocoo()
    relevant_codes = np.unique(rel.row.astype(np.int64) * n_items + rel.col)
    users = np.arange(ranked.shape[0], dtype=np.int64)[:, None]
    codes = users * n_items + ranked
    found: np.ndarray = np.isin(codes, relevant_codes) & (ranked >= 0)
    return found


def ranking_metrics(ranked: np.ndarray, relevant: csr_matrix, k: int) -> dict[str, float]:
    """Recall@k, NDCG@k, MAP@k (denominator min(k, |relevant|)) and HitRate@k, averaged."""
    n_rel = np.asarray((relevant != 0).sum(axis=1)).ravel()
    judged = n_rel > 0
    if not judged.any():
        return {f"{m}@{k}": float("nan") for m in ("recall", "ndcg", "map", "hit_rate")}
    h = hits(ranked[:, :k], relevant)[judged].astype(np.float64)
    n_rel = n_rel[judged]
    ranks = np.arange(1, h.shape[1] + 1)
    discount = 1.0 / np.log2(ranks + 1)
    ideal = np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1))[np.minimum(n_rel, k) - 1]
    precision_at = np.cumsum(h, axis=1) / ranks
    return {
        f"recall@{k}": float(np.mean(h.sum(axis=1) / n_rel)),
        f"ndcg@{k}": float(np.mean((h * discount).sum(axis=1) / ideal)),
        f"map@{k}": float(np.mean((precision_at * h).sum(axis=1) / np.minimum(n_rel, k))),
        f"hit_rate@{k}": float(np.mean(h.any(axis=1))),
    }


def coverage(ranked: np.ndarray, n_items: int, k: int) -> float:
    """Share of the catalogue that appears in anyone's top k."""
    shown = ranked[:, :k]
    return float(len(np.unique(shown[shown >= 0])) / max(n_items, 1))
