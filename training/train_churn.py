"""`omni train churn`: out-of-time training, calibration, baselines, MLflow.

Cutoffs, newest last: `train_cutoffs` monthly cutoffs to learn from, then a validation
cutoff (calibration, bands) one horizon before the test cutoff `as_of`, whose own horizon
must be fully in the data. Features are computed strictly before each cutoff, labels in
the horizon after it; every training and validation horizon ends at or before the test
cutoff, so the test metrics are out of time. The model registered is then refit on the
same layout moved one horizon later (validation at the test cutoff, the latest cutoff
whose horizon is complete): the metrics are those of the earlier fit, the model served
has seen the latest labels. Horizon, lookback and the refit's cutoff are saved with it.
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

from features import churn_sql, progress
from features import columns as c
from features.churn import CHURNED, churn_features, churn_labels, feature_frame, label_series
from features.churn_sql import micros
from features.engines import EVENTS, BatchEngine
from features.point_in_time import at_cutoff, known_view
from models.churn import ChurnModel
from models.churn_baselines import BGNBDBaseline, RecencyBaseline
from service.registry import CHURN
from service.settings import Settings
from service.storage.reader import load_table
from training.batch import EngineName, batch_engine, live_since, time_range
from training.churn_metrics import churn_metrics
from training.provenance import log_events_input
from training.tracking import register, setup

PYFUNC_CODE = Path(__file__).with_name("churn_pyfunc.py")
STEP_DAYS = 30
#: BG/NBD penalizers tried in turn until one fits (lifetimes' default is 0).
BGNBD_PENALIZERS = (0.001, 0.01, 0.1, 1.0)


class NotEnoughHistory(ValueError):
    """The history is too short for training cutoffs, validation and an observed horizon."""


@dataclass(frozen=True)
class ChurnReport:
    table: pd.DataFrame
    version: str
    run_id: str
    cutoffs: list[pd.Timestamp]
    #: The cutoffs of the model registered (training ..., validation = the test cutoff).
    refit_cutoffs: list[pd.Timestamp]


def cutoffs_for(
    events: pd.DataFrame | tuple[pd.Timestamp, pd.Timestamp],
    as_of: pd.Timestamp | None,
    horizon_days: float,
    lookback_days: float,
    train_cutoffs: int,
) -> list[pd.Timestamp]:
    """Training cutoffs (STEP_DAYS apart), then validation (one horizon before the test),
    then test (= as_of): every training and validation horizon ends by the test cutoff.
    `events`: the events, or the first and last event's time."""
    first, last = events if isinstance(events, tuple) else (events[c.TS].min(), events[c.TS].max())
    test = as_of if as_of is not None else (last - pd.Timedelta(days=horizon_days)).normalize()
    if test + pd.Timedelta(days=horizon_days) > last + pd.Timedelta(days=1):
        raise NotEnoughHistory(
            f"the {horizon_days:g}-day horizon after {test:%Y-%m-%d} is not in the data "
            f"(last event {last:%Y-%m-%d})"
        )
    validation = test - pd.Timedelta(days=horizon_days)
    cuts = [
        *(validation - pd.Timedelta(days=STEP_DAYS * i) for i in range(train_cutoffs, 0, -1)),
        validation,
        test,
    ]
    if cuts[0] - pd.Timedelta(days=min(lookback_days, 60)) < first:
        raise NotEnoughHistory(
            f"need history from {cuts[0] - pd.Timedelta(days=60):%Y-%m-%d} for "
            f"{train_cutoffs} training cutoffs (first event {first:%Y-%m-%d})"
        )
    return cuts


