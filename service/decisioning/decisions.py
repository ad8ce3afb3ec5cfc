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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, bindparam, insert, select, update

from features import columns as c
from service.storage.codec import from_micros, micros, moment
from service.storage.engine import fetch_all, insert_into
from service.storage.tables import decisions, no_offers

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
    "prior",
    "source",
]


#: Columns a decision may be recorded without (made before learned take rates).
OPTIONAL = ("prior", "source")


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
        frame[col] = from_micros(frame[col].astype("int64"))
    return frame


def open_decision(conn: Connection, person_id: str) -> dict[str, Any] | None:
    """The person's open decision (times as UTC timestamps), or None."""
    rows = fetch_all(conn, _OPEN, {"person": person_id})
    if not rows:
        return None
    found = dict(zip(DECISION_COLUMNS, rows[0], strict=True))
    for col in ("decided_at", c.VALID_UNTIL):
        found[col] = pd.Timestamp(moment(int(found[col])))
    return found


_OPEN = select(*[decisions.c[name] for name in DECISION_COLUMNS]).where(
    decisions.c[c.PERSON_ID] == bindparam("person"), decisions.c.status == "open"
)


def ending(
    decision: Mapping[Any, Any], answers: list[tuple[str, str, pd.Timestamp]], now: datetime
) -> Closing | None:
    """Why an open decision ended by itself (None: it stands): the customer's answer, an
    offer_accepted / offer_declined event naming its offer at or after the decision
    (`answers`: the person's (type, offer_id, ts)), or time."""
    for kind, offer_id, ts in sorted(answers, key=lambda a: a[2]):
        if offer_id == decision[c.OFFER_ID] and ts >= decision["decided_at"]:
            return Closing(str(decision["decision_id"]), ANSWERS[kind], f"{kind} event")
    if decision[c.VALID_UNTIL] <= pd.Timestamp(now):
        return Closing(str(decision["decision_id"]), "expired", "time")
    return None


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
        **{k: None for k in OPTIONAL if k not in made},
    )
    if len(made):
        until = pd.to_datetime(made[c.VALID_UNTIL], utc=True).astype("datetime64[us, UTC]")
        columns: dict[str, list[Any]] = {
            k: [_plain(v) for v in made[k].astype(object).tolist()]
            for k in DECISION_COLUMNS
            if k not in ("decided_at", c.VALID_UNTIL)
        }
        columns[c.VALID_UNTIL] = until.astype("int64").tolist()
        at = micros(now)
        rows = [
            {**dict(zip(columns, values, strict=True)), "decided_at": at, "status": "open"}
            for values in zip(*columns.values(), strict=True)
        ]
        conn.execute(insert(decisions), rows)
    return made


def record_one(conn: Connection, made: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """`record` for one decision (a dict of DECISION_COLUMNS but the id and time, its
    `valid_until` in microseconds): inserted, and returned with its id and time (times as
    UTC timestamps, as `open_decision` gives them). Raises IntegrityError when the person
    already has an open decision."""
    until = int(made[c.VALID_UNTIL])
    row = {k: made.get(k) for k in DECISION_COLUMNS if k not in ("decision_id", "decided_at")}
    row.update(decision_id=uuid.uuid4().hex, decided_at=micros(now), status="open")
    conn.execute(_INSERT, row)
    return {**row, "decided_at": pd.Timestamp(now), c.VALID_UNTIL: pd.Timestamp(moment(until))}


_INSERT = insert(decisions)


def nothing_since(conn: Connection, person_id: str, asked: str) -> int | None:
    """When (arrival clock, microseconds) an ask of the person `asked` where it was asked
    last found no offer open, or None."""
    rows = fetch_all(conn, _NOTHING, {"person": person_id, "asked": asked})
    return None if not rows else int(rows[0][0])


_NOTHING = select(no_offers.c.made_at).where(
    no_offers.c[c.PERSON_ID] == bindparam("person"), no_offers.c.asked == bindparam("asked")
)


def remember_nothing(conn: Connection, person_id: str, asked: str, made_at: int) -> None:
    """Record that no offer was open to the person where asked, as of `made_at`."""
    insert = insert_into(conn, no_offers)
    row = {c.PERSON_ID: person_id, "asked": asked, "made_at": made_at}
    conn.execute(
        insert.values(row).on_conflict_do_update(
            index_elements=[c.PERSON_ID, "asked"], set_={"made_at": insert.excluded.made_at}
        )
    )


def valid_until(offer_ends: pd.Series, now: datetime, days: int) -> pd.Series:
    """A decision stands until its offer ends or `days` have passed, whichever is first."""
    cap = pd.Timestamp(now) + pd.Timedelta(days=days)
    ends = from_micros(offer_ends.astype("int64"))
    return ends.where(ends < cap, cap)


def _plain(value: object) -> object:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, pd.Timestamp):
        return micros(value.to_pydatetime())
    return value.item() if hasattr(value, "item") else value
