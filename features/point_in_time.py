"""What was known at a cutoff: the events that had arrived and the identities they proved.

A model judged at a cutoff must learn only from what the store knew then. Two things
arrive late in a retailer's store: events (a till upload at night with the afternoon's
times, a partner's file a week on) and identity (an `identify` event that links a cookie
to a customer, a loyalty card record that shares an e-mail address with an account).

- An event is known from `known_at` (`service.storage.reader` adds the column): when it
  arrived (`ingested_at`), except for history older than the store's first arrival,
  which a bulk load of the past brings all at once and counts as known from its own time.
- The person behind an event, at a cutoff, is resolved from the links in events known
  before it and the customer records created before it (`created_at`; a record without
  one counts as always known): a merge proved later does not join two customers earlier.

Events at or after the cutoff are what happened next (the truth a test window scores, the
labels a churn horizon reads): they are kept, resolved with the same map.
"""

from __future__ import annotations

import pandas as pd

from features import columns as c
from features.engines import BatchEngine
from features.identity import ANONYMOUS, CUSTOMER, resolve, stitch

#: When the store first knew the event (UTC), beside its own time `ts`.
KNOWN_AT = "known_at"


def known_at(ts: pd.Series, ingested_at: pd.Series, live_since: pd.Timestamp) -> pd.Series:
    """`known_at` from an event's own time and its arrival (UTC datetimes): the arrival,
    but history from before the store's first arrival (`live_since`) is known from its
    own time."""
    return ts.where(ts < live_since, ingested_at).rename(KNOWN_AT)


def at_cutoff(
    events: pd.DataFrame, cutoff: pd.Timestamp, customers: pd.DataFrame | None = None
) -> pd.DataFrame:
    """`events` as the store knew them at `cutoff`: those before it that had not arrived
    yet left out, and (with `customers`: customer_id, email, created_at) every event's
    `person_id` resolved from what was known then. Without a `known_at` column, every
    event counts as known."""
    if KNOWN_AT in events.columns:
        late = (events[c.TS] < cutoff) & (events[KNOWN_AT] >= cutoff)
        events = events[~late]
    if customers is None:
        return events
    before = events[(events[c.TS] < cutoff)]
    both = before.dropna(subset=[c.CUSTOMER_ID, c.ANONYMOUS_ID])
    links = both.groupby([c.CUSTOMER_ID, c.ANONYMOUS_ID], as_index=False).agg(
        first_ts=(c.TS, "min"), n=(c.TS, "size")
    )
    created = (
        pd.to_datetime(customers[c.CREATED_AT], utc=True)
        if c.CREATED_AT in customers.columns
        else pd.Series(pd.NaT, index=customers.index, dtype="datetime64[ns, UTC]")
    )
    known = customers[created.isna() | (created < cutoff)]
    identity = stitch(links, known[[c.CUSTOMER_ID, c.EMAIL]])
    return events.assign(**{c.PERSON_ID: resolve(events, identity.frame).to_numpy()})


# The same rules as SQL, for the batch engines (`features.engines`): `source` holds the
# stored event columns with times as integer microseconds (`ts`, `ingested_at`);
# `persons` an identity map (id_type, id_value, person_id).


def known_at_sql(live_since: int) -> str:
    """`known_at` of an event, as `known_at` computes it (`live_since` in microseconds)."""
    return f"CASE WHEN e.ts < {int(live_since)} THEN e.ts ELSE e.ingested_at END"


def links_sql(source: str, cutoff: int, live_since: int) -> str:
    """The (customer_id, anonymous_id) pairs seen together in events known before
    `cutoff`, with `first_ts` and `n`: what `stitch` reads."""
    return f"""
SELECT e.customer_id AS customer_id, e.anonymous_id AS anonymous_id,
       MIN(e.ts) AS first_ts, COUNT(*) AS n
FROM {source} e
WHERE e.ts < {int(cutoff)} AND {known_at_sql(live_since)} < {int(cutoff)}
  AND e.customer_id IS NOT NULL AND e.anonymous_id IS NOT NULL
GROUP BY e.customer_id, e.anonymous_id"""


def resolved_sql(
    source: str, persons: str, cutoff: int | None = None, live_since: int | None = None
) -> str:
    """Every event of `source` with its `person_id` from `persons` (as `resolve`); with a
    `cutoff`, the events before it that had not arrived by then left out (as `at_cutoff`)."""
    late = (
        ""
        if cutoff is None or live_since is None
        else f"WHERE NOT (e.ts < {int(cutoff)} AND {known_at_sql(live_since)} >= {int(cutoff)})"
    )
    return f"""
SELECT e.*,
  CASE WHEN e.customer_id IS NOT NULL THEN COALESCE(pc.person_id, e.customer_id)
       ELSE pa.person_id END AS person_id
FROM {source} e
LEFT JOIN (SELECT id_value, person_id FROM {persons} WHERE id_type = '{CUSTOMER}') pc
  ON e.customer_id = pc.id_value
LEFT JOIN (SELECT id_value, person_id FROM {persons} WHERE id_type = '{ANONYMOUS}') pa
  ON e.anonymous_id = pa.id_value
{late}"""


def known_view(
    engine: BatchEngine,
    source: str,
    cutoff: pd.Timestamp,
    customers: pd.DataFrame,
    live_since: int,
    name: str,
) -> str:
    """Define view `name` on `engine`: the events of `source` as the store knew them at
    `cutoff` (as `at_cutoff` with `customers`): the links known then gathered by the
    engine, stitched into persons here (one row per id, never per event), late events
    before the cutoff left out. Returns `name`."""
    at = int(cutoff.value) // 1_000
    links = engine.query(links_sql(source, at, live_since))
    created = (
        pd.to_datetime(customers[c.CREATED_AT], utc=True)
        if c.CREATED_AT in customers.columns
        else pd.Series(pd.NaT, index=customers.index, dtype="datetime64[ns, UTC]")
    )
    known = customers[created.isna() | (created < cutoff)]
    persons = stitch(links, known[[c.CUSTOMER_ID, c.EMAIL]]).frame
    engine.register(f"{name}_persons", persons[[c.ID_TYPE, c.ID_VALUE, c.PERSON_ID]])
    engine.view(name, resolved_sql(source, f"{name}_persons", at, live_since), reused=True)
    return name
