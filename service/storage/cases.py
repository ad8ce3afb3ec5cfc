"""Online state of service cases (complaints, service contacts): per id and case, what it
is about, where and when it was opened and where it stands now.

A case is the events sharing a `case_id` (an event without one is a case of its own): the
earliest says what it is about and where it was opened; the latest (by the event's own
time; at the same time, resolved over open) says its status. Late, repeated and
out-of-order events land the same. Written with the events (`apply`), rebuilt from the
event log by the same code (`rebuild`), read per person from a few rows (`cases_of`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, delete, select

from features import columns as c
from service.storage.engine import greatest_least, insert_into, run_many
from service.storage.ids import ids_of, of_ids, read_ids
from service.storage.replay import replay
from service.storage.tables import cases, identities

SERVICE = sorted(t.value for t in c.SERVICE_EVENT_TYPES)
_OPENING = (c.TYPE, c.REASON, c.CHANNEL)
#: A case's state as the table holds it, beside its id.
_STATE = (*_OPENING, "opened_at", "updated_at", c.STATUS)


@dataclass(frozen=True)
class Case:
    case_id: str
    type: str
    reason: str
    channel: str
    #: Microseconds, UTC.
    opened_at: int
    updated_at: int
    status: str


def _of(row: Mapping[str, Any]) -> dict[str, Any]:
    ts = int(row[c.TS])
    return {c.TYPE: str(row[c.TYPE]), c.REASON: str(row[c.REASON] or ""),
            c.CHANNEL: str(row[c.CHANNEL]), "opened_at": ts, "updated_at": ts,
            c.STATUS: str(row[c.STATUS] or c.CaseStatus.OPEN.value)}  # fmt: skip


def _merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Two states of one case as one (the rule `_upsert` states in SQL)."""
    first = new if (new["opened_at"], new[c.REASON]) < (old["opened_at"], old[c.REASON]) else old
    last = new if (new["updated_at"], new[c.STATUS]) > (old["updated_at"], old[c.STATUS]) else old
    return {**{k: first[k] for k in _OPENING}, "opened_at": first["opened_at"],
            "updated_at": last["updated_at"], c.STATUS: last[c.STATUS]}  # fmt: skip


def apply(conn: Connection, stored: Iterable[Mapping[str, Any]]) -> None:
    """Fold newly stored events (times in microseconds) into the case state, inside the
    caller's transaction."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in stored:
        if row[c.TYPE] not in SERVICE:
            continue
        case_id = str(row.get(c.CASE_ID) or row[c.EVENT_ID])
        for kind, value in ids_of(row):
            key = (kind, str(value), case_id)
            state = _of(row)
            found[key] = _merged(found[key], state) if key in found else state
    if found:
        run_many(conn, _upsert, [
            {c.ID_TYPE: k, c.ID_VALUE: v, c.CASE_ID: i, **state}
            for (k, v, i), state in sorted(found.items())
        ])  # fmt: skip


def _upsert(conn: Connection) -> Any:
    insert = insert_into(conn, cases)
    greatest, least = greatest_least(conn)
    new, old = insert.excluded, cases.c
    earlier = (new.opened_at < old.opened_at) | (
        (new.opened_at == old.opened_at) & (new[c.REASON] < old[c.REASON])
    )
    later = (new.updated_at > old.updated_at) | (
        (new.updated_at == old.updated_at) & (new[c.STATUS] > old[c.STATUS])
    )
    return insert.on_conflict_do_update(
        index_elements=[c.ID_TYPE, c.ID_VALUE, c.CASE_ID],
        set_={
            **{k: case((earlier, new[k]), else_=old[k]) for k in _OPENING},
            "opened_at": least(old.opened_at, new.opened_at),
            "updated_at": greatest(old.updated_at, new.updated_at),
            c.STATUS: case((later, new[c.STATUS]), else_=old[c.STATUS]),
        },
    )


def rebuild(conn: Connection) -> None:
    """Recompute the case state of every id from the event log."""
    conn.execute(delete(cases))
    replay(conn, SERVICE, [c.EVENT_ID, c.CASE_ID, c.REASON, c.CHANNEL, c.STATUS], apply)


def open_complaint(kind: str, status: str) -> bool:
    """Whether a case of this type and status is a complaint still open."""
    return kind == c.EventType.COMPLAINT and status == c.CaseStatus.OPEN


def has_open_complaint(
    conn: Connection, customer_ids: Iterable[str], anonymous_ids: Iterable[str]
) -> bool:
    """Whether one of the person's complaints is open now."""
    return any(
        open_complaint(x.type, x.status) for x in cases_of(conn, customer_ids, anonymous_ids)
    )


def open_complaints(conn: Connection) -> set[str]:
    """Every person with an open complaint (a batch's read): their cases' rows merged
    over their ids, as `has_open_complaint` merges them."""
    cols = [cases.c[n] for n in (c.CASE_ID, *_STATE)]
    rows = conn.execute(
        select(identities.c[c.PERSON_ID], *cols).join(
            identities,
            (identities.c[c.ID_TYPE] == cases.c[c.ID_TYPE])
            & (identities.c[c.ID_VALUE] == cases.c[c.ID_VALUE]),
        )
    ).mappings()
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        state = {k: row[k] for k in _STATE}
        key = (str(row[c.PERSON_ID]), str(row[c.CASE_ID]))
        merged[key] = _merged(merged[key], state) if key in merged else state
    return {
        person
        for (person, _), state in merged.items()
        if open_complaint(state[c.TYPE], state[c.STATUS])
    }


def cases_of(
    conn: Connection, customer_ids: Iterable[str], anonymous_ids: Iterable[str]
) -> list[Case]:
    """The person's service cases, open ones first (the longest open first), then the
    others, latest first: a row per case and id, never their events."""
    merged: dict[str, dict[str, Any]] = {}
    for row in read_ids(conn, _CASES, customer_ids, anonymous_ids):  # all their ids at once
        state = dict(zip(_STATE, row[1:], strict=True))
        key = str(row[0])
        merged[key] = _merged(merged[key], state) if key in merged else state
    found = [Case(case_id=k, **v) for k, v in merged.items()]
    is_open = [x for x in found if x.status == c.CaseStatus.OPEN]
    closed = [x for x in found if x.status != c.CaseStatus.OPEN]
    return sorted(is_open, key=lambda x: (x.opened_at, x.case_id)) + sorted(
        closed, key=lambda x: (-x.updated_at, x.case_id)
    )


_CASES = select(*(cases.c[n] for n in (c.CASE_ID, *_STATE))).where(of_ids(cases))
