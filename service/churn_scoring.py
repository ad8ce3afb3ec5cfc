"""One person's churn score now: features from their events, the served model, in words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from features import columns as c
from features.churn import churn_features, churn_features_one
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
    days = churn_days.history(
        conn, person.person_id, person.customer_ids, person.anonymous_ids, now
    )
    return churn_of(served, days, now)


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


def churn_of(served: Served, events: pd.DataFrame, now: datetime) -> ChurnAnswer:
    """The churn answer for the one person whose events (with person_id) are given."""
    person = str(events[c.PERSON_ID].iloc[0]) if len(events) else ""
    return churn_for_many(served, events, [person], now)[person]


def churn_for_many(
    served: Served, events: pd.DataFrame, persons: list[str], now: datetime
) -> dict[str, ChurnAnswer]:
    """Churn answers for `persons` from all their events (with person_id), in one pass:
    the features, probabilities, bands and drivers are computed for all at once."""
    model = served.need_churn()
    # The population rule the model was trained with: a purchase in its lookback.
    lookback = model.lookback_days_
    # One customer (the API's common case): the numpy path, without pandas' fixed costs.
    if len(persons) == 1:
        theirs = events[events[c.PERSON_ID] == persons[0]]
        features = churn_features_one(theirs, as_of=pd.Timestamp(now), lookback_days=lookback)
        bought = theirs[c.TYPE].to_numpy(dtype=object) == c.EventType.PURCHASE.value
        buyers = {persons[0]} if bought.any() else set()
    else:
        features = churn_features(events, as_of=pd.Timestamp(now), lookback_days=lookback)
        buying = events[c.TYPE] == c.EventType.PURCHASE
        buyers = set(events.loc[buying, c.PERSON_ID].astype(str))
    version, horizon = served.churn_version, model.horizon_days_
    lapsed = ChurnAnswer(
        None, "lapsed", [f"no purchase in the last {lookback:g} days"], version, now, horizon
    )
    answers = dict.fromkeys(persons, lapsed)
    new = ChurnAnswer(None, "new", ["no purchase yet"], version, now, horizon)
    answers.update({p: new for p in persons if p not in buyers})
    if features.empty:
        return answers
    p = np.clip(model.predict_proba(features), 0, 1)
    bands = model.bands(p)
    drivers = model.drivers(features, top=3, bands=bands)
    for i, person in enumerate(features.index):
        answers[str(person)] = ChurnAnswer(
            round(float(p[i]), 4), str(bands[i]), drivers[i], version, now, horizon
        )
    return answers
