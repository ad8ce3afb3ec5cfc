"""MLflow "models from code" entry for the churn model: no pickled object is logged.

Input: the churn feature frame (`features.churn.churn_features`), one row per customer.
Output: churn_probability and band per row.
"""

# No `from __future__ import annotations`: MLflow reads predict's type hints at run time.
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from models.churn import ChurnModel


class ChurnPyfunc(PythonModel):
    """A saved `ChurnModel` served through MLflow's pyfunc interface."""

    def load_context(self, context: PythonModelContext) -> None:
        self.model = ChurnModel.load(Path(context.artifacts["churn"]))

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, int] | None = None,
    ) -> pd.DataFrame:
        probability = self.model.predict_proba(model_input)
        return pd.DataFrame(
            {"churn_probability": probability, "band": self.model.bands(probability)},
            index=model_input.index,
        )


mlflow.models.set_model(ChurnPyfunc())
