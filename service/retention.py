"""Retention: what is older than `settings.retention_days` leaves the store.

Events older than the limit are deleted, with what only they held: anonymous ids no
event carries any more, and contacts, triggers, exposures and closed decisions made
before it. The
online state is then recomputed from the events that remain, in the same transaction,
so every answer agrees with the log. Customer records stay (the account is not history).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select

from features import columns as c
from features.identity import ANONYMOUS
from service.storage import state
from service.storage.codec import micros
from service.storage.tables import (
    contacts,
    decisions,
    events,
    exposures,
    identities,
    triggers,
)


@dataclass(frozen=True)
class Removed:
    """What one retention pass deleted, and the limit it applied."""

    before: datetime
    events: int
    anonymous_ids: int
    contacts: int
    triggers: int
    decisions: int
    exposures: int


def apply_retention(engine: Engine, days: float, now: datetime) -> Removed:
    """Delete what is older than `days` before `now`, in one transaction."""
    if days <= 0:
        raise ValueError(f"the retention must be a positive number of days, not {days}")
    before = now - timedelta(days=days)
    cutoff = micros(before)
    with engine.begin() as conn:
        gone = conn.execute(delete(events).where(events.c[c.TS] < cutoff)).rowcount
        carried = select(events.c[c.ANONYMOUS_ID]).where(events.c[c.ANONYMOUS_ID].is_not(None))
        anonymous = conn.execute(
            delete(identities).where(
                identities.c[c.ID_TYPE] == ANONYMOUS,
                identities.c[c.ID_VALUE].not_in(carried),
            )
        ).rowcount
        sent = conn.execute(delete(contacts).where(contacts.c["sent_at"] < cutoff)).rowcount
        handed = conn.execute(delete(triggers).where(triggers.c["handed_at"] < cutoff)).rowcount
        closed = conn.execute(
            delete(decisions).where(
                decisions.c["decided_at"] < cutoff, decisions.c["status"] != "open"
            )
        ).rowcount
        shown = conn.execute(delete(exposures).where(exposures.c["served_at"] < cutoff)).rowcount
        if gone:
            state.rebuild(conn)
    return Removed(before, gone, anonymous, sent, handed, closed, shown)
