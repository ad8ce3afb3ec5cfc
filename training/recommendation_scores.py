"""`omni recommend --engine spark` and `omni export offers --engine spark`: every customer's
list ranked on Spark's executors, the registered model broadcast to them once, the
customers split among them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from features.spark import SparkEngine
from models.base import Filters, Recommender

_SCHEMA = "customer_id string, rank int, item_id string, score double"
#: Customers a task ranks at once (the model ranks a block in one matrix product).
BLOCK = 5_000


def recommend_on_spark(
    engine: SparkEngine,
    model: Recommender,
    customers: Sequence[str],
    k: int,
    filters: Filters,
) -> pd.DataFrame:
    """`model.recommend_or_popular(customers, k, filters)`, ranked on the executors: the
    same rows, in the order of `customers`."""
    spark = engine.spark
    order = pd.DataFrame({"customer_id": list(customers), "position": range(len(customers))})
    parts = max(1, -(-len(order) // BLOCK))
    ids = spark.createDataFrame(order).repartition(parts)
    shared = spark.sparkContext.broadcast(model)

    def rank(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for chunk in chunks:
            found = shared.value.recommend_or_popular(chunk["customer_id"].tolist(), k, filters)
            yield found.astype({"rank": "int32", "score": "float64"})

    ranked = ids.select("customer_id").mapInPandas(rank, _SCHEMA).toArrow().to_pandas()
    shared.unpersist()
    ranked = ranked.merge(order, on="customer_id").sort_values(["position", "rank"], kind="stable")
    out: pd.DataFrame = ranked.drop(columns="position").reset_index(drop=True)
    return out


def top_positions_on_spark(
    engine: SparkEngine, model: Recommender, rows: np.ndarray, n: int
) -> np.ndarray:
    """`model.rank(rows, n)[0]` (top `n` item positions per customer position, -1 where
    fewer), ranked on the executors: what a batch of decisions ranks its candidates by."""
    spark = engine.spark
    order = pd.DataFrame({"row": rows.astype(np.int64), "position": np.arange(len(rows))})
    parts = max(1, -(-len(order) // BLOCK))
    shared = spark.sparkContext.broadcast(model)

    def rank(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for chunk in chunks:
            top, _ = shared.value.rank(chunk["row"].to_numpy(), n)
            yield pd.DataFrame({"position": chunk["position"], "top": list(top)})

    ranked = (
        spark.createDataFrame(order)
        .repartition(parts)
        .mapInPandas(rank, "position long, top array<long>")
        .toArrow()
        .to_pandas()
    )
    shared.unpersist()
    out = np.full((len(rows), n), -1, dtype=np.int64)
    if len(ranked):
        out[ranked["position"].to_numpy()] = np.stack(ranked["top"].to_numpy())
    return out
