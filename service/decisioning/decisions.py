"""The decisions ledger: one open next-best-offer decision per person, for every channel.

A decision stays open until the customer accepts or declines its offer (an
`offer_accepted` / `offer_declined` event naming it, at or after the decision), it
expires, or its offer is no longer open to them where they are asked (out of stock in
the store, consent withdrawn, the item bought since). Closing records why; the next ask
makes and records a new decision. A unique index lets only one decision per person be
open, so two channels asking at once cannot both decide.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Connection, insert, select, update

from features import columns as c
from service.storage.codec import micros
from service.storage.tables import decisions

ANSWERS = {
    c.EventType.OFFER_ACCEPTED.value: "accepted",
    c.EventType.OFFER_DECLINED.value: "declined",
}
DECISION_COLUMNS = [
    "decision_id",
    c.PERSON_ID,
    c.CUSTOMER_ID,
    c.OFFER_ID,
    c.CHANNEL,
    c.STORE_ID,
    "decided_at",
    c.VALID_UNTIL,
    "probability",
    "expected_value",
    "reason",
]


@dataclass(frozen=True)
class Closing:
    """Why an open decision ends: its id, the new status and what closed it."""

    decision_id: str
    status: str  # accepted, declined, expired, ineligible
    by: str


def open_decisions(conn: Connection, persons: list[str] | None = None) -> pd.DataFrame:
    """The open decisions (of `persons`, or everyone), times as UTC datetimes."""
    query = select(*[decisions.c[name] for name in DECISION_COLUMNS]).where(
        decisions.c.status == "open"
    )
    if persons is not None:
        query = query.where(decisions.c[c.PERSON_ID].in_(persons))
    frame = pd.DataFrame(conn.execute(query).all(), columns=DECISION_COLUMNS)
    for col in ("decided_at", c.VALID_UNTIL):
        frame[col] = pd.to_datetime(frame[col].astype("int64"), unit="us", utc=True)
    return frame


def closings(open_: pd.DataFrame, answers: pd.DataFrame, now: datetime) -> list[Closing]:
    """Open decisions that ended by an answer or by time. `answers`: the persons'
    offer_accepted / offer_declined events (person_id, offer_id, type, ts)."""
    out: list[Closing] = []
    if open_.empty:
        return out
    hits = open_.merge(answers, on=[c.PERSON_ID, c.OFFER_ID], how="inner")
    hits = hits[hits[c.TS] >= hits["decided_at"]].sort_values(c.TS)
    answered = hits.drop_duplicates("decision_id")
    out += [
        Closing(d, ANSWERS[str(t)], f"{t} event")
        for d, t in zip(answered["decision_id"], answered[c.TYPE], strict=True)
    ]
    done = set(answered["decision_id"])
    expired = open_[(open_[c.VALID_UNTIL] <= pd.Timestamp(now)) & ~open_["decision_id"].isin(done)]
    out += [Closing(d, "expired", "time") for d in expired["decision_id"]]
    return out


def close(conn: Connection, ended: list[Closing], now: datetime) -> None:
    """Write the closings (only decisions still open change)."""
    for closing in ended:
        conn.execute(
            update(decisions)
            .where(decisions.c.decision_id == closing.decision_id, decisions.c.status == "open")
            .values(status=closing.status, closed_at=micros(now), closed_by=closing.by)
        )


def record(conn: Connection, made: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Insert new open decisions (rows of DECISION_COLUMNS but the id and time, which
    are set here); returns them with their ids. Raises IntegrityError when a person
    already has an open decision (a concurrent ask decided first)."""
    made = made.assign(
        decision_id=[uuid.uuid4().hex for _ in range(len(made))],
        decided_at=pd.Timestamp(now),
    )
    if len(made):
        rows = [
            {
                **{k: _plain(row[k]) for k in DECISION_COLUMNS},
                "decided_at": micros(now),
                c.VALID_UNTIL: micros(row[c.VALID_UNTIL].to_pydatetime()),
                "status": "open",
            }
            for _, row in made.iterrows()
        ]
        conn.execute(insert(decisions), rows)
    return made


def valid_until(offer_ends: pd.Series, now: datetime, days: int) -> pd.Series:
    """A decision stands until its offer ends or `days` have passed, whichever is first."""
    cap = pd.Timestamp(now) + pd.Timedelta(days=days)
    ends = pd.to_datetime(offer_ends.astype("int64"), unit="us", utc=True)
    return ends.where(ends < cap, cap)


def _plain(value: object) -> object:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, pd.Timestamp):
        return micros(value.to_pydatetime())
    return value.item() if hasattr(value, "item") else value
