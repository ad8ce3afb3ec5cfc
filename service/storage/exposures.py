"""The exposures ledger: every answer that can lead to an outcome, given out or held back.

A recommendation list is one exposure per person, channel and UTC day (its `served_id` is
a digest of those and the arms, so every list of that day carries the same id and the
ledger is written once a day per person, not once a request); an offer is its decision,
a trigger its trigger id. Rows are inserted with conflict handling: two processes
recording the same exposure write one row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Connection, select

from features import columns as c
from service.storage.codec import micros
from service.storage.engine import insert_into
from service.storage.tables import exposures

RECOMMENDATIONS, OFFER, TRIGGER = "recommendations", "offer", "trigger"
COLUMNS = [
    "served_id", c.PERSON_ID, c.CUSTOMER_ID, c.KIND, c.CHANNEL, c.STORE_ID, "ref",
    c.OFFER_ID, "arms", "held_by", "served_at",
]  # fmt: skip


@dataclass(frozen=True)
class Exposure:
    """One answer given out (held_by None) or held back."""

    served_id: str
    person_id: str
    customer_id: str | None
    kind: str
    channel: str
    arms: Mapping[str, str]
    store_id: str | None = None
    ref: str | None = None
    offer_id: str | None = None
    held_by: str | None = None
    #: When it was served (None: when it is recorded).
    served_at: datetime | None = None


def list_id(person_id: str, channel: str, now: datetime, arms: Mapping[str, str]) -> str:
    """The served id of a person's recommendation lists in a channel on `now`'s UTC day."""
    day = (now if now.tzinfo is None else now.astimezone(UTC)).strftime("%Y-%m-%d")
    labels = ",".join(f"{k}={v}" for k, v in sorted(arms.items()))
    digest = hashlib.sha256(f"{person_id}|{channel}|{day}|{labels}".encode()).hexdigest()
    return "r" + digest[:23]


def record(conn: Connection, made: Iterable[Exposure], now: datetime) -> int:
    """Insert the exposures not recorded yet (served at their own `served_at`, else
    `now`); how many were new."""
    at = micros(now)
    rows = [
        {
            "served_id": x.served_id,
            c.PERSON_ID: x.person_id,
            c.CUSTOMER_ID: x.customer_id,
            c.KIND: x.kind,
            c.CHANNEL: x.channel,
            c.STORE_ID: x.store_id,
            "ref": x.ref,
            c.OFFER_ID: x.offer_id,
            "arms": json.dumps(dict(sorted(x.arms.items()))),
            "held_by": x.held_by,
            "served_at": at if x.served_at is None else micros(x.served_at),
        }
        for x in made
    ]
    if not rows:
        return 0
    ins = insert_into(conn, exposures)
    result = conn.execute(
        ins.on_conflict_do_nothing(index_elements=["served_id"]).returning(exposures.c.served_id),
        rows,
    )
    return len(result.all())


def held_since(conn: Connection, person_id: str, kind: str, since: datetime) -> bool:
    """Whether the person was held out of `kind` at or after `since` (one indexed read)."""
    found = conn.execute(
        select(exposures.c.served_id)
        .where(
            exposures.c[c.PERSON_ID] == person_id,
            exposures.c.served_at >= micros(since),
            exposures.c[c.KIND] == kind,
            exposures.c.held_by.is_not(None),
        )
        .limit(1)
    ).first()
    return found is not None


def held_persons_since(conn: Connection, kind: str, since: datetime) -> set[str]:
    """The persons held out of `kind` at or after `since`."""
    return {
        str(p)
        for p in conn.execute(
            select(exposures.c[c.PERSON_ID]).where(
                exposures.c.served_at >= micros(since),
                exposures.c[c.KIND] == kind,
                exposures.c.held_by.is_not(None),
            )
        ).scalars()
    }


def read(
    conn: Connection, since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """The exposures served in [since, until): COLUMNS, `served_at` as UTC datetimes and
    `arms` as dicts."""
    query = select(*[exposures.c[n] for n in COLUMNS])
    if since is not None:
        query = query.where(exposures.c.served_at >= micros(since))
    if until is not None:
        query = query.where(exposures.c.served_at < micros(until))
    frame = pd.DataFrame(conn.execute(query).all(), columns=COLUMNS)
    frame["served_at"] = pd.to_datetime(frame["served_at"].astype("int64"), unit="us", utc=True)
    frame["arms"] = [json.loads(a) for a in frame["arms"]]
    for col in ("held_by", c.CUSTOMER_ID, c.STORE_ID, "ref", c.OFFER_ID):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame
