"""`omni score churn`: every person of the population scored by a registered churn model,
the features computed by the batch engine and the model applied where the rows are
(on the driver for the embedded engine, on Spark's executors with the model broadcast)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from features import churn_sql
from features import columns as c
from features.churn import feature_frame
from features.churn_sql import micros
from features.engines import EVENTS, BatchEngine
from features.point_in_time import resolved_sql
from models.churn import ChurnModel

#: The columns of a churn score export, in order.
SCORE_COLUMNS = ("customer_id", "churn_probability", "band", "top_drivers")
_SPARK_SCHEMA = (
    "customer_id string, churn_probability double, band string, top_drivers array<string>"
)


def scored(model: ChurnModel, features: pd.DataFrame) -> pd.DataFrame:
    """One row per person of `features` (`churn_sql.features`' rows): probability, band
    and the top reasons (a list each), as the service answers them."""
    X = feature_frame(features)
    if X.empty:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in SCORE_COLUMNS})
    probability = np.clip(model.predict_proba(X), 0, 1)
    bands = model.bands(probability)
    return pd.DataFrame(
        {
            "customer_id": X.index.to_numpy(dtype=object),
            "churn_probability": probability.round(4),
            "band": bands,
            "top_drivers": model.drivers(X, top=3, bands=bands),
        }
    )


def score_everyone(
    engine: BatchEngine,
    model: ChurnModel,
    identities: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    lookback_days: float,
) -> pd.DataFrame:
    """Churn scores of the population at `as_of` (persons from the stored `identities`),
    sorted by person."""
    engine.register("persons_stored", identities[[c.ID_TYPE, c.ID_VALUE, c.PERSON_ID]])
    engine.view("events_resolved", resolved_sql(EVENTS, "persons_stored"), reused=True)
    sql = churn_sql.features("events_resolved", micros(as_of), lookback_days)
    from features.spark import SparkEngine

    if not isinstance(engine, SparkEngine):
        return scored(model, engine.query(sql))
    shared = engine.spark.sparkContext.broadcast(model)

    def score(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for chunk in chunks:
            yield scored(shared.value, chunk)

    out = engine.frame(sql).mapInPandas(score, _SPARK_SCHEMA).orderBy("customer_id")
    result: pd.DataFrame = out.toArrow().to_pandas()
    shared.unpersist()
    result["top_drivers"] = result["top_drivers"].map(list)
    return result


def persons_seen(engine: BatchEngine) -> pd.DataFrame:
    """Every person with an event in `events_resolved` (`score_everyone` defines it) and
    whether they ever bought (`bought`): who is "new" and who "lapsed" when not scored."""
    return engine.query(
        f"""
SELECT CAST(person_id AS STRING) AS person_id,
       MAX(CASE WHEN type = '{c.EventType.PURCHASE}' THEN 1 ELSE 0 END) AS bought
FROM events_resolved WHERE person_id IS NOT NULL GROUP BY person_id"""
    )
