"""The recommender's inputs from events as SQL, run by both batch engines
(`features.engines`): interaction weights per customer and item, weights per store, and
each item's recent sales against its usual pace. `features.interactions` runs them on
the embedded engine over a frame; Spark runs the same text over a lake.

The relation read has `person_id`, `item_id`, `store_id`, `type`, `channel` (text), `ts`
(integer microseconds, UTC) and `quantity` (a number, missing allowed); the rules of
`features.churn_sql` hold (no decimal literals, no quoted identifiers, integer windows),
and where missing values sort is said (NULLS LAST): DuckDB and Spark differ by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from features import columns as c
from features.churn_sql import DAY, DAY_US

WEIGHT = "weight"
LAST_TS = "last_ts"
PURCHASES = "purchases"
LAST_PURCHASE = "last_purchase"


def number(value: float) -> str:
    """A double literal both engines read as a double (`6.0e0`, never the decimal `6.0`)."""
    text = repr(float(value))
    return text if "e" in text else f"{text}e0"


def text(value: str) -> str:
    """A string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def _case(column: str, table: Mapping[str, float], default: str) -> str:
    whens = " ".join(f"WHEN {text(key)} THEN {number(v)}" for key, v in table.items())
    return f"CASE {column} {whens} ELSE {default} END"


class Weighting(Protocol):
    """Weights by event type and channel and a half-life (`features.interactions`)."""

    @property
    def by_type(self) -> Mapping[str, float]: ...
    @property
    def by_channel(self) -> Mapping[str, float]: ...
    @property
    def half_life_days(self) -> float: ...


def weighted(source: str, as_of: int, weights: Weighting, needs: str) -> str:
    """Events before `as_of` with an item, a weighted type and a value in `needs`, each
    with its weight: type x channel x 0.5 ** (age in days / half-life)."""
    types = ", ".join(text(t) for t in weights.by_type) or "NULL"
    decay = f"POWER(5e-1, ({int(as_of)} - ts) / {DAY} / {number(weights.half_life_days)})"
    by_type = _case("type", weights.by_type, "0e0")
    by_channel = _case("channel", weights.by_channel, "1e0")
    return f"""
SELECT person_id, item_id, store_id, type, ts, quantity,
       {by_type} * {by_channel} * {decay} AS weight
FROM {source}
WHERE ts < {int(as_of)} AND {needs} IS NOT NULL AND item_id IS NOT NULL AND type IN ({types})"""


def interactions(source: str, as_of: int, weights: Weighting) -> str:
    """One row per (person_id, item_id) with a positive weight: weight, last_ts, purchases
    (net units bought), last_purchase (missing when never bought); sorted."""
    rows = weighted(source, as_of, weights, needs=c.PERSON_ID)
    units = "COALESCE(quantity, 1e0)"
    return f"""
SELECT person_id, item_id, SUM(weight) AS {WEIGHT}, MAX(ts) AS {LAST_TS},
       SUM(CASE WHEN type = {text(c.EventType.PURCHASE)} THEN {units}
                WHEN type = {text(c.EventType.RETURN)} THEN -{units} ELSE 0e0 END)
         AS {PURCHASES},
       MAX(CASE WHEN type = {text(c.EventType.PURCHASE)} THEN ts END) AS {LAST_PURCHASE}
FROM ({rows}) w
GROUP BY person_id, item_id
HAVING SUM(weight) > 1e-9
ORDER BY person_id, item_id"""


def store_activity(source: str, as_of: int, weights: Weighting) -> str:
    """Weight per (store_id, person_id, item_id) of events carrying a store; person_id
    missing for anonymous ones (a till receipt still says what sells where)."""
    rows = weighted(source, as_of, weights, needs=c.STORE_ID)
    return f"""
SELECT store_id, person_id, item_id, SUM(weight) AS {WEIGHT}
FROM ({rows}) w
GROUP BY store_id, person_id, item_id
ORDER BY store_id, person_id NULLS LAST, item_id"""


def item_trend(source: str, as_of: int, recent_days: float, baseline_days: float) -> str:
    """Per item bought in the baseline window: (purchases in the recent window + 1) /
    (the baseline's purchases at the recent window's length + 1)."""
    recent = int(as_of) - round(recent_days * DAY_US)
    baseline = int(as_of) - round(baseline_days * DAY_US)
    share = number(recent_days / baseline_days)
    return f"""
SELECT item_id,
       (SUM(CASE WHEN ts >= {recent} THEN 1 ELSE 0 END) + 1e0) / (COUNT(*) * {share} + 1e0)
         AS trend
FROM {source}
WHERE type = {text(c.EventType.PURCHASE)} AND ts < {int(as_of)} AND ts >= {baseline}
  AND item_id IS NOT NULL
GROUP BY item_id
ORDER BY item_id"""
