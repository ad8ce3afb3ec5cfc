"""Metrics against hand-computed examples and against an independent implementation (ranx)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from training.metrics import coverage, ranking_metrics


def relevant_matrix(sets: list[set[int]], n_items: int) -> csr_matrix:
    rows = [u for u, items in enumerate(sets) for _ in items]
    cols = [i for items in sets for i in sorted(items)]
    return csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(sets), n_items))


def test_hand_computed_example() -> None:
    # Customer 0: relevant {1, 3}; ranked 1, 2, 3 -> hits at ranks 1 and 3.
    # Customer 1: relevant {0}; ranked 4, 0, -1 -> hit at rank 2.
    # Customer 2: nothing relevant -> left out of every average.
    ranked = np.array([[1, 2, 3], [4, 0, -1], [0, 1, 2]])
    relevant = relevant_matrix([{1, 3}, {0}, set()], n_items=5)
    m = ranking_metrics(ranked, relevant, k=3)
    assert m["recall@3"] == pytest.approx((1.0 + 1.0) / 2)
    ndcg0 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    ndcg1 = (1 / math.log2(3)) / 1.0
    assert m["ndcg@3"] == pytest.approx((ndcg0 + ndcg1) / 2)
    ap0 = (1 / 1 + 2 / 3) / 2
    ap1 = (1 / 2) / 1
    assert m["map@3"] == pytest.approx((ap0 + ap1) / 2)
    assert m["hit_rate@3"] == 1.0
    assert coverage(ranked[:2], n_items=5, k=3) == pytest.approx(5 / 5)
    assert coverage(ranked[:2], n_items=5, k=1) == pytest.approx(2 / 5)


def test_map_denominator_is_min_of_k_and_relevant() -> None:
    # Five relevant items, k = 2, both top-2 hit: AP@2 = (1 + 1) / min(2, 5) = 1.
    ranked = np.array([[0, 1]])
    relevant = relevant_matrix([{0, 1, 2, 3, 4}], n_items=6)
    assert ranking_metrics(ranked, relevant, k=2)["map@2"] == pytest.approx(1.0)
    assert ranking_metrics(ranked, relevant, k=2)["recall@2"] == pytest.approx(2 / 5)


# ranx compiles with numba, which warns about its own integer casts.
@pytest.mark.filterwarnings("ignore::numba.core.errors.NumbaTypeSafetyWarning")
def test_agrees_with_ranx_on_random_rankings() -> None:
    ranx = pytest.importorskip("ranx")
    rng = np.random.default_rng(0)
    n_users, n_items, k = 60, 40, 10
    ranked = np.array([rng.permutation(n_items)[:k] for _ in range(n_users)])
    sets = [
        set(rng.choice(n_items, size=rng.integers(1, 8), replace=False)) for _ in range(n_users)
    ]
    relevant = relevant_matrix(sets, n_items)
    ours = ranking_metrics(ranked, relevant, k=k)
    qrels = ranx.Qrels({f"u{u}": {f"i{i}": 1 for i in items} for u, items in enumerate(sets)})
    run = ranx.Run(
        {
            f"u{u}": {f"i{i}": float(k - r) for r, i in enumerate(row)}
            for u, row in enumerate(ranked)
        }
    )
    theirs = ranx.evaluate(qrels, run, [f"recall@{k}", f"ndcg@{k}", f"hit_rate@{k}"])
    assert ours[f"recall@{k}"] == pytest.approx(theirs[f"recall@{k}"])
    assert ours[f"ndcg@{k}"] == pytest.approx(theirs[f"ndcg@{k}"])
    assert ours[f"hit_rate@{k}"] == pytest.approx(theirs[f"hit_rate@{k}"])
    # ranx's MAP@k divides by every relevant item; ours by min(k, |relevant|). With no
    # customer holding more than k relevant items the two definitions coincide.
    assert max(len(s) for s in sets) <= k
    assert ours[f"map@{k}"] == pytest.approx(ranx.evaluate(qrels, run, f"map@{k}"))
