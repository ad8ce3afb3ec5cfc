"""Customer lifetime value: BG/NBD for how often a customer buys (and whether they are
still a customer at all) with Gamma-Gamma for how much they spend per purchase day
(`lifetimes`), on purchase days.

`rfm` turns purchases into the models' inputs at a cutoff; `CLVModel.fit` fits both;
`predict_value` gives each customer's expected spend over the next `days`, and
`lifetime_value` the discounted 12-month value `lifetimes` computes.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from typing import Self, TypeVar

import numpy as np
import pandas as pd

with warnings.catch_warnings():
    # lifetimes sets a pandas option at import that newer pandas deprecates (no effect).
    warnings.simplefilter("ignore", DeprecationWarning)
    from lifetimes import BetaGeoFitter, GammaGammaFitter

F = TypeVar("F")
RFM_COLUMNS = ["frequency", "recency", "T", "monetary_value"]


def rfm(purchases: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Per person (index) before `cutoff`, in days: repeat purchase days (`frequency`),
    first to last purchase day (`recency`), first purchase day to the cutoff (`T`), and
    the mean revenue of their repeat purchase days (`monetary_value`, 0 without one).
    `purchases`: person_id, ts, revenue."""
    before = purchases[purchases["ts"] < cutoff]
    days = (
        before.assign(day=before["ts"].dt.floor("D"))
        .groupby(["person_id", "day"], observed=True)["revenue"]
        .sum()
        .reset_index()
    )
    first = days.groupby("person_id")["day"].transform("min")
    repeat = days[days["day"] > first]
    per = days.groupby("person_id").agg(
        first=("day", "min"), last=("day", "max"), n=("day", "size")
    )
    cut = cutoff.floor("D")
    out = pd.DataFrame(
        {
            "frequency": (per["n"] - 1).astype(float),
            "recency": (per["last"] - per["first"]).dt.days.astype(float),
            "T": (cut - per["first"]).dt.days.astype(float),
        },
        index=per.index,
    )
    out["monetary_value"] = repeat.groupby("person_id")["revenue"].mean().reindex(out.index)
    out["monetary_value"] = out["monetary_value"].fillna(0.0)
    return out[out["T"] > 0]


#: Penalizers tried in turn until a fitter converges (lifetimes' default is 0).
PENALIZERS = (0.001, 0.01, 0.1, 1.0)


class CLVModel:
    """BG/NBD + Gamma-Gamma on purchase days. Each is fitted at the smallest penalizer of
    PENALIZERS at which it converges; `fit` raises ValueError when none does."""

    def fit(self, data: pd.DataFrame) -> Self:
        repeat = data[(data["frequency"] > 0) & (data["monetary_value"] > 0)]
        self.bgf_ = _first_fit(lambda p: BetaGeoFitter(penalizer_coef=p).fit(
            data["frequency"], data["recency"], data["T"]))  # fmt: skip
        self.ggf_ = _first_fit(lambda p: GammaGammaFitter(penalizer_coef=p).fit(
            repeat["frequency"], repeat["monetary_value"]))  # fmt: skip
        with _quiet():
            # A one-off customer is valued at the repeaters' expected spend per day.
            self.spend_ = float(
                np.mean(self.ggf_.conditional_expected_average_profit(
                    repeat["frequency"], repeat["monetary_value"]
                ))
            )  # fmt: skip
        return self

    def predict_value(self, data: pd.DataFrame, days: float) -> pd.Series:
        """Expected spend over the next `days` (undiscounted)."""
        with _quiet():
            purchases = self.bgf_.conditional_expected_number_of_purchases_up_to_time(
                days, data["frequency"], data["recency"], data["T"]
            )
        return pd.Series(np.asarray(purchases, dtype=float) * self._spend(data), index=data.index)

    def lifetime_value(self, data: pd.DataFrame, months: int = 12) -> pd.Series:
        """The expected discounted value over the next `months` (lifetimes' CLV, 1% a
        month), for every customer."""
        with _quiet():
            value = self.ggf_.customer_lifetime_value(
                self.bgf_,
                data["frequency"],
                data["recency"],
                data["T"],
                pd.Series(self._spend(data), index=data.index),
                time=months,
                discount_rate=0.01,
                freq="D",
            )
        return pd.Series(np.asarray(value, dtype=float), index=data.index)

    def _spend(self, data: pd.DataFrame) -> np.ndarray:
        repeat = (data["frequency"] > 0) & (data["monetary_value"] > 0)
        spend = np.full(len(data), self.spend_, dtype=float)
        if repeat.any():
            with _quiet():
                spend[repeat.to_numpy()] = np.asarray(
                    self.ggf_.conditional_expected_average_profit(
                        data.loc[repeat, "frequency"], data.loc[repeat, "monetary_value"]
                    ),
                    dtype=float,
                )
        return spend


def _first_fit(fit: Callable[[float], F]) -> F:
    """The first fitter that converges along PENALIZERS."""
    failed: Exception | None = None
    for penalizer in PENALIZERS:
        try:
            # lifetimes prints the optimiser's state when it fails: not for the user.
            with _quiet(), contextlib.redirect_stdout(io.StringIO()):
                return fit(penalizer)
        # lifetimes' ConvergenceError is a ValueError.
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            failed = exc
    raise ValueError(f"the value model did not converge at any penalizer: {failed}")


class _quiet(warnings.catch_warnings):
    """lifetimes (2020) trips deprecations in newer numpy and pandas; none change results."""

    def __enter__(self) -> None:
        super().__enter__()
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
