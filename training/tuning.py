"""Hyper-parameter search (optuna) for ALS and the two-stage ranker, within a time budget.

Tuning never sees the test window: it fits on events before `cutoff - window` and scores
NDCG@10 on the window just before the test cutoff.
"""

from __future__ import annotations

import logging
from typing import Any

import optuna
import pandas as pd

from features.event_log import EngineLog
from features.interactions import InteractionWeights
from features.matrix import with_holdout
from models import ALS, Recommender, TwoStage
from training.evaluate import HOLDOUT_WINDOWS, TemporalSplit, evaluate, make_test_set

OBJECTIVE = "all/ndcg@10"


def tune(
    events: pd.DataFrame | EngineLog,
    split: TemporalSplit,
    *,
    budget_s: float,
    catalogue: pd.DataFrame | None = None,
    weights: InteractionWeights | None = None,
    seed: int = 0,
    trials: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Best parameters found for `als` and `two-stage`, half the budget each.

    `trials` caps the number of trials per model (the same seed and cap give the same
    result); the time budget always applies.
    """
    window = split.end - split.cutoff
    validation = TemporalSplit(split.cutoff - window, split.cutoff)
    days = window.total_seconds() / 86_400
    train = with_holdout(
        events,
        as_of=validation.cutoff,
        holdout_days=days,
        windows=HOLDOUT_WINDOWS,
        catalogue=catalogue,
        weights=weights,
    )
    test = make_test_set(events, validation, train)
    optuna.logging.set_verbosity(logging.WARNING)

    def search(make: Any) -> dict[str, Any]:
        def objective(trial: optuna.Trial) -> float:
            model: Recommender = make(trial)
            model.fit(train)
            return evaluate(model, test, len(train.items))[OBJECTIVE]

        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
        )
        study.optimize(objective, timeout=budget_s / 2, n_trials=trials)
        return dict(study.best_params)

    return {
        "als": search(
            lambda t: ALS(
                factors=t.suggest_categorical("factors", [16, 32, 64, 128]),
                regularization=t.suggest_float("regularization", 1e-3, 1.0, log=True),
                alpha=t.suggest_float("alpha", 1.0, 50.0, log=True),
                iterations=t.suggest_int("iterations", 5, 30),
                random_state=seed,
            )
        ),
        "two-stage": search(
            lambda t: TwoStage(
                candidates=t.suggest_int("candidates", 20, 100),
                n_estimators=t.suggest_int("n_estimators", 30, 300),
                learning_rate=t.suggest_float("learning_rate", 0.01, 0.2, log=True),
                num_leaves=t.suggest_int("num_leaves", 4, 63),
                min_child_samples=t.suggest_int("min_child_samples", 5, 100),
                random_state=seed,
            )
        ),
    }
