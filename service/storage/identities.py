"""Keep the stored identity map in step with the events and customers."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Connection, and_, delete, func, select, update

from features import columns as c
from features.identity import IdentityMap, keep_person_ids, stitch
from service.storage.codec import micros, to_rows
from service.storage.tables import (
    churn_answers,
    contacts,
    customers,
    decisions,
    events,
    exposures,
    identities,
    no_offers,
    triggers,
)


def rebuild_identities(conn: Connection) -> IdentityMap:
    """Recompute the identity map from every stored link and replace it, in `conn`'s transaction.

    The links are aggregated in SQL (one row per customer/anonymous pair), so this reads
    a few rows per person, never the whole event table.
    """
    link_query = (
        select(
            events.c[c.CUSTOMER_ID],
            events.c[c.ANONYMOUS_ID],
            func.min(events.c[c.TS]).label("first_ts"),
            func.count().label("n"),
        )
        .where(events.c[c.CUSTOMER_ID].is_not(None), events.c[c.ANONYMOUS_ID].is_not(None))
        .group_by(events.c[c.CUSTOMER_ID], events.c[c.ANONYMOUS_ID])
    )
    links = pd.DataFrame(
        conn.execute(link_query).all(), columns=[c.CUSTOMER_ID, c.ANONYMOUS_ID, "first_ts", "n"]
    )
    known = pd.DataFrame(
        conn.execute(select(customers.c[c.CUSTOMER_ID], customers.c[c.EMAIL])).all(),
        columns=[c.CUSTOMER_ID, c.EMAIL],
    )
    # Customers seen only in events (no pair, no customer record) are persons too.
    solo = pd.DataFrame(
        conn.execute(
            select(events.c[c.CUSTOMER_ID]).where(events.c[c.CUSTOMER_ID].is_not(None)).distinct()
        ).all(),
        columns=[c.CUSTOMER_ID],
    )
    known = pd.concat([known, solo.assign(**{c.EMAIL: None})], ignore_index=True)
    previous = load_identities(conn)
    fresh = stitch(links, known)
    frame, moves = keep_person_ids(fresh.frame, previous)
    identity_map = IdentityMap(frame)
    conn.execute(delete(identities))
    if len(identity_map.frame):
        conn.execute(identities.insert(), to_rows(identity_map.frame))
    move_ledgers(conn, moves)
    return identity_map


def move_ledgers(conn: Connection, moves: dict[str, str]) -> None:
    """Persons merged into others (earlier person id -> the one that absorbed them): their
    decisions, contacts and triggers are the absorbing person's from now on, so that caps
    count both and one decision stands for them. Where both had an open decision, the
    absorbed one's is closed (`ineligible`, by "merged into <id>"); per-person caches (no
    offer open, churn answers) of the absorbed are dropped, to be made again."""
    for old, new in sorted(moves.items()):
        survivor_open = conn.execute(
            select(decisions.c.decision_id).where(
                decisions.c[c.PERSON_ID] == new, decisions.c.status == "open"
            )
        ).first()
        if survivor_open is not None:
            conn.execute(
                update(decisions)
                .where(and_(decisions.c[c.PERSON_ID] == old, decisions.c.status == "open"))
                .values(
                    status="ineligible",
                    closed_at=micros(datetime.now(UTC)),
                    closed_by=f"merged into {new}",
                )
            )
        for table in (decisions, contacts, triggers, exposures):
            conn.execute(
                update(table).where(table.c[c.PERSON_ID] == old).values({c.PERSON_ID: new})
            )
        for table in (no_offers, churn_answers):
            conn.execute(delete(table).where(table.c[c.PERSON_ID] == old))


def load_identities(conn: Connection) -> pd.DataFrame:
    """The stored identity map: id_type, id_value, person_id, conflict."""
    rows = conn.execute(select(identities)).all()
    return pd.DataFrame(rows, columns=[col.name for col in identities.columns])
