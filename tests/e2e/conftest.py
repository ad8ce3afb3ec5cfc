"""A temporary store and MLflow registry, wired in through OMNI_* variables."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from service.registry import CHURN, RECOMMENDER, connect
from service.settings import Settings, get_settings
from tests.conftest import E2E_ALIAS as ALIAS
from tests.conftest import ServedStore, fit_recommender, publish_recommender


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("OMNI_DATABASE_URL", f"sqlite:///{tmp_path / 'omni.db'}")
    monkeypatch.setenv("OMNI_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    monkeypatch.setenv("OMNI_MLFLOW_ARTIFACT_ROOT", str(tmp_path / "mlruns" / "artifacts"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def generated_store(workspace: Path, customers: int, seed: int) -> Path:
    """`omni generate` then `omni ingest` into the workspace's store, as a user runs them;
    the data folder."""
    from typer.testing import CliRunner

    from training.cli import app

    data = workspace / "data"
    runner = CliRunner()
    made = runner.invoke(
        app, ["generate", "-n", str(customers), "--seed", str(seed), "--out", str(data)]
    )
    assert made.exit_code == 0, made.output
    ingested = runner.invoke(app, ["ingest", str(data)])
    assert ingested.exit_code == 0, ingested.output
    return data


def trained_on_both_engines(workspace: Path, model: str) -> tuple[Any, Any]:
    """`omni export events` into workspace/lake, then `omni train <model>` on Spark from
    the lake (version 1) and on the embedded engine from the store (version 2); their
    MLflow runs."""
    from mlflow import MlflowClient
    from typer.testing import CliRunner

    from training.cli import app

    runner, lake = CliRunner(), workspace / "lake"
    for args in (
        ["export", "events", "--format", "parquet", "--output", str(lake)],
        ["train", model, "--engine", "spark", "--lake", str(lake)],
        ["train", model],
    ):
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
    client = MlflowClient(tracking_uri=f"sqlite:///{workspace / 'mlruns' / 'mlflow.db'}")
    name = {"churn": CHURN, "recommender": RECOMMENDER}[model]
    spark_run, embedded_run = (
        client.get_run(str(client.get_model_version(name, version).run_id))
        for version in ("1", "2")
    )
    return spark_run, embedded_run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(settings: Settings, **more: str) -> dict[str, str]:
    """The environment that makes `omni serve` use these settings' store, registry, keys."""
    return {
        **os.environ,
        "OMNI_DATABASE_URL": settings.database_url,
        "OMNI_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "OMNI_MLFLOW_ARTIFACT_ROOT": str(settings.mlflow_artifact_root),
        "OMNI_API_KEYS": json.dumps(
            {key: spec.model_dump() for key, spec in settings.api_keys.items()}
        ),
        **more,
    }


@contextmanager
def serving(env: dict[str, str], log_path: Path, *args: str) -> Iterator[str]:
    """`omni serve` in its own process on a free port, until the block ends; its base URL."""
    port = free_port()
    omni = Path(sys.executable).with_name("omni")
    log = log_path.open("w")
    process = subprocess.Popen(
        [str(omni), "serve", "--port", str(port), *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx2.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if process.poll() is not None:
                raise AssertionError(log_path.read_text())
            time.sleep(0.3)
        else:
            raise AssertionError("the server did not become ready in 90 s")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def aliased_env(store: ServedStore, **more: str) -> dict[str, str]:
    """The environment of an `omni serve` of `store` at its clock, serving the `e2e` alias:
    a recommender fitted on the store now, and the store's churn model."""
    settings = store.settings
    publish_recommender(settings, fit_recommender(settings), alias=ALIAS)
    connect(settings).set_registered_model_alias(CHURN, ALIAS, store.churn_version)
    return server_env(settings, OMNI_MODEL_ALIAS=ALIAS, OMNI_CLOCK=store.clock.isoformat(), **more)


@pytest.fixture
def server(served_store: ServedStore, tmp_path: Path) -> Iterator[str]:
    """`omni serve` in its own process, serving the `e2e` alias of both models."""
    env = aliased_env(served_store)
    with serving(env, tmp_path / "server.log") as base:
        yield base
