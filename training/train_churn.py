"""`omni train churn`: out-of-time training, calibration, baselines, MLflow.

Cutoffs, newest last: `train_cutoffs` monthly cutoffs to learn from, then a validation
cutoff (calibration, bands) and the test cutoff `as_of`, whose horizon must be fully in
the data. Features are computed strictly before each cutoff; labels in the horizon after.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sqlalchemy import Engine

from features import columns as c
from features.churn import churn_features, churn_labels
from models.churn import ChurnModel
from models.churn_baselines import BGNBDBaseline, RecencyBaseline
from service.registry import CHURN
from service.settings import Settings
from service.storage.reader import load_events
from training.churn_metrics import churn_metrics
from training.tracking import register, setup

PYFUNC_CODE = Path(__file__).with_name("churn_pyfunc.py")
STEP_DAYS = 30


class NotEnoughHistory(ValueError):
    """The history is too short for training cutoffs, validation and an observed horizon."""


@dataclass(frozen=True)
class ChurnReport:
    table: pd.DataFrame
    version: str
    run_id: str
    cutoffs: list[pd.Timestamp]


def cutoffs_for(
    events: pd.DataFrame,
    as_of: pd.Timestamp | None,
    horizon_days: float,
    lookback_days: float,
    train_cutoffs: int,
) -> list[pd.Timestamp]:
    """Training cutoffs, then validation, then test (= as_of), STEP_DAYS apart."""
    first, last = events[c.TS].min(), events[c.TS].max()
    test = as_of if as_of is not None else (last - pd.Timedelta(days=horizon_days)).normalize()
    if test + pd.Timedelta(days=horizon_days) > last + pd.Timedelta(days=1):
        raise NotEnoughHistory(
            f"the {horizon_days:g}-day horizon after {test:%Y-%m-%d} is not in the data "
            f"(last event {last:%Y-%m-%d})"
        )
    cuts = [test - pd.Timedelta(days=STEP_DAYS * i) for i in range(train_cutoffs + 1, -1, -1)]
    if cuts[0] - pd.Timedelta(days=min(lookback_days, 60)) < first:
        raise NotEnoughHistory(
            f"need history from {cuts[0] - pd.Timedelta(days=60):%Y-%m-%d} for "
            f"{train_cutoffs} training cutoffs (first event {first:%Y-%m-%d})"
        )
    return cuts


def dataset(
    events: pd.DataFrame, cutoffs: list[pd.Timestamp], horizon_days: float, lookback_days: float
) -> tuple[pd.DataFrame, pd.Series]:
    """Features and labels for every cutoff, stacked."""
    xs, ys = [], []
    for cut in cutoffs:
        X = churn_features(events, as_of=cut, lookback_days=lookback_days)
        xs.append(X)
        y = churn_labels(events, as_of=cut, lookback_days=lookback_days, horizon_days=horizon_days)
        ys.append(y.reindex(X.index))
    return pd.concat(xs), pd.concat(ys)


def train_churn(
    engine: Engine,
    settings: Settings,
    *,
    as_of: datetime | None = None,
    horizon_days: float = 90,
    lookback_days: float = 365,
    train_cutoffs: int = 3,
) -> ChurnReport:
    """Train, compare with the baselines on the test cutoff, log and register."""
    events = load_events(engine)
    if events.empty:
        raise NotEnoughHistory("the store holds no events")
    cuts = cutoffs_for(
        events, pd.Timestamp(as_of) if as_of else None, horizon_days, lookback_days, train_cutoffs
    )
    X, y = dataset(events, cuts[:-2], horizon_days, lookback_days)
    X_val, y_val = dataset(events, cuts[-2:-1], horizon_days, lookback_days)
    X_test, y_test = dataset(events, cuts[-1:], horizon_days, lookback_days)
    model = ChurnModel().fit(X, y, X_val, y_val)
    scores = {
        "recency": RecencyBaseline().fit(X, y).predict_proba(X_test),
        "bg/nbd": BGNBDBaseline(horizon_days=horizon_days).fit(X_test).predict_proba(X_test),
        "omni": model.predict_proba(X_test),
    }
    truth = y_test.to_numpy().astype(int)
    table = pd.DataFrame({name: churn_metrics(truth, p) for name, p in scores.items()}).T
    client = setup(settings, CHURN)
    with mlflow.start_run(run_name=f"churn at {cuts[-1]:%Y-%m-%d}") as run:
        mlflow.log_params(
            {
                "horizon_days": horizon_days,
                "lookback_days": lookback_days,
                "cutoffs": ",".join(f"{cut:%Y-%m-%d}" for cut in cuts),
                "calibration": model.calibration_,
                **{f"omni.{k}": v for k, v in model.get_params().items()},
            }
        )
        for name, row in table.iterrows():
            mlflow.log_metrics(
                {f"{str(name).replace('/', '_')}/{k}": float(v) for k, v in row.items()}
            )
        mlflow.log_text(table.round(4).to_csv(), "comparison.csv")
        mlflow.log_figure(_calibration_and_lift(truth, scores), "calibration_and_lift.png")
        with tempfile.TemporaryDirectory() as tmp:
            saved = model.save(Path(tmp) / "churn")
            version = register(
                client,
                CHURN,
                code=PYFUNC_CODE,
                artifacts={"churn": saved},
                # The median test customer: the shape of an input, no real person's row.
                input_example=X_test.median().to_frame().T.astype(X_test.dtypes.to_dict()),
            )
    return ChurnReport(table, version, run.info.run_id, cuts)


def _calibration_and_lift(truth: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    fig = Figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    for name, p in scores.items():
        bins = np.minimum((p * 10).astype(int), 9)
        frame = pd.DataFrame({"bin": bins, "p": p, "y": truth}).groupby("bin").mean()
        left.plot(frame["p"], frame["y"], marker="o", label=name)
        order = np.argsort(-p)
        captured = np.cumsum(truth[order]) / max(truth.sum(), 1)
        right.plot(np.arange(1, len(p) + 1) / len(p), captured, label=name)
    left.plot([0, 1], [0, 1], color="grey", linestyle=":")
    left.set_title("calibration: predicted vs observed churn")
    right.plot([0, 1], [0, 1], color="grey", linestyle=":")
    right.set_title("lift: share of churners found")
    left.legend(fontsize=8)
    fig.tight_layout()
    return fig
