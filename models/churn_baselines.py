"""Churn baselines, scored on the same features and label as the churn model.

- `RecencyBaseline`: logistic regression on days since the last purchase (log scale).
- `BGNBDBaseline`: the BG/NBD model (lifetimes) on lifetime purchase days; its churn score
  is the probability of no purchase in the horizon: P(dead) + P(alive) x P(no purchase
  in the horizon | alive), with P(no purchase | alive) = ((alpha + T) / (alpha + T + h))^(r + x)
  for a gamma-Poisson purchase rate (r, alpha) after x repeat purchases over T days.
"""

from __future__ import annotations

import warnings
from typing import Self

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

with warnings.catch_warnings():
    # lifetimes sets a pandas option at import that pandas 3 deprecates (no effect).
    warnings.simplefilter("ignore", DeprecationWarning)
    from lifetimes import BetaGeoFitter


class RecencyBaseline:
    """P(churn) from recency alone."""

    def fit(self, X: pd.DataFrame, y: pd.Series) -> Self:
        self.model_ = LogisticRegression().fit(self._x(X), y.astype(int))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        out: np.ndarray = self.model_.predict_proba(self._x(X))[:, 1]
        return out

    @staticmethod
    def _x(X: pd.DataFrame) -> np.ndarray:
        days = X[["recency_days"]].fillna(X["recency_days"].max()).to_numpy(dtype=float)
        out: np.ndarray = np.log1p(days)
        return out


class BGNBDBaseline:
    """P(no purchase in the next `horizon_days`) under BG/NBD."""

    def __init__(self, horizon_days: float = 90, penalizer: float = 0.001) -> None:
        self.horizon_days = horizon_days
        self.penalizer = penalizer

    def fit(self, X: pd.DataFrame, y: pd.Series | None = None) -> Self:
        frequency, recency, age = self._rfm(X)
        self.model_ = BetaGeoFitter(penalizer_coef=self.penalizer)
        with warnings.catch_warnings():
            # lifetimes (2020) trips deprecations in newer numpy/pandas; none change results.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            self.model_.fit(frequency, recency, age)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        frequency, recency, age = self._rfm(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            alive = np.asarray(
                self.model_.conditional_probability_alive(frequency, recency, age), dtype=float
            )
        r, alpha = float(self.model_.params_["r"]), float(self.model_.params_["alpha"])
        quiet = ((alpha + age) / (alpha + age + self.horizon_days)) ** (r + frequency)
        out: np.ndarray = (1.0 - alive) + alive * quiet
        return out

    @staticmethod
    def _rfm(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """BG/NBD inputs in days: repeat purchase days, first-to-last span, age."""
        age = X["first_purchase_days"].to_numpy(dtype=float)
        frequency = np.maximum(X["lifetime_purchase_days"].to_numpy(dtype=float) - 1.0, 0.0)
        recency = np.clip(age - X["recency_days"].to_numpy(dtype=float), 0.0, None)
        recency = np.where(frequency == 0, 0.0, recency)
        return frequency, recency, age
