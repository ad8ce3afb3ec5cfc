"""`omni train recommender`: fit every model, compare them honestly, register the best.

1. Read identity-resolved events before `until` and the catalogue.
2. Hold out the last `test_days` as the test window; fit every candidate on what comes
   before, evaluate all of them in one harness (`training.evaluate`).
3. Refit the best model (by NDCG@10 of the default answer, the repeat policy applied, over
   all customers) on every event before `until`,
   log the run to MLflow (parameters, every metric, the table, a metric@K plot, the data
   fingerprint) and register the model, aliased `challenger`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from sqlalchemy import Engine

from features import columns as c
from features import progress
from features.engines import EVENTS, BatchEngine
from features.event_log import EngineLog
from features.interactions import InteractionWeights
from features.matrix import with_holdout
from features.point_in_time import known_view, resolved_sql
from models import (
    ALS,
    BPR,
    EASE,
    ItemKNN,
    RecentPopularity,
    Recommender,
    Repurchase,
    TifuKNN,
    TwoStage,
)
from service.registry import READ_AT_TAG, RECOMMENDER
from service.settings import Settings
from service.storage.identities import load_identities
from service.storage.reader import load_table
from training.batch import EngineName, batch_engine, live_since, time_range
from training.evaluate import HOLDOUT_WINDOWS, KS, TemporalSplit, compare
from training.provenance import log_events_input
from training.tracking import (
    comparison_markdown,
    log_recommender,
    metric_key,
    setup,
)
from training.tuning import tune

#: The metric that picks the model to register.
SELECT_BY = "all/ndcg@10"
#: Columns of the printed comparison, and their short headings.
SHOWN = {
    "all/recall@20": "R@20",
    "all/ndcg@10": "N@10",
    "all/map@10": "M@10",
    "repeat/ndcg@10": "rep",
    "new/ndcg@10": "new",
    "any/ndcg@10": "any",
    "warm/ndcg@10": "warm",
    "cold/ndcg@10": "cold",
    "all/coverage@20": "cov",
    "train_s": "fit s",
}  # fmt: skip


class NotEnoughData(ValueError):
    """Too few events to split into training and test windows."""


@dataclass(frozen=True)
class TrainReport:
    """What a training run produced."""

    table: pd.DataFrame
    chosen: str
    version: str
    run_id: str
    split: TemporalSplit


def candidate_models(
    seed: int = 0, tuned: dict[str, dict[str, Any]] | None = None
) -> dict[str, Recommender]:
    """Every model trained and compared by `omni train recommender` (with tuned parameters)."""
    tuned = tuned or {}
    return {
        "popularity": RecentPopularity(),
        "popularity-store": RecentPopularity(scope="store"),
        "popularity-category": RecentPopularity(scope="category"),
        "repurchase": Repurchase(),
        "tifu-knn": TifuKNN(),
        "itemknn": ItemKNN(),
        "ease": EASE(),
        "als": ALS(**{"random_state": seed, **tuned.get("als", {})}),
        "bpr": BPR(random_state=seed),
        "two-stage": TwoStage(**{"random_state": seed, **tuned.get("two-stage", {})}),
    }


def train_recommender(
    engine: Engine,
    settings: Settings,
    *,
    until: datetime | None = None,
    test_days: float = 28,
    weights: InteractionWeights | None = None,
    tune_seconds: float = 0,
    batch: EngineName | None = None,
    lake: Path | None = None,
) -> TrainReport:
    """Train, compare, log and register; raises `NotEnoughData` on a too-short history.
    The matrices' inputs are computed by the batch engine `batch` (default: the
    settings'), from `lake` when given; the models are fitted here, on the driver."""
    read_at = datetime.now(UTC)  # what arrives after this, the model has not seen
    with batch_engine(engine, settings, name=batch, lake=lake, until=until) as on:
        folder = lake or settings.lake_dir
        return _train(
            engine, on, settings, read_at, until, test_days, weights, tune_seconds, folder
        )