def dataset(
    events: pd.DataFrame,
    cutoffs: list[pd.Timestamp],
    horizon_days: float,
    lookback_days: float,
    customers: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Features and labels for every cutoff, stacked, from a frame of events: each
    cutoff's from the events as the store knew them then (`features.point_in_time`; with
    `customers`, persons as known then too). `engine_dataset` does the same on an engine."""
    xs, ys = [], []
    for cut in cutoffs:
        known = at_cutoff(events, cut, customers)
        X = churn_features(known, as_of=cut, lookback_days=lookback_days)
        xs.append(X)
        y = churn_labels(known, as_of=cut, lookback_days=lookback_days, horizon_days=horizon_days)
        ys.append(y.reindex(X.index))
    return pd.concat(xs), pd.concat(ys)


def engine_dataset(
    engine: BatchEngine,
    cutoffs: list[pd.Timestamp],
    horizon_days: float,
    lookback_days: float,
    customers: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.Series]:
    """`dataset` on a batch engine holding the events: per cutoff, the links known then
    are gathered by the engine, stitched into persons here (one row per id, not per
    event), and the features and labels computed by the engine from the events known then."""
    xs, ys = [], []
    arrived = live_since(engine)
    report = progress.current()
    report.start(f"churn features at {len(cutoffs)} cutoff(s)", len(cutoffs))
    for cut in cutoffs:
        at = micros(cut)
        known_view(engine, EVENTS, cut, customers, arrived, "events_known")
        found = engine.query(churn_sql.labelled("events_known", at, lookback_days, horizon_days))
        X = feature_frame(found.drop(columns=CHURNED))
        xs.append(X)
        ys.append(label_series(found).set_axis(X.index))
        report.advance(1)
    return pd.concat(xs), pd.concat(ys)


def train_churn(
    engine: Engine,
    settings: Settings,
    *,
    as_of: datetime | None = None,
    horizon_days: float = 90,
    lookback_days: float = 365,
    train_cutoffs: int = 3,
    batch: EngineName | None = None,
    lake: Path | None = None,
) -> ChurnReport:
    """Train, compare with the baselines on the test cutoff, log and register. Features
    are computed by the batch engine `batch` (default: the settings'), from `lake` when
    given."""
    with batch_engine(engine, settings, name=batch, lake=lake) as on:
        window = (horizon_days, lookback_days, train_cutoffs)
        return _train(engine, on, settings, as_of, *window, lake=lake or settings.lake_dir)


def _train(
    engine: Engine,
    on: BatchEngine,
    settings: Settings,
    as_of: datetime | None,
    horizon_days: float,
    lookback_days: float,
    train_cutoffs: int,
    *,
    lake: Path | None,
) -> ChurnReport:
    span = time_range(on)
    if span is None:
        raise NotEnoughHistory("the store holds no events")
    cuts = cutoffs_for(
        span, pd.Timestamp(as_of) if as_of else None, horizon_days, lookback_days, train_cutoffs
    )
    people = load_table(engine, "customers")
    window = {"horizon_days": horizon_days, "lookback_days": lookback_days}
    X, y = engine_dataset(on, cuts[:-2], **window, customers=people)
    X_val, y_val = engine_dataset(on, cuts[-2:-1], **window, customers=people)
    X_test, y_test = engine_dataset(on, cuts[-1:], **window, customers=people)
    evaluated = ChurnModel().fit(X, y, X_val, y_val, **window, as_of=cuts[-2])
    scores: dict[str, np.ndarray | None] = {
        "recency": RecencyBaseline().fit(X, y).predict_proba(X_test),
        "bg/nbd": bgnbd_scores(X_test, horizon_days),
        "omni": evaluated.predict_proba(X_test),
    }
    truth = y_test.to_numpy().astype(int)
    table = comparison(truth, scores)
    # The model served: the same layout one horizon later (validation at the test cutoff).
    shift = pd.Timedelta(days=horizon_days)
    refit_cuts = [cut + shift for cut in cuts[:-1]]
    X_refit, y_refit = engine_dataset(on, refit_cuts[:-1], **window, customers=people)
    model = ChurnModel().fit(X_refit, y_refit, X_test, y_test, **window, as_of=refit_cuts[-1])
    client = setup(settings, CHURN)
    with mlflow.start_run(run_name=f"churn at {cuts[-1]:%Y-%m-%d}") as run:
        mlflow.log_params(
            {
                "engine": on.name,
                "horizon_days": horizon_days,
                "lookback_days": lookback_days,
                "cutoffs": ",".join(f"{cut:%Y-%m-%d}" for cut in cuts),
                "refit_cutoffs": ",".join(f"{cut:%Y-%m-%d}" for cut in refit_cuts),
                "calibration": model.calibration_,
                **{f"omni.{k}": v for k, v in model.get_params().items()},
            }
        )
        log_events_input(engine, on, until=None, lake=lake)
        for name, row in table.iterrows():
            mlflow.log_metrics(
                {f"{str(name).replace('/', '_')}/{k}": float(v) for k, v in row.items()}
            )
        mlflow.log_text(table.round(4).to_csv(), "comparison.csv")
        fitted = {name: p for name, p in scores.items() if p is not None}
        mlflow.log_figure(_calibration_and_lift(truth, fitted), "calibration_and_lift.png")
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
    return ChurnReport(table, version, run.info.run_id, cuts, refit_cuts)


def bgnbd_scores(X: pd.DataFrame, horizon_days: float) -> np.ndarray | None:
    """BG/NBD's churn scores, retried at larger penalizers when the fit does not converge
    or gives no finite score; None when no penalizer does (reported as failed)."""
    for penalizer in BGNBD_PENALIZERS:
        try:
            fitted = BGNBDBaseline(horizon_days=horizon_days, penalizer=penalizer).fit(X)
            scores = fitted.predict_proba(X)
        # lifetimes' ConvergenceError is a ValueError.
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            continue
        if np.isfinite(scores).all():
            return scores
    return None


def comparison(truth: np.ndarray, scores: dict[str, np.ndarray | None]) -> pd.DataFrame:
    """One row of metrics per model; a model that failed to fit has NaN metrics and
    `fitted` 0 (the others 1)."""
    rows = {}
    for name, p in scores.items():
        metrics = churn_metrics(truth, p) if p is not None else None
        rows[name] = {**(metrics or {}), "fitted": 0.0 if p is None else 1.0}
    return pd.DataFrame(rows).T


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
