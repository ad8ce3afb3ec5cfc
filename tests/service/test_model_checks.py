"""A churn model that cannot tell customers apart is unfit to serve."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.churn import ChurnModel
from service.model_checks import churn_misfit


def fitted(min_child_samples: int) -> ChurnModel:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"recency_days": rng.uniform(0, 365, 600), "orders": rng.poisson(3, 600)})
    y = pd.Series((X["recency_days"] + rng.normal(0, 60, 600)) > 180)
    return ChurnModel(n_estimators=30, min_child_samples=min_child_samples).fit(
        X[:400], y[:400], X[400:], y[400:]
    )


def test_constant_scores_are_refused_and_varying_ones_pass() -> None:
    assert churn_misfit(fitted(min_child_samples=20)) is None
    # Leaves that need more customers than there are: one score for everyone.
    why = churn_misfit(fitted(min_child_samples=10_000))
    assert why is not None and "the same score" in why
