"""The quality gate of `omni promote`: a version is refused, with why, when it does not fit
the store (`service.model_checks`) or is worse than the version the alias points at now by
more than a margin on the candidate's own holdout.

The candidate's figure is the one its training logged (fitted on the events before its
cutoff, scored on the window after it). The current version is scored on that same window
from the same store: the recommender folds in each customer's history at the cutoff, the
churn model scores the features at the test cutoff against the labels of the horizon after
it. A current recommender fitted on events past the cutoff has seen the window it would be
judged on (a retrain every week tests on weeks the current version learnt from): its own
configuration is then fitted on the candidate's training window and scored as the
candidate was, so the two compare on equal terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from mlflow import MlflowClient
from sqlalchemy import Engine

from features.point_in_time import at_cutoff
from service.model_checks import churn_misfit, recommender_misfit
from service.registry import CHURN, RECOMMENDER, NoSuchModelVersion, load_churn, load_recommender
from service.registry import version_of as aliased
from service.storage.reader import load_events, load_table
from training.churn_metrics import churn_metrics
from training.evaluate import TemporalSplit, compare, evaluate_folded
from training.train_churn import dataset

NOTHING_TO_COMPARE = "no version to compare with on the same holdout"
#: The figure each kind of model is compared by (as its training run logs it).
RECOMMENDER_METRIC, CHURN_METRIC = "all/ndcg_at_10", "omni/auc"


@dataclass(frozen=True)
class Verdict:
    """Why the version may not be promoted (empty: it may), and what was compared."""

    refusals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def recommender_gate(
    engine: Engine, client: MlflowClient, version: str, alias: str, margin: float
) -> Verdict:
    candidate, _ = load_recommender(client, alias, version)
    with engine.connect() as conn:
        misfit = recommender_misfit(candidate, conn)
    refusals = [f"it does not fit this store: {misfit}"] if misfit else []
    against = _against(client, RECOMMENDER, version, alias, RECOMMENDER_METRIC, "cutoff")
    if against is None:
        return Verdict(refusals, [NOTHING_TO_COMPARE])
    current, ours, params = against
    cutoff = pd.Timestamp(params["cutoff"])
    split = TemporalSplit(cutoff, cutoff + pd.Timedelta(days=float(params["test_days"])))
    served, _ = load_recommender(client, alias, current)
    events = at_cutoff(
        load_events(engine, until=split.end.to_pydatetime()),
        split.cutoff,
        load_table(engine, "customers"),
    )
    catalogue = load_table(engine, "catalogue")
    notes = []
    if served.as_of_ > split.cutoff:  # it has seen the window: its configuration is judged
        table, _ = compare({"current": served.unfitted()}, events, split, catalogue=catalogue)
        theirs = float(table["all/ndcg@10"].iloc[0])
        notes = [f"version {current} saw the test window: its {served.name} refitted at the cutoff"]
    else:
        theirs = evaluate_folded(served, events, split, catalogue=catalogue)["all/ndcg@10"]
    verdict = _weighed(refusals, "NDCG@10", ours, theirs, current, alias, margin)
    return Verdict(verdict.refusals, [*verdict.notes, *notes])


def churn_gate(
    engine: Engine, client: MlflowClient, version: str, alias: str, margin: float
) -> Verdict:
    candidate, _ = load_churn(client, alias, version)
    misfit = churn_misfit(candidate)
    refusals = [f"it cannot serve: {misfit}"] if misfit else []
    against = _against(client, CHURN, version, alias, CHURN_METRIC, "cutoffs")
    if against is None:
        return Verdict(refusals, [NOTHING_TO_COMPARE])
    current, ours, params = against
    served, _ = load_churn(client, alias, current)
    if served.horizon_days_ != candidate.horizon_days_:
        note = f"version {current} predicts another horizon ({served.horizon_days_:g} days)"
        return Verdict(refusals, [note])
    test = pd.Timestamp(params["cutoffs"].split(",")[-1], tz="UTC")
    horizon, lookback = candidate.horizon_days_, candidate.lookback_days_
    events = load_events(engine, until=(test + pd.Timedelta(days=horizon)).to_pydatetime())
    X, y = dataset(events, [test], horizon, lookback, load_table(engine, "customers"))
    truth = y.to_numpy().astype(int)
    theirs = churn_metrics(truth, served.predict_proba(X[served.features_]))["auc"]
    return _weighed(refusals, "AUC", ours, theirs, current, alias, margin)


def _against(
    client: MlflowClient, name: str, version: str, alias: str, metric: str, param: str
) -> tuple[str, float, dict[str, str]] | None:
    """The version `alias` points at now, the candidate's logged `metric` and its run's
    parameters; None when there is nothing to weigh (no other version aliased, or a
    candidate run without the figure or the holdout's `param`)."""
    try:
        current = aliased(client, name, alias)
    except NoSuchModelVersion:
        return None
    run = client.get_run(str(client.get_model_version(name, version).run_id))
    ours = run.data.metrics.get(metric)
    if current == version or ours is None or param not in run.data.params:
        return None
    return current, float(ours), dict(run.data.params)


def _weighed(
    refusals: list[str],
    metric: str,
    ours: float,
    theirs: float,
    current: str,
    alias: str,
    margin: float,
) -> Verdict:
    note = f"{metric} {ours:.4f} against {theirs:.4f} for version {current} ('{alias}')"
    if ours < theirs * (1 - margin):
        refusals = [*refusals, f"it is worse than the current version: {note}, more than "
                    f"{margin:.0%} below"]  # fmt: skip
    return Verdict(refusals, [note])
