"""The batch layer's answers: every person scored once per model version, into the store.

Run at promotion (`omni promote churn`), before `omni serve` starts when the served
version has none, and on demand (`omni score answers`, e.g. nightly). The service then
reads one row per request instead of the person's history (service.churn_scoring).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from features import columns as c
from service.churn_scoring import churn_for_many
from service.registry import CHURN, connect, load_churn, version_of
from service.serving import Served
from service.settings import Settings
from service.storage import answers
from service.storage.codec import micros
from service.storage.reader import load_events


@dataclass(frozen=True)
class Stored:
    kind: str
    model_version: str
    rows: int
    as_of: datetime
    seconds: float


def store_churn_answers(
    engine: Engine, settings: Settings, *, alias: str | None = None, now: datetime | None = None
) -> Stored:
    """Score every person with an event by the churn model `alias` points at (default: the
    served alias), as of `now` (default: the settings' clock), and replace the stored set.

    Raises `service.registry.NoSuchModelVersion` when no version has the alias.
    """
    started = time.perf_counter()
    model, version = load_churn(connect(settings), alias or settings.model_alias)
    now = now or settings.now()
    made_at = micros(datetime.now(UTC))  # events stored after this are not in the set
    events = load_events(engine)
    persons = sorted(events[c.PERSON_ID].dropna().astype(str).unique().tolist())
    served = Served(churn=model, churn_version=version)
    scored = churn_for_many(served, events, persons, now) if persons else {}
    del events
    with engine.begin() as conn:
        rows = answers.write_churn(
            conn,
            version,
            ((p, a.probability, a.band, a.drivers) for p, a in scored.items()),
            as_of=micros(now),
            made_at=made_at,
        )
    return Stored(answers.CHURN, version, rows, now, time.perf_counter() - started)


def churn_answers_current(engine: Engine, settings: Settings) -> bool:
    """Whether the store holds answers of the churn version the served alias points at,
    made for the settings' clock (within `answer_max_age_hours`)."""
    version = version_of(connect(settings), CHURN, settings.model_alias)
    with engine.connect() as conn:
        stored = answers.answer_set(conn, answers.CHURN, version)
    age = abs(micros(settings.now()) - stored.as_of) if stored else None
    return age is not None and age <= settings.answer_max_age_hours * 3_600e6
