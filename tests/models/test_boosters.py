"""A request's few rows predicted on one thread give the numbers every core gives."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from models import boosters


@pytest.mark.parametrize("rows", [1, 10, boosters.FEW_ROWS + 1])
@pytest.mark.parametrize("contrib", [False, True], ids=["scores", "contributions"])
def test_one_thread_predicts_what_every_core_predicts(rows: int, contrib: bool) -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 6))
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(scale=0.5, size=500) > 0).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 15, "num_threads": 2},
        lgb.Dataset(X, y),
        num_boost_round=40,
    )
    asked = rng.normal(size=(rows, 6))
    asked[::3, 4] = np.nan  # missing values take the trees' default branch alike
    got = boosters.predict(booster, asked, pred_contrib=contrib)
    want = np.asarray(booster.predict(asked, pred_contrib=contrib))
    np.testing.assert_array_equal(got, want)
