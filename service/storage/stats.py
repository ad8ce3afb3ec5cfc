"""A summary of what the store holds, computed in SQL (no table is loaded whole)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, Table, func, select

from features import columns as c
from features.identity import ANONYMOUS, CUSTOMER
from service.storage.codec import moment
from service.storage.tables import (
    catalogue,
    customers,
    events,
    identities,
    inventory,
    offers,
    stores,
)


@dataclass(frozen=True)
class StoreSummary:
    """Counts a person checks after an ingest."""

    customers: int
    persons: int
    items: int
    stores: int
    inventory_rows: int
    offers: int
    events: int
    first_event: datetime | None
    last_event: datetime | None
    #: Events by channel (rows) and type (columns).
    by_channel_type: pd.DataFrame
    anonymous_ids: int
    anonymous_stitched: int
    customers_merged: int
    identity_conflicts: int


def summarize(engine: Engine) -> StoreSummary:
    """Count everything in the store."""
    with engine.connect() as conn:

        def count(table: Table) -> int:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

        first, last = conn.execute(select(func.min(events.c[c.TS]), func.max(events.c[c.TS]))).one()
        grid = pd.DataFrame(
            conn.execute(
                select(events.c[c.CHANNEL], events.c[c.TYPE], func.count()).group_by(
                    events.c[c.CHANNEL], events.c[c.TYPE]
                )
            ).all(),
            columns=[c.CHANNEL, c.TYPE, "n"],
        )
        by_channel_type = grid.pivot_table(
            index=c.CHANNEL, columns=c.TYPE, values="n", aggfunc="sum", fill_value=0
        )
        anonymous_ids = conn.execute(
            select(func.count(func.distinct(events.c[c.ANONYMOUS_ID])))
        ).scalar_one()
        idn = identities.c
        per_type: dict[str, int] = dict(
            conn.execute(select(idn[c.ID_TYPE], func.count()).group_by(idn[c.ID_TYPE])).all()
        )
        persons = conn.execute(
            select(func.count(func.distinct(idn[c.PERSON_ID]))).where(idn[c.ID_TYPE] == CUSTOMER)
        ).scalar_one()
        merged = conn.execute(
            select(func.count()).where(
                idn[c.ID_TYPE] == CUSTOMER, idn[c.ID_VALUE] != idn[c.PERSON_ID]
            )
        ).scalar_one()
        conflicts = conn.execute(select(func.count()).where(idn["conflict"])).scalar_one()
        return StoreSummary(
            customers=count(customers),
            persons=int(persons),
            items=count(catalogue),
            stores=count(stores),
            inventory_rows=count(inventory),
            offers=count(offers),
            events=count(events),
            first_event=_when(first),
            last_event=_when(last),
            by_channel_type=by_channel_type,
            anonymous_ids=int(anonymous_ids),
            anonymous_stitched=int(per_type.get(ANONYMOUS, 0)),
            customers_merged=int(merged),
            identity_conflicts=int(conflicts),
        )


def _when(micros: int | None) -> datetime | None:
    if micros is None:
        return None
    return moment(micros)
