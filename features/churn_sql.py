"""Churn's population, labels and features as SQL: the one definition both batch engines
run (DuckDB embedded, Spark beyond one machine; `features.engines`).

The queries read a relation of events with the columns `person_id`, `type`, `channel`
(text), `ts` (integer microseconds, UTC), `price` and `quantity` (numbers, missing
allowed), and use only SQL both engines accept: no quoted identifiers, no integer
division, no division that may meet a zero (Spark's ANSI mode raises on it), no decimal
literals (`1.0` is a DECIMAL to Spark: every number is written as a double, `1e0`), windows
compared on the integer times (exact, whatever the float rounding of an age in days).
Cutoffs and windows are numbers written into the text, never user text.

Every value comes out bit for bit the same on both engines, so that a model fitted on
either is the same model (LightGBM's bins move with a last-digit difference): sums are of
integers (days, whole cents), a spread is worked out from integer sums, and the one
transcendental feature (`silence_chance`, an exponential, whose last digit differs
between the JVM's and C's) is computed from the query's columns by `finish`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import columns as c

DAY_US = 86_400_000_000
#: A day in microseconds as a double literal: both engines read `8.64e10` as a double,
#: while Spark reads `86400000000.0` as a decimal (and rounds what it divides).
DAY = "8.64e10"
#: Channels that get their own recency and frequency columns.
CHANNEL_FEATURES = (c.Channel.WEB, c.Channel.APP, c.Channel.STORE)
#: Events of a type counted over recent days: (column, type, days).
RECENT_COUNTS = (
    ("views_30", c.EventType.VIEW, 30),
    ("carts_30", c.EventType.ADD_TO_CART, 30),
    ("purchases_30", c.EventType.PURCHASE, 30),
    ("returns_365", c.EventType.RETURN, 365),
    ("email_opens_90", c.EventType.EMAIL_OPEN, 90),
    ("email_clicks_90", c.EventType.EMAIL_CLICK, 90),
    ("offers_accepted_90", c.EventType.OFFER_ACCEPTED, 90),
    ("complaints_90", c.EventType.COMPLAINT, 90),
)
#: Columns that stay missing when a person has nothing to measure (every other is 0).
MAY_BE_MISSING = ("recency_days", "_gap_days", "gap_ratio")


def micros(ts: pd.Timestamp) -> int:
    """A UTC cutoff as integer microseconds. Raises ValueError for a naive one."""
    if ts.tzinfo is None:
        raise ValueError(f"as_of {ts} has no UTC offset")
    return int(ts.value) // 1_000  # `value` is in nanoseconds whatever the unit


def _before(as_of: int, days: float) -> int:
    """The first microsecond `days` before `as_of`."""
    return as_of - round(days * DAY_US)


def population(source: str, as_of: int, lookback_days: float) -> str:
    """Persons with a purchase in [as_of - lookback, as_of): one `person_id` column."""
    return (
        f"SELECT DISTINCT person_id FROM {source} WHERE type = '{c.EventType.PURCHASE}' "
        f"AND person_id IS NOT NULL AND ts < {as_of} AND ts >= {_before(as_of, lookback_days)}"
    )


def labels(source: str, as_of: int, lookback_days: float, horizon_days: float) -> str:
    """`person_id`, `churned` (1 when no purchase in [as_of, as_of + horizon)) for the
    population, sorted by person."""
    end = as_of + round(horizon_days * DAY_US)
    return f"""
WITH people AS ({population(source, as_of, lookback_days)}),
later AS (
  SELECT DISTINCT person_id FROM {source}
  WHERE type = '{c.EventType.PURCHASE}' AND ts >= {as_of} AND ts < {end}
)
SELECT p.person_id AS person_id, CASE WHEN l.person_id IS NULL THEN 1 ELSE 0 END AS churned
FROM people p LEFT JOIN later l ON p.person_id = l.person_id
ORDER BY p.person_id"""


def labelled(source: str, as_of: int, lookback_days: float, horizon_days: float) -> str:
    """`features` and the `churned` label of `labels` in one query (one pass of an engine
    instead of two), sorted by person."""
    return f"""
