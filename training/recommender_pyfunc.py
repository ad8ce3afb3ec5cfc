"""MLflow "models from code" entry for the recommender: no pickled object is logged.

MLflow copies this file into the logged model and runs it on load; the learned state is
the `recommender` artifact (params.json + state.npz, loaded with allow_pickle=False).
Input: a frame with a `customer_id` column; params: `k` (default 10). Output: the
`customer_id, rank, item_id, score` frame of `Recommender.recommend`; customers the model
does not know get the most popular items.
"""

# No `from __future__ import annotations`: MLflow reads predict's type hints at run time.
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from models.base import Filters, Recommender


class RecommenderModel(PythonModel):
    """A saved `Recommender` served through MLflow's pyfunc interface."""

    def load_context(self, context: PythonModelContext) -> None:
        self.model = Recommender.load(Path(context.artifacts["recommender"]))

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, int | bool] | None = None,
    ) -> pd.DataFrame:
        """The default answer now (the repeat policy), as the API gives it from the
        trained history; `include_purchased` turns the policy off."""
        k = int((params or {}).get("k", 10))
        everything = bool((params or {}).get("include_purchased", False))
        filters = Filters.default_answer(pd.Timestamp.now(tz="UTC"), include_purchased=everything)
        customers = model_input["customer_id"].astype(str).tolist()
        return self.model.recommend_or_popular(customers, k, filters)


mlflow.models.set_model(RecommenderModel())
