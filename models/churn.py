"""The churn model: LightGBM, calibrated, with risk bands and drivers in plain words.

`fit(X, y, X_val, y_val)` trains on past cutoffs and uses a later validation cutoff to
choose the calibration (isotonic or sigmoid, whichever has the lower log loss) and to set
the band thresholds. Saved as LightGBM's text model plus `churn.json` (calibration,
bands, feature names) and `isotonic.npz`: nothing pickled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from models import boosters
from models.base import ModelNotFitted
from models.churn_words import describe
from models.params import HyperParams

#: Risk bands by share of the validation population: the riskiest 20% are high, the
#: next 30% medium, the rest low.
HIGH_SHARE, MEDIUM_SHARE = 0.20, 0.30
EPS = 1e-6
TIE_BREAK = 1e-4
#: The window a model is trained for when none is given (and that of models saved
#: before the window was saved with them): churned = no purchase in the horizon after a
#: cutoff; scored = a purchase in the lookback before it.
DEFAULT_HORIZON_DAYS, DEFAULT_LOOKBACK_DAYS = 90.0, 365.0


class ChurnModel(HyperParams):
    """Probability that a customer buys nothing in the horizon, its band and its drivers."""

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.03,
        num_leaves: int = 7,
        min_child_samples: int = 100,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.random_state = random_state

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series,
        X_val: pd.DataFrame,
        y_val: pd.Series,
        *,
        horizon_days: float = DEFAULT_HORIZON_DAYS,
        lookback_days: float = DEFAULT_LOOKBACK_DAYS,
        as_of: pd.Timestamp | None = None,
    ) -> Self:
        """Train on (X, y); calibrate and set bands on the later (X_val, y_val).

        `horizon_days` and `lookback_days` are the window the labels and population were
        built with, `as_of` the latest cutoff learnt from: saved with the model, and what
        every consumer scores with."""
        if y.nunique() < 2 or y_val.nunique() < 2:
            raise ValueError(
                "churn labels need both churners and stayers, in training and validation"
            )
        self.horizon_days_, self.lookback_days_ = float(horizon_days), float(lookback_days)
        self.as_of_ = pd.Timestamp(as_of) if as_of is not None else None
        self.features_ = list(X.columns)
        model = lgb.LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            random_state=self.random_state,
            n_jobs=2,
            verbose=-1,
        )
        model.fit(X, y.astype(int))
        self.booster_ = model.booster_
        raw = self._raw(X_val)
        truth = y_val.astype(int).to_numpy()
        isotonic = IsotonicRegression(out_of_bounds="clip", y_min=EPS, y_max=1 - EPS).fit(
            raw, truth
        )
        platt = LogisticRegression().fit(_logit(raw)[:, None], truth)
        iso_loss = log_loss(truth, np.clip(isotonic.predict(raw), EPS, 1 - EPS))
        platt_loss = log_loss(truth, platt.predict_proba(_logit(raw)[:, None])[:, 1])
        self.calibration_ = "isotonic" if iso_loss <= platt_loss else "sigmoid"
        self.iso_x_ = np.asarray(isotonic.X_thresholds_, dtype=np.float64)
        self.iso_y_ = np.asarray(isotonic.y_thresholds_, dtype=np.float64)
        self.platt_ = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
        calibrated = self._calibrate(raw)
        self.thresholds_ = (
            float(np.quantile(calibrated, 1 - HIGH_SHARE - MEDIUM_SHARE)),
            float(np.quantile(calibrated, 1 - HIGH_SHARE)),
        )
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probability per row of X."""
        return self._calibrate(self._raw(X))

    def bands(self, probability: np.ndarray) -> np.ndarray:
        """'low', 'medium' or 'high' per probability, by the thresholds set in `fit`."""
        self._check()
        medium, high = self.thresholds_
        return np.where(
            probability >= high, "high", np.where(probability >= medium, "medium", "low")
        )

    def drivers(
        self, X: pd.DataFrame, top: int = 3, bands: np.ndarray | None = None
    ) -> list[list[str]]:
        """For each row, up to `top` reasons in words, strongest first: those pushing
        towards churn, or for a row whose band (`bands`) is "low" those holding the
        customer close (what lowers the risk). From LightGBM's per-feature contributions
        (`pred_contrib`)."""
        self._check()
        names, values = list(X.columns), X.to_numpy(dtype=float)
        rows = [dict(zip(names, v, strict=True)) for v in values.tolist()]
        return self._reasons(self._matrix(X), rows, top, bands)

    def score_one(
        self, features: Mapping[str, float], top: int = 3
    ) -> tuple[float, str, list[str]]:
        """One row of features by name (a customer's answer now): its probability, band and
        drivers, as `predict_proba`, `bands` and `drivers` give them for a frame of that
        row, without building one (the frame's checks cost ten times the trees)."""
        self._check()
        missing = [f for f in self.features_ if f not in features]
        if missing:
            raise ValueError(f"features missing: {missing}")
        matrix = np.array([[features[f] for f in self.features_]], dtype=np.float64)
        raw = boosters.predict(self.booster_, matrix).astype(np.float64, copy=False)
        probability = self._calibrate(raw)
        band = self.bands(probability)
        (reasons,) = self._reasons(matrix, [dict(features)], top, band)
        return float(probability[0]), str(band[0]), reasons

    def _reasons(
        self, matrix: np.ndarray, rows: list[dict[str, float]], top: int, bands: np.ndarray | None
    ) -> list[list[str]]:
        """`drivers` of the rows of `matrix` (the booster's columns); `rows` are the same
        rows by feature name, as the words read them."""
        # One column per feature, then the bias: keep the features.
        contrib = boosters.predict(self.booster_, matrix, pred_contrib=True)[:, :-1]
        holding = np.zeros(len(rows), dtype=bool) if bands is None else np.asarray(bands) == "low"
        signed = np.where(holding[:, None], contrib, -contrib)  # most negative = strongest
        strongest = np.argsort(signed, axis=1)[:, : top * 2]
        out: list[list[str]] = []
        for i, order in enumerate(strongest):
            pushing = [j for j in order if signed[i, j] < 0]
            if not pushing:
                out.append([])
                continue
            reasons = [describe(self.features_[j], rows[i], holding=holding[i]) for j in pushing]
            out.append([r for r in dict.fromkeys(reasons) if r][:top])
        return out

    def save(self, path: Path) -> Path:
        """Write `booster.txt`, `churn.json` and `isotonic.npz` into the folder `path`."""
        self._check()
        path.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(path / "booster.txt"))
        meta = {
            "params": self.get_params(),
            "features": self.features_,
            "calibration": self.calibration_,
            "platt": list(self.platt_),
            "thresholds": list(self.thresholds_),
            "horizon_days": self.horizon_days_,
            "lookback_days": self.lookback_days_,
            "as_of": self.as_of_.isoformat() if self.as_of_ is not None else None,
        }
        (path / "churn.json").write_text(json.dumps(meta, indent=2))
        np.savez(path / "isotonic.npz", x=self.iso_x_, y=self.iso_y_, allow_pickle=False)
        return path

    @classmethod
    def load(cls, path: Path) -> ChurnModel:
        """A model written by `save`."""
        meta = json.loads((path / "churn.json").read_text())
        model = cls(**meta["params"])
        model.booster_ = lgb.Booster(model_file=str(path / "booster.txt"))
        model.features_ = list(meta["features"])
        model.calibration_ = meta["calibration"]
        model.platt_ = (float(meta["platt"][0]), float(meta["platt"][1]))
        model.thresholds_ = (float(meta["thresholds"][0]), float(meta["thresholds"][1]))
        # Saved before the window was saved with the model: the defaults it was trained with.
        model.horizon_days_ = float(meta.get("horizon_days", DEFAULT_HORIZON_DAYS))
        model.lookback_days_ = float(meta.get("lookback_days", DEFAULT_LOOKBACK_DAYS))
        model.as_of_ = pd.Timestamp(meta["as_of"]) if meta.get("as_of") else None
        with np.load(path / "isotonic.npz", allow_pickle=False) as npz:
            model.iso_x_, model.iso_y_ = npz["x"], npz["y"]
        return model

    def _check(self) -> None:
        if not hasattr(self, "booster_"):
            raise ModelNotFitted("ChurnModel is not fitted yet")

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        self._check()
        missing = [f for f in self.features_ if f not in X.columns]
        if missing:
            raise ValueError(f"features missing: {missing}")
        raw = boosters.predict(self.booster_, self._matrix(X)).astype(np.float64, copy=False)
        return raw

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The features as the booster reads them: numbers in its column order (no feature
        is categorical). LightGBM's check of a frame cost ten times the prediction of one
        row (0.2 against 0.02 ms)."""
        matrix: np.ndarray = X[self.features_].to_numpy(dtype=np.float64, na_value=np.nan)
        return matrix

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        if self.calibration_ == "isotonic":
            # Isotonic regression is flat in steps; a tiny strictly increasing term keeps
            # the booster's order inside a step, so ranking (AUC) is not lost to ties and
            # the bands cut at their shares. It moves a probability by at most TIE_BREAK.
            stepped = np.interp(raw, self.iso_x_, self.iso_y_) + TIE_BREAK * (raw - 0.5)
            out: np.ndarray = np.clip(stepped, EPS, 1 - EPS)
            return out
        slope, intercept = self.platt_
        return 1.0 / (1.0 + np.exp(-(slope * _logit(raw) + intercept)))


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPS, 1 - EPS)
    out: np.ndarray = np.log(q / (1 - q))
    return out
