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
from typing import Any

import mlflow
import pandas as pd
from matplotlib.figure import Figure
from sqlalchemy import Engine

from features import columns as c
from features import progress
from features.interactions import InteractionWeights
from features.matrix import with_holdout
from features.point_in_time import at_cutoff
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
from service.storage.reader import load_events, load_table
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
) -> TrainReport:
    """Train, compare, log and register; raises `NotEnoughData` on a too-short history."""
    read_at = datetime.now(UTC)  # what arrives after this, the model has not seen
    events = load_events(engine, until=until)
    if events.empty or events[c.TS].max() - events[c.TS].min() <= pd.Timedelta(days=2 * test_days):
        raise NotEnoughData(
            f"need more than {2 * test_days:g} days of events to train and test "
            f"(have {len(events):,} events)"
        )
    catalogue = load_table(engine, "catalogue")
    split = TemporalSplit.last_days(events, test_days)
    # Judged on what the store knew at the cutoff: late events and later merges left out.
    known = at_cutoff(events, split.cutoff, load_table(engine, "customers"))
    tuned: dict[str, dict[str, Any]] = {}
    if tune_seconds > 0:
        tuned = tune(known, split, budget_s=tune_seconds, catalogue=catalogue, weights=weights)
    models = candidate_models(tuned=tuned)
    table = compare(models, known, split, catalogue=catalogue, weights=weights)[0]
    del known, models  # the fitted candidates and the cut history: not needed to refit
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
        log_events_input(engine, events, until=until)
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
