"""The right of access: everything Omni holds about one person, as one JSON document.

Read straight from the tables, so nothing held is left out by a view: the customer
records (with consents), every identity, every event, the online state derived from them,
the stored scores, and every decision, contact and trigger. Times are ISO 8601 UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select, union

from features import columns as c
from service.people import Person
from service.storage.codec import moment
from service.storage.ids import ID_COLUMNS, by_kind
from service.storage.state import STATE_TABLES
from service.storage.tables import (
    churn_answers,
    contacts,
    customers,
    decisions,
    events,
    exposures,
    identities,
    triggers,
)

#: Integer columns that hold a time (microseconds since the epoch).
TIME_COLUMNS = frozenset(
    {c.TS, "ingested_at", "first_ts", "last_ts", "last_arrival", "last_purchase",
     "decided_at", c.VALID_UNTIL, "closed_at", "sent_at", "due_at", "handed_at",
     "acked_at", c.CREATED_AT, "served_at"}
)  # fmt: skip


def person_export(conn: Connection, person: Person, now: datetime) -> dict[str, Any]:
    """The whole document for `person`, as of `now`."""
    ids = by_kind(person.customer_ids, person.anonymous_ids)
    held_events = _rows(
        conn, events, [events.c[ID_COLUMNS[kind]].in_(values) for kind, values in ids], c.TS
    )
    derived = {
        table.name: _rows(
            conn,
            table,
            [
                (table.c[c.ID_TYPE] == kind) & table.c[c.ID_VALUE].in_(values)
                for kind, values in ids
            ],
        )
        for table in STATE_TABLES
    }

    def mine(table: Table) -> list[Any]:
        return [table.c[c.PERSON_ID] == person.person_id]

    return {
        "exported_at": now.isoformat(),
        "person": {
            "person_id": person.person_id,
            "customer_ids": list(person.customer_ids),
            "anonymous_ids": list(person.anonymous_ids),
        },
        "customer_records": _rows(
            conn, customers, [customers.c[c.CUSTOMER_ID].in_(person.customer_ids)]
        ),
        "identities": _rows(conn, identities, mine(identities)),
        "events": held_events,
        "derived_state": derived,
        "churn_scores": _rows(conn, churn_answers, mine(churn_answers)),
        "decisions": _rows(conn, decisions, mine(decisions), "decided_at"),
        "contacts": _rows(conn, contacts, mine(contacts), "sent_at"),
        "triggers": _rows(conn, triggers, mine(triggers), "handed_at"),
        # What was shown to them or held back from them, and in which experiments' arms.
        "exposures": _rows(conn, exposures, mine(exposures), "served_at"),
    }


def _rows(
    conn: Connection, table: Table, where: list[Any], order: str | None = None
) -> list[dict[str, Any]]:
    """Rows of `table` matching any of `where` (one query each, joined by UNION: an OR
    across columns would scan the table), times as ISO strings."""
    if not where:
        return []
    parts = [select(table).where(w) for w in where]
    query = parts[0] if len(parts) == 1 else union(*parts).subquery().select()
    rows = [dict(r._mapping) for r in conn.execute(query).all()]
    if order is not None:
        rows.sort(key=lambda r: (r[order] is None, r[order]))
    return [
        {
            key: moment(value).isoformat()
            if key in TIME_COLUMNS and isinstance(value, int)
            else value
            for key, value in row.items()
        }
        for row in rows
    ]
