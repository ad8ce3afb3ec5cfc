"""Keep the stored identity map in step with the events and customers."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, delete, func, select

from features import columns as c
from features.identity import IdentityMap, stitch
from service.storage.codec import to_rows
from service.storage.tables import customers, events, identities


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
    identity_map = stitch(links, known)
    conn.execute(delete(identities))
    if len(identity_map.frame):
        conn.execute(identities.insert(), to_rows(identity_map.frame))
    return identity_map


def load_identities(conn: Connection) -> pd.DataFrame:
    """The stored identity map: id_type, id_value, person_id, conflict."""
    rows = conn.execute(select(identities)).all()
    return pd.DataFrame(rows, columns=[col.name for col in identities.columns])
