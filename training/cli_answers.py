"""`omni score answers`: the batch layer writes every person's answers into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.registry import NoSuchModelVersion
from service.settings import Settings
from training.answers import Stored, churn_answers_current, store_churn_answers
from training.batch import EngineName
from training.cli_common import (
    DatabaseOption,
    EngineOption,
    LakeOption,
    console,
    engine_errors,
    err,
    progress_shown,
    settings_for,
    store,
)


def refresh_answers(
    settings: Settings,
    *,
    only_if_stale: bool = False,
    batch: EngineName | None = None,
    lake: Path | None = None,
) -> None:
    """Score every person with the served churn model into the store (with `only_if_stale`,
    only when the stored answers are of another version or too old), on the batch engine
    `batch` (from `lake` when given). Says what it did."""
    with store(settings.database_url) as engine:
        try:
            if only_if_stale and churn_answers_current(engine, settings):
                return
            done = store_churn_answers(engine, settings, batch=batch, lake=lake)
        except NoSuchModelVersion:
            return  # nothing promoted yet: the service answers 503 until something is
    _say(done)


def score_answers(
    alias: Annotated[str, typer.Option(help="Registry alias of the model to use.")] = "champion",
    engine: EngineOption = None,
    lake: LakeOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Score every person once with the model ALIAS points at and store the answers, which
    the service then reads instead of each person's history (run it e.g. nightly; with
    --engine spark the population is scored on Spark's executors)."""
    settings = settings_for(database_url).model_copy(update={"model_alias": alias})
    try:
        with store(settings.database_url) as db, progress_shown(), engine_errors():
            done = store_churn_answers(
                db, settings, batch=None if engine is None else engine.value, lake=lake
            )
    except NoSuchModelVersion as exc:
        err.print(f"[red]error:[/red] {exc}; train one with: omni train churn")
        raise typer.Exit(1) from exc
    _say(done)


def _say(done: Stored) -> None:
    console.print(
        f"churn answers stored: {done.rows:,} persons, version {done.model_version}, "
        f"as of {done.as_of:%Y-%m-%d %H:%M} UTC, in {done.seconds:.1f} s"
    )
