"""Offline evaluation: a global temporal split, full-catalogue ranking, segments.

Train on events before the cutoff; the test is what each customer bought in the window
after it. Every model ranks the whole catalogue (no sampled negatives), under the repeat
policy the service applies by default (what is measured is what is served). Reported:

- `all`: customers with history before the cutoff, every item: the default answer;
- `repeat` / `new`: the same lists, truth cut to the items the customer had bought /
  had not interacted with before (for `new` the ranking leaves out what they saw);
- `any`: every item ranked with no repeat policy (the `include_purchased` answer);
- `warm` / `cold`: customers with at least / fewer than `cold_items` items before the
  cutoff. Customers with no history at all cannot be ranked by any model (the service
  gives them a cold-start answer) and are only counted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from features import columns as c
from features import progress
from features.event_log import EngineLog
from features.interactions import InteractionWeights
from features.matrix import InteractionMatrix, matrix_at, reading, with_holdout
from models.base import Filters, Recommender
from training.metrics import coverage, ranking_metrics

KS = (5, 10, 20, 50)
#: Consecutive windows before the cutoff that a learning-to-rank model trains on. Three
#: windows instead of one changed NDCG@10 by less than 0.001 on both benchmark data sets
#: at twice the training time (see the session notes), so one it is.
HOLDOUT_WINDOWS = 1
#: Test customers every model is scored on: a fixed, seeded sample when there are more,
#: so the comparison's time and memory do not grow with the store (the size is logged).
EVAL_CUSTOMERS = 20_000
EVAL_SEED = 0


@dataclass(frozen=True)
class TemporalSplit:
    """Train on events before `cutoff`; test on purchases in [cutoff, end)."""

    cutoff: pd.Timestamp
    end: pd.Timestamp

    @classmethod
    def last_days(cls, events: pd.DataFrame | pd.Timestamp, days: float) -> TemporalSplit:
        """The last `days` of the history (`events`, or the time of the last event) as
        the test window."""
        last = events if isinstance(events, pd.Timestamp) else events[c.TS].max()
        end = last + pd.Timedelta(microseconds=1)
        return cls(end - pd.Timedelta(days=days), end)


@dataclass(frozen=True)
class TestSet:
    """Truth for the customers the models can rank (rows of the training matrix)."""

    rows: np.ndarray
    relevant: csr_matrix
    relevant_new: csr_matrix
    relevant_repeat: csr_matrix
    warm: np.ndarray
    unknown_customers: int
    #: When the lists are for (the cutoff): purchase ages count up to it.
    at: pd.Timestamp
    #: Customers with a purchase in the test window the models could rank, before the
    #: sample (`rows` is all of them or a seeded sample of `EVAL_CUSTOMERS`).
    eligible: int = 0


def make_test_set(
    events: pd.DataFrame | EngineLog,
    split: TemporalSplit,
    train: InteractionMatrix,
    cold_items: int = 5,
    max_customers: int = EVAL_CUSTOMERS,
) -> TestSet:
    """Purchases in the test window, on the training matrix's axes, for every customer
    who made one, or a seeded sample of `max_customers` of them when there are more."""
    with reading(events) as log:
        window = log.purchases(split.cutoff, split.end)
    users = pd.Index(train.users).get_indexer(pd.Index(window[c.PERSON_ID].astype(str)))
    items = pd.Index(train.items).get_indexer(pd.Index(window[c.ITEM_ID].astype(str)))
    unknown = int(window.loc[users < 0, c.PERSON_ID].nunique())
    keep = (users >= 0) & (items >= 0)
    truth = csr_matrix((np.ones(int(keep.sum())), (users[keep], items[keep])), shape=train.shape)
    truth.data[:] = 1.0  # duplicates were summed; relevance is binary
    rows = np.unique(users[keep])
    eligible = len(rows)
    if eligible > max_customers:
        sample = np.random.default_rng(EVAL_SEED).choice(rows, max_customers, replace=False)
        rows = np.sort(sample)
    relevant = truth[rows]
    seen = (train.weights[rows] > 0).astype(np.float64)
    relevant_new = (relevant - relevant.multiply(seen)).tocsr()
    relevant_new.eliminate_zeros()
    bought = (train.purchase_age_days[rows] > 0).astype(np.float64)
    relevant_repeat = relevant.multiply(bought).tocsr()
    relevant_repeat.eliminate_zeros()
    history = np.asarray((train.weights[rows] > 0).sum(axis=1)).ravel()
    return TestSet(
        rows,
        relevant.tocsr(),
        relevant_new,
        relevant_repeat,
        history >= cold_items,
        unknown,
        split.cutoff,
        eligible,
    )


def evaluate(model: Recommender, test: TestSet, n_items: int) -> dict[str, float]:
    """Every metric for one fitted model, keyed `<segment>/<metric>@<k>`."""
    k = max(KS)
    answers = [Filters.default_answer(test.at), Filters(), Filters(exclude_seen=True)]
    (ranked, _), (ranked_any, _), (ranked_new, _) = model.rank_each(test.rows, k, answers)
    out: dict[str, float] = {}
    everyone = np.ones(len(test.rows), dtype=bool)
    segments = {
        "all": (ranked, test.relevant, everyone),
        "any": (ranked_any, test.relevant, everyone),
        "repeat": (ranked, test.relevant_repeat, everyone),
        "warm": (ranked, test.relevant, test.warm),
        "cold": (ranked, test.relevant, ~test.warm),
        "new": (ranked_new, test.relevant_new, everyone),
    }
    for segment, (ranks, truth, who) in segments.items():
        for kk in KS:
            for name, value in ranking_metrics(ranks[who], truth[who], kk).items():
                out[f"{segment}/{name}"] = value
    for kk in KS:
        out[f"all/coverage@{kk}"] = coverage(ranked, n_items, kk)
    return out


def evaluate_folded(
    model: Recommender,
    events: pd.DataFrame | EngineLog,
    split: TemporalSplit,
    *,
    catalogue: pd.DataFrame | None = None,
    weights: InteractionWeights | None = None,
) -> dict[str, float]:
    """Every metric of an already fitted model on `split`: each customer's history at the
    cutoff is folded in (no refit), on the model's own item axis. A model fitted on events
    past the cutoff has seen part of the test window: its figures are then optimistic."""
    days = (split.end - split.cutoff).total_seconds() / 86_400
    with reading(events) as log:
        history = matrix_at(
            log, split.cutoff, catalogue, weights, items=model.items_.ids, horizon_days=days
        )
        test = make_test_set(log, split, history)
    return evaluate(model.recommend_view(history), test, len(history.items))


def compare(
    models: Mapping[str, Recommender],
    events: pd.DataFrame | EngineLog,
    split: TemporalSplit,
    *,
    catalogue: pd.DataFrame | None = None,
    weights: InteractionWeights | None = None,
    holdout_windows: int = HOLDOUT_WINDOWS,
) -> tuple[pd.DataFrame, dict[str, Recommender]]:
    """Fit every model on the events before the cutoff and evaluate them side by side.

    Returns one row per model (metrics, `train_s`, customer counts) and the fitted models.
    """
    with reading(events) as log:
        train = with_holdout(
            log,
            as_of=split.cutoff,
            holdout_days=(split.end - split.cutoff).total_seconds() / 86_400,
            windows=holdout_windows,
            catalogue=catalogue,
            weights=weights,
        )
        test = make_test_set(log, split, train)
    rows, fitted = [], {}
    report = progress.current()
    report.start(f"fitting and scoring {len(models)} models", len(models))
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(train)
        train_s = time.perf_counter() - started
        metrics = evaluate(model, test, len(train.items))
        rows.append({"model": name, **metrics, "train_s": train_s})
        fitted[name] = model
        report.advance(1)
    table = pd.DataFrame(rows).set_index("model")
    table["customers"] = len(test.rows)
    table["eligible_customers"] = test.eligible
    table["warm_customers"] = int(test.warm.sum())
    table["unknown_customers"] = test.unknown_customers
    return table, fitted