def _train(
    engine: Engine,
    on: BatchEngine,
    settings: Settings,
    read_at: datetime,
    until: datetime | None,
    test_days: float,
    weights: InteractionWeights | None,
    tune_seconds: float,
    lake: Path | None,
) -> TrainReport:
    span = time_range(on)
    if span is None or span[1] - span[0] <= pd.Timedelta(days=2 * test_days):
        rows = int(on.query(f"SELECT COUNT(*) AS n FROM {EVENTS}")["n"].iloc[0])
        raise NotEnoughData(
            f"need more than {2 * test_days:g} days of events to train and test "
            f"(have {rows:,} events)"
        )
    catalogue = load_table(engine, "catalogue")
    with engine.connect() as conn:
        on.register("persons_stored", load_identities(conn)[[c.ID_TYPE, c.ID_VALUE, c.PERSON_ID]])
    arrived = live_since(on)
    on.view("events_resolved", resolved_sql(EVENTS, "persons_stored"), reused=True)
    events = EngineLog(on, "events_resolved", arrived)
    split = TemporalSplit.last_days(span[1], test_days)
    # Judged on what the store knew at the cutoff: late events and later merges left out.
    customers = load_table(engine, "customers")
    known = EngineLog(
        on, known_view(on, EVENTS, split.cutoff, customers, arrived, "events_at_cutoff"), arrived
    )
    tuned: dict[str, dict[str, Any]] = {}
    if tune_seconds > 0:
        tuned = tune(known, split, budget_s=tune_seconds, catalogue=catalogue, weights=weights)
    models = candidate_models(tuned=tuned)
    table = compare(models, known, split, catalogue=catalogue, weights=weights)[0]
    del models  # the fitted candidates: not needed to refit
    chosen = str(table[SELECT_BY].idxmax())
    as_of = pd.Timestamp(until) if until else split.end
    final = candidate_models(tuned=tuned)[chosen]
    everything = with_holdout(
        events,
        as_of=as_of,
        holdout_days=test_days,
        windows=HOLDOUT_WINDOWS,
        catalogue=catalogue,
        weights=weights,
    )
    report = progress.current()
    report.start(f"fitting {chosen} on everything", 1)
    final.fit(everything)
    report.advance(1)
    del everything
    client = setup(settings, RECOMMENDER)
    with mlflow.start_run(run_name=f"recommender until {as_of:%Y-%m-%d}") as run:
        mlflow.log_params(
            {
                "engine": on.name,
                "chosen": chosen,
                "select_by": SELECT_BY,
                "test_days": test_days,
                "tune_seconds": tune_seconds,
                "cutoff": split.cutoff.isoformat(),
                "eval_customers": int(table["customers"].iloc[0]),
                "eval_eligible_customers": int(table["eligible_customers"].iloc[0]),
                "as_of": as_of.isoformat(),
                **{f"{chosen}.{k}": v for k, v in final.get_params().items()},
                **{f"tuned.{m}.{k}": v for m, found in tuned.items() for k, v in found.items()},
            }
        )
        log_events_input(engine, on, until=until, lake=lake)
        mlflow.set_tags({READ_AT_TAG: read_at.isoformat()})
        values = table.astype(float).to_dict(orient="index")
        for name, row in values.items():
            mlflow.log_metrics({f"{name}/{metric_key(str(col))}": v for col, v in row.items()})
        mlflow.log_metrics({metric_key(str(col)): v for col, v in values[chosen].items()})
        mlflow.log_text(comparison_markdown(table, list(SHOWN)), "comparison.md")
        mlflow.log_text(table.to_csv(), "comparison.csv")
        mlflow.log_figure(_metric_at_k(table), "metric_at_k.png")
        version = log_recommender(final, client)
    return TrainReport(table, chosen, version, run.info.run_id, split)


def _metric_at_k(table: pd.DataFrame) -> Figure:
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("ndcg", "recall"), strict=True):
        for name, row in table.iterrows():
            ax.plot(KS, [row[f"all/{metric}@{k}"] for k in KS], marker="o", label=str(name))
        ax.set_xlabel("K")
        ax.set_title(f"{metric}@K, all customers")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
