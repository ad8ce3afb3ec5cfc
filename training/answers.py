"""The batch layer's answers: every person scored once per model version, into the store.

Run at promotion (`omni promote churn`), before `omni serve` starts when the served
version has none, and on demand (`omni score answers`, e.g. nightly). The service then
reads one row per request instead of the person's history (service.churn_scoring).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from service.registry import CHURN, connect, load_churn, version_of
from service.settings import Settings
from service.storage import answers
from service.storage.codec import micros
from service.storage.identities import load_identities
from training.batch import EngineName, batch_engine
from training.churn_scores import persons_seen, score_everyone


@dataclass(frozen=True)
class Stored:
    kind: str
    model_version: str
    rows: int
    as_of: datetime
    seconds: float


def store_churn_answers(
    engine: Engine,
    settings: Settings,
    *,
    alias: str | None = None,
    now: datetime | None = None,
    batch: EngineName | None = None,
    lake: Path | None = None,
) -> Stored:
    """Score every person with an event by the churn model `alias` points at (default: the
    served alias), as of `now` (default: the settings' clock), and replace the stored set.
    The features are computed and the population scored by the batch engine `batch`
    (default: the settings'), from `lake` when given: no person's history is held here.

    Raises `service.registry.NoSuchModelVersion` when no version has the alias.
    """
    started = time.perf_counter()
    model, version = load_churn(connect(settings), alias or settings.model_alias)
    now = now or settings.now()
    made_at = micros(datetime.now(UTC))  # events stored after this are not in the set
    with engine.connect() as conn:
        identities = load_identities(conn)
    with batch_engine(engine, settings, name=batch, lake=lake) as on:
        scores = score_everyone(
            on, model, identities, as_of=pd.Timestamp(now), lookback_days=model.lookback_days_
        )
        seen = persons_seen(on)
    # Out of the population: never bought ("new"), or not in the lookback ("lapsed").
    new = ["no purchase yet"]
    lapsed = [f"no purchase in the last {model.lookback_days_:g} days"]
    rest = seen[~seen["person_id"].isin(set(scores["customer_id"]))]
    rows = [
        *zip(
            scores["customer_id"],
            scores["churn_probability"].astype(float),
            scores["band"],
            scores["top_drivers"],
            strict=True,
        ),
        *(
            (p, None, "lapsed" if b else "new", lapsed if b else new)
            for p, b in zip(rest["person_id"], rest["bought"], strict=True)
        ),
    ]
    with engine.begin() as conn:
        stored = answers.write_churn(conn, version, iter(rows), as_of=micros(now), made_at=made_at)
    return Stored(answers.CHURN, version, stored, now, time.perf_counter() - started)


def churn_answers_current(engine: Engine, settings: Settings) -> bool:
    """Whether the store holds answers of the churn version the served alias points at,
    made for the settings' clock (within `answer_max_age_hours`)."""
    version = version_of(connect(settings), CHURN, settings.model_alias)
    with engine.connect() as conn:
        stored = answers.answer_set(conn, answers.CHURN, version)
    age = abs(micros(settings.now()) - stored.as_of) if stored else None
    return age is not None and age <= settings.answer_max_age_hours * 3_600e6
