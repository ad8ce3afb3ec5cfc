"""One person's churn score now: features from their events, the served model, in words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection

from features import columns as c
from features.churn import OneHistory, churn_row
from service.answer_cache import person_key
from service.people import Person, persons_by_id, seen_of
from service.serving import Served
from service.storage import activity, answers, churn_days
from service.storage.codec import micros, moment


@dataclass(frozen=True)
class ChurnAnswer:
    probability: float | None
    #: "low", "medium", "high", "lapsed" (no purchase in the lookback: already gone) or
    #: "new" (never bought: nothing to lose yet).
    band: str
    drivers: list[str]
    model_version: str | None
    as_of: datetime
    #: Churned = no purchase in this many days after `as_of` (the model's horizon).
    horizon_days: float | None = None


def churn_now(
    conn: Connection,
    served: Served,
    person: Person,
    now: datetime,
    max_age_hours: float,
) -> ChurnAnswer:
    """The person's churn answer: the batch answer of the served version while it is
    recent and nothing of theirs arrived after it was made (a few rows read), else
    computed from their day rows in the online state (`churn_days`: a row per day,
    channel and type they were active, never their events one by one), once per new
    activity of theirs (`answer_cache`)."""
    served.need_churn()
    version = served.churn_version
    stored, row = (
        answers.set_and_churn_row(conn, version, person.person_id) if version else (None, None)
    )
    seen = seen_of(conn, person)
    if (
        stored is not None
        and row is not None
        and _recent(stored, now, max_age_hours)
        and (seen is None or seen.last_arrival <= stored.made_at)
    ):
        return _stored_answer(served, stored, row)
    if seen is None:
        return _from_days(conn, served, person, now)
    # Made once per new activity of theirs, and no longer than a batch answer is served.
    answer: ChurnAnswer = served.churn_folded.get_or_make(
        person_key(served.churn_version, person, seen),
        lambda: _from_days(conn, served, person, now),
        fresh=lambda made: abs(micros(now) - micros(made.as_of)) <= max_age_hours * 3_600e6,
    )
    return answer


def churn_now_many(
    conn: Connection,
    served: Served,
    person_ids: list[str],
    now: datetime,
    max_age_hours: float,
) -> dict[str, ChurnAnswer]:
    """`churn_now` of each of many persons (a batch), by person id, in a few reads: the
    standing batch answers and every person's latest arrival are read once; the persons
    whose answer does not stand are computed from their day rows one by one, as their
    own request would. No history is read."""
    served.need_churn()
    found: dict[str, ChurnAnswer] = {}
    stored = _standing_set(conn, served, now, max_age_hours)
    if stored is not None:
        rows = answers.churn_rows(conn, stored.model_version)
        arrived = activity.last_arrivals(conn)
        for p in person_ids:
            row = rows.get(p)
            if row is not None and arrived.get(p, 0) <= stored.made_at:
                found[p] = _stored_answer(served, stored, row)
    rest = [p for p in person_ids if p not in found]
    known: dict[str, Person] = {}
    for start in range(0, len(rest), _ID_BLOCK):
        known.update((p.person_id, p) for p in persons_by_id(conn, rest[start : start + _ID_BLOCK]))
    for p in rest:
        found[p] = _from_days(conn, served, known.get(p, Person(p, (), ())), now)
    return found


#: Ids asked for in one `IN (...)` list.
_ID_BLOCK = 10_000


def _standing_set(
    conn: Connection, served: Served, now: datetime, max_age_hours: float
) -> answers.AnswerSet | None:
    """The served version's batch answer set while it is recent enough for `now`."""
    version = served.churn_version
    stored = answers.answer_set(conn, answers.CHURN, version) if version else None
    return stored if stored is not None and _recent(stored, now, max_age_hours) else None


def _recent(stored: answers.AnswerSet, now: datetime, max_age_hours: float) -> bool:
    """Whether a set of batch answers is recent enough to serve at `now`."""
    return abs(micros(now) - stored.as_of) <= max_age_hours * 3_600e6


def _stored_answer(served: Served, stored: answers.AnswerSet, row: answers.ChurnRow) -> ChurnAnswer:
    return ChurnAnswer(
        row.probability,
        row.band,
        row.drivers,
        stored.model_version,
        moment(stored.as_of),
        served.need_churn().horizon_days_,
    )


def _from_days(conn: Connection, served: Served, person: Person, now: datetime) -> ChurnAnswer:
    history = churn_days.history(conn, person.customer_ids, person.anonymous_ids, now)
    return churn_answer(served, history, now)


def churn_now_each(
    conn: Connection,
    served: Served,
    persons: list[Person],
    now: datetime,
    max_age_hours: float,
) -> dict[str, ChurnAnswer]:
    """`churn_now` for each of `persons` (by person id): the answer each would get alone,
    from the batch answers or their day rows, never their histories."""
    return {p.person_id: churn_now(conn, served, p, now, max_age_hours) for p in persons}


def churn_answer(served: Served, history: OneHistory, now: datetime) -> ChurnAnswer:
    """One person's churn answer from their events (`history`) as of `now`: "new" when
    they never bought, "lapsed" when not in the lookback the model was trained with (its
    population rule), else the model's probability, band and drivers."""
    model = served.need_churn()
    lookback = model.lookback_days_
    version, horizon = served.churn_version, model.horizon_days_
    features = churn_row(history, as_of=pd.Timestamp(now), lookback_days=lookback)
    if features is None:
        if (history.type == c.EventType.PURCHASE.value).any():
            reason = f"no purchase in the last {lookback:g} days"
            return ChurnAnswer(None, "lapsed", [reason], version, now, horizon)
        return ChurnAnswer(None, "new", ["no purchase yet"], version, now, horizon)
    probability, band, drivers = model.score_one(features, top=3)
    probability = min(max(probability, 0.0), 1.0)
    return ChurnAnswer(round(probability, 4), band, drivers, version, now, horizon)
