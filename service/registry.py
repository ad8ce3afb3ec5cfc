"""Reading the MLflow model registry: which version an alias points at, and its files.

Training writes the registry (training/tracking.py); the service and the batch commands
read it through these functions. Models are stored pickle-free (npz, json, LightGBM
text), so loading runs no code from the artifact.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import mlflow
from mlflow import MlflowClient

from models.base import Recommender
from models.churn import ChurnModel
from service.settings import Settings

RECOMMENDER = "omni-recommender"
#: The run tag holding when training read the event log: events stored after it are new
#: to the model, whatever their own time.
READ_AT_TAG = "events_read_at"
CHURN = "omni-churn"
M = TypeVar("M")


class NoSuchModelVersion(LookupError):
    """A registered model, version or alias that does not exist."""


def connect(settings: Settings) -> MlflowClient:
    """A client on the settings' tracking and registry store."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri)


def previous_tag(alias: str) -> str:
    """The model-version tag naming the version `alias` pointed at before this one (set by
    `omni promote`): what the service falls back to first when this one is refused."""
    return f"omni.previous.{alias}"


def version_of(client: MlflowClient, name: str, alias: str) -> str:
    """The version of `name` that `alias` points at; `NoSuchModelVersion` when none does."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException as exc:
        raise NoSuchModelVersion(f"no version of {name} has the alias '{alias}'") from exc


def read_at_of(client: MlflowClient, name: str, version: str) -> datetime:
    """When the training of `version` read the events (its run's tag; else the run's
    start, for versions logged without it)."""
    run = client.get_run(str(client.get_model_version(name, version).run_id))
    tagged = run.data.tags.get(READ_AT_TAG)
    if tagged:
        return datetime.fromisoformat(tagged)
    return datetime.fromtimestamp(run.info.start_time / 1000, tz=UTC)


def model_artifacts(
    client: MlflowClient, name: str, alias: str, into: Path, version: str | None = None
) -> tuple[Path, str]:
    """Download `version` of `name` (default: the one `alias` points at) into `into`;
    returns its artifacts folder and the version."""
    version = version or version_of(client, name, alias)
    try:
        local = mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(into))
    except mlflow.exceptions.MlflowException as exc:
        raise NoSuchModelVersion(f"{name} version {version} cannot be read: {exc}") from exc
    return Path(local) / "artifacts", version


def load_recommender(
    client: MlflowClient, alias: str, version: str | None = None
) -> tuple[Recommender, str]:
    """The recommender registered under `alias` (or that `version`), and its version."""
    return _load(client, RECOMMENDER, "recommender", Recommender.load, alias, version)


def load_churn(
    client: MlflowClient, alias: str, version: str | None = None
) -> tuple[ChurnModel, str]:
    """The churn model registered under `alias` (or that `version`), and its version."""
    return _load(client, CHURN, "churn", ChurnModel.load, alias, version)


def _load(
    client: MlflowClient,
    name: str,
    folder: str,
    load: Callable[[Path], M],
    alias: str,
    version: str | None,
) -> tuple[M, str]:
    with tempfile.TemporaryDirectory() as tmp:
        artifacts, version = model_artifacts(client, name, alias, Path(tmp), version)
        return load(artifacts / folder), version