SELECT f.*, l.churned AS churned
FROM ({features(source, as_of, lookback_days)}) f
JOIN ({labels(source, as_of, lookback_days, horizon_days)}) l ON f.person_id = l.person_id
ORDER BY f.person_id"""


def feature_names() -> list[str]:
    """The feature columns, in the order the query returns them (and models read)."""
    names = []
    for prefix in ["", *(f"{ch}_" for ch in CHANNEL_FEATURES)]:
        names += [f"{prefix}recency_days", f"{prefix}purchase_days", f"{prefix}spend"]
    names += [
        "mean_gap_days", "std_gap_days", "gap_ratio", "purchase_days_last_90",
        "purchase_days_prev_90", "purchase_trend", "first_purchase_days",
        "lifetime_purchase_days", "purchase_rate", "silence_chance", "recency_share",
    ]  # fmt: skip
    names += [name for name, _, _ in RECENT_COUNTS]
    names += ["tenure_days", "days_since_any_event", "channels_used", "store_visit_days"]
    return names


def features(source: str, as_of: int, lookback_days: float) -> str:
    """One row per person of the population, from events strictly before `as_of`
    (`features.churn.churn_features` says what each column means), sorted by person."""
    window = _before(as_of, lookback_days)
    buy = f"type = '{c.EventType.PURCHASE}'"
    # Money in whole cents, summed as integers: the same total in any order of addition.
    cents = "CAST(FLOOR(COALESCE(price, 0e0) * COALESCE(quantity, 1e0) * 1e2 + 5e-1) AS BIGINT)"
    rfm = []
    for prefix, only in [("", "")] + [
        (f"{ch}_", f" AND channel = '{ch}'") for ch in CHANNEL_FEATURES
    ]:
        rfm += [
            f"MIN(CASE WHEN {buy}{only} THEN age END) AS {prefix}recency_days",
            f"COUNT(DISTINCT CASE WHEN {buy}{only} AND ts >= {window} THEN d END) "
            f"AS {prefix}purchase_days",
            f"SUM(CASE WHEN {buy}{only} AND ts >= {window} THEN {cents} ELSE 0 END) / 1e2 "
            f"AS {prefix}spend",
        ]
    counts = [
        f"SUM(CASE WHEN type = '{kind}' AND ts > {_before(as_of, days)} THEN 1 ELSE 0 END) "
        f"AS {name}"
        for name, kind, days in RECENT_COUNTS
    ]
    per_person = ",\n    ".join(
        [
            *rfm,
            f"MAX(CASE WHEN {buy} THEN age END) AS first_purchase_days",
            f"COUNT(DISTINCT CASE WHEN {buy} THEN d END) AS lifetime_purchase_days",
            *counts,
            "MAX(age) AS tenure_days",
            "MIN(age) AS days_since_any_event",
            "COUNT(DISTINCT channel) AS channels_used",
            f"COUNT(DISTINCT CASE WHEN channel = '{c.Channel.STORE}' THEN d END) "
            "AS store_visit_days",
        ]
    )
    recent, before = _before(as_of, 90), _before(as_of, 180)
    columns = ",\n  ".join(
        f"CAST({_outer(name)} AS DOUBLE) AS {name}" for name in feature_names() if name != SILENCE
    )
    return f"""
WITH people AS ({population(source, as_of, lookback_days)}),
past AS (
  SELECT e.person_id AS person_id, e.type AS type, e.channel AS channel, e.ts AS ts,
         e.price AS price, e.quantity AS quantity,
         ({as_of} - e.ts) / {DAY} AS age,
         CAST(FLOOR(e.ts / {DAY}) AS BIGINT) AS d
  FROM {source} e JOIN people p ON e.person_id = p.person_id
  WHERE e.ts < {as_of}
),
agg AS (
  SELECT person_id,
    {per_person}
  FROM past GROUP BY person_id
),
days AS (
  SELECT person_id, d, MIN(ts) AS first_ts FROM past WHERE {buy} GROUP BY person_id, d
),
gaps AS (
  SELECT person_id, first_ts,
         d - LAG(d) OVER (PARTITION BY person_id ORDER BY d) AS gap
  FROM days
),
gap_stats AS (
  SELECT person_id, COUNT(gap) AS n_gaps, SUM(gap) AS sum_gaps,
         SUM(gap * gap) AS sum_squared_gaps,
         ({as_of} - MAX(first_ts)) / {DAY} AS last_day_age,
         SUM(CASE WHEN first_ts > {recent} THEN 1 ELSE 0 END) AS purchase_days_last_90,
         SUM(CASE WHEN first_ts <= {recent} AND first_ts > {before} THEN 1 ELSE 0 END)
           AS purchase_days_prev_90
  FROM gaps GROUP BY person_id
),
joined AS (
  SELECT a.*, g.last_day_age,
         g.sum_gaps / NULLIF(g.n_gaps * 1e0, 0e0) AS mean_gap_days,
         SQRT((g.n_gaps * g.sum_squared_gaps - g.sum_gaps * g.sum_gaps)
              / NULLIF(g.n_gaps * (g.n_gaps - 1) * 1e0, 0e0)) AS std_gap_days,
         g.purchase_days_last_90, g.purchase_days_prev_90,
         GREATEST(a.first_purchase_days, 1e0) AS history,
         a.lifetime_purchase_days / GREATEST(a.first_purchase_days, 1e0) AS purchase_rate
  FROM agg a LEFT JOIN gap_stats g ON a.person_id = g.person_id
)
SELECT CAST(person_id AS STRING) AS person_id,
  {columns}
FROM joined ORDER BY person_id"""


SILENCE = "silence_chance"


def finish(found: pd.DataFrame) -> pd.DataFrame:
    """`features`' rows as the model's input: indexed by person, floats, in the order of
    `feature_names`, with the chance of the silence so far at the person's purchase rate
    (Poisson: exp(-rate x recency)) worked out here, the same for every engine."""
    out = found.set_index(c.PERSON_ID)
    out.index = pd.Index(out.index.astype(str), name=None)
    out = out.astype(float)
    out[SILENCE] = np.exp(-out["purchase_rate"] * out["recency_days"])
    return out[feature_names()]


def _outer(name: str) -> str:
    """The expression of feature `name` over `joined`."""
    derived = {
        "gap_ratio": "last_day_age / NULLIF(mean_gap_days, 0e0)",
        "purchase_trend": "(COALESCE(purchase_days_last_90, 0) + 1e0) "
        "/ (COALESCE(purchase_days_prev_90, 0) + 1e0)",
        "recency_share": "recency_days / history",
    }
    expression = derived.get(name, name)
    if name.endswith(MAY_BE_MISSING) or name in derived:
        return expression
    return f"COALESCE({expression}, 0)"
