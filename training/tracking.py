"""MLflow: where runs go, how a recommender is logged and registered, aliases, loading.

Tracking and registry live in one SQLite database (`sqlite:///mlruns/mlflow.db` by
default) with artifacts under `mlruns/artifacts`; the plain ./mlruns file store is not used.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from models.base import Recommender
from service.registry import RECOMMENDER, NoSuchModelVersion, previous_tag, version_of
from service.settings import Settings

#: The customer id of logged input examples: no real customer's id is ever logged.
EXAMPLE_CUSTOMER = "example-customer"
PYFUNC_CODE = Path(__file__).with_name("recommender_pyfunc.py")
#: What the logged recommender takes and gives (see training/recommender_pyfunc.py).
RECOMMENDER_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "customer_id")]),
    outputs=Schema(
        [
            ColSpec("string", "customer_id"),
            ColSpec("long", "rank"),
            ColSpec("string", "item_id"),
            ColSpec("float", "score"),
        ]
    ),
    params=ParamSchema(
        [ParamSpec("k", "long", 10), ParamSpec("include_purchased", "boolean", False)]
    ),
)


def setup(settings: Settings, experiment: str) -> MlflowClient:
    """Point MLflow at the settings' store and select (or create) `experiment`."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    root = settings.mlflow_artifact_root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    client = MlflowClient()
    if client.get_experiment_by_name(experiment) is None:
        client.create_experiment(experiment, artifact_location=(root / experiment).as_uri())
    mlflow.set_experiment(experiment)
    return client


def metric_key(name: str) -> str:
    """MLflow metric names allow no '@': 'all/ndcg@10' -> 'all/ndcg_at_10'."""
    return name.replace("@", "_at_")


def log_recommender(
    model: Recommender, client: MlflowClient, *, alias: str | None = "challenger"
) -> str:
    """Log `model` as a pyfunc in the active run, register it, alias it `alias`.

    Returns the new registered version.
    """
    with tempfile.TemporaryDirectory() as tmp:
        saved = model.save(Path(tmp) / "recommender")
        return register(
            client,
            RECOMMENDER,
            code=PYFUNC_CODE,
            artifacts={"recommender": saved},
            signature=RECOMMENDER_SIGNATURE,
            # MLflow runs the logged model on this example: a smoke check at registration.
            # A made-up id (no real customer in any artifact): the cold-start answer.
            input_example=(pd.DataFrame({"customer_id": [EXAMPLE_CUSTOMER]}), {"k": 3}),
            alias=alias,
        )


def register(
    client: MlflowClient,
    name: str,
    *,
    code: Path,
    artifacts: dict[str, Path],
    input_example: object,
    signature: ModelSignature | None = None,
    alias: str | None = "challenger",
) -> str:
    """Log a models-from-code pyfunc (`code`) around saved `artifacts` in the active run,
    register it as `name` and alias the new version `alias` (None: none); returns the
    version."""
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(code),
        artifacts={key: str(path) for key, path in artifacts.items()},
        registered_model_name=name,
        signature=signature,
        input_example=input_example,
        pip_requirements=["omni"],
    )
    version = str(info.registered_model_version)
    if alias is not None:
        client.set_registered_model_alias(name, alias, version)
    return version


def promote(client: MlflowClient, name: str, alias: str, version: str | None = None) -> str:
    """Point `alias` at `version` (default: the current challenger); returns the version."""
    if version is None:
        version = version_of(client, name, "challenger")
    try:
        client.get_model_version(name, version)
    except mlflow.exceptions.MlflowException as exc:
        raise NoSuchModelVersion(f"{name} has no version {version}") from exc
    try:
        before: str | None = version_of(client, name, alias)
    except NoSuchModelVersion:
        before = None
    client.set_registered_model_alias(name, alias, version)
    if before is not None and before != version:
        # What the service falls back to first if this version is refused.
        client.set_model_version_tag(name, version, previous_tag(alias), before)
    return version


def comparison_markdown(table: pd.DataFrame, columns: list[str]) -> str:
    """The comparison table as Markdown (logged as an artifact, printed by the CLI)."""
    shown = table[columns].round(4).reset_index()
    head = "| " + " | ".join(shown.columns) + " |"
    rule = "| " + " | ".join("---" for _ in shown.columns) + " |"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"
