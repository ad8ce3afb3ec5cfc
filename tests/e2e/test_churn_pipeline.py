"""Synthetic data -> omni train churn -> registry -> omni score churn, as a marketer runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from service.registry import CHURN
from service.settings import SCOPES, ApiKey
from tests.conftest import ADMIN_KEY, fit_recommender, publish_recommender
from tests.e2e.conftest import generated_store, server_env, serving, trained_on_both_engines
from training.cli import app
from training.cli_common import settings_for
from training.cli_serve import replay_clock

runner = CliRunner()


@pytest.mark.slow
def test_train_register_and_score_churn(workspace: Path) -> None:
    data = generated_store(workspace, 1500, seed=9)

    trained = runner.invoke(app, ["train", "churn"])
    assert trained.exit_code == 0, trained.output
    for row in ("recency", "bg/nbd", "omni"):
        assert row in trained.output
    client = MlflowClient(tracking_uri=f"sqlite:///{workspace / 'mlruns' / 'mlflow.db'}")
    version = client.get_model_version_by_alias(CHURN, "challenger")
    run = client.get_run(version.run_id)
    assert run.data.metrics["omni/auc"] > run.data.metrics["recency/auc"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"comparison.csv", "calibration_and_lift.png"} <= artifacts

    out = workspace / "scores.csv"
    refused = runner.invoke(app, ["score", "churn", "--as-of", "2026-09-01", "--output", str(out)])
    assert refused.exit_code == 1 and "champion" in refused.output
    promoted = runner.invoke(app, ["promote", "churn", "--replay"])
    assert promoted.exit_code == 0, promoted.output
    # Every person's answer is scored once, for the clock a replayed service reads.
    assert f"as of {replay_clock(settings_for(None)):%Y-%m-%d %H:%M} UTC" in promoted.output
    scored = runner.invoke(app, ["score", "churn", "--as-of", "2026-07-01", "--output", str(out)])
    assert scored.exit_code == 0, scored.output
    scores = pd.read_csv(out, dtype={"customer_id": str})
    assert list(scores.columns) == ["customer_id", "churn_probability", "band", "top_drivers"]
    assert scores["churn_probability"].between(0, 1).all()
    assert set(scores["band"]) <= {"low", "medium", "high"}
    assert scores["top_drivers"].notna().mean() > 0.9
    # The synthetic churners (stopping in the following 90 days) score higher than the rest.
    truth = pd.read_parquet(data / "truth" / "customers.parquet").set_index("customer_id")
    stop = truth["churn_date"]
    soon = stop.notna() & (stop < pd.Timestamp("2026-09-29", tz="UTC"))
    leaving = scores["customer_id"].map(soon).fillna(False).astype(bool)
    assert scores.loc[leaving, "churn_probability"].mean() > (
        scores.loc[~leaving, "churn_probability"].mean() + 0.1
    )


@pytest.mark.slow
@pytest.mark.spark
def test_churn_trained_on_spark_is_registered_and_served(workspace: Path, spark: Any) -> None:
    """omni export events -> omni train churn --engine spark -> promote -> omni serve: the
    answer a customer gets comes from the model Spark's features trained, and the same
    training on the embedded engine measures exactly the same."""
    generated_store(workspace, 600, seed=5)
    spark_run, embedded_run = trained_on_both_engines(workspace, "churn")
    assert spark_run.data.params["engine"] == "spark"
    assert embedded_run.data.params["engine"] == "embedded"
    assert spark_run.data.metrics == embedded_run.data.metrics  # the same table, every figure
    assert spark_run.data.tags["data.fingerprint"] == embedded_run.data.tags["data.fingerprint"]

    promoted = runner.invoke(app, ["promote", "churn", "--version", "1", "--replay"])
    assert promoted.exit_code == 0, promoted.output
    settings = settings_for(None).model_copy(
        update={"api_keys": {ADMIN_KEY: ApiKey(name="admin", scopes=list(SCOPES))}}
    )
    scores = workspace / "scores.csv"
    scored = runner.invoke(
        app, ["score", "churn", "--as-of", "2026-07-01", "--output", str(scores)]
    )
    assert scored.exit_code == 0, scored.output
    customer = str(pd.read_csv(scores, dtype={"customer_id": str})["customer_id"].iloc[0])
    publish_recommender(settings, fit_recommender(settings))  # /ready wants both models
    env = server_env(settings, OMNI_CLOCK=replay_clock(settings).isoformat())
    with serving(env, workspace / "server.log") as base:
        answer = httpx2.get(
            f"{base}/v1/customers/{customer}/churn", headers={"X-API-Key": ADMIN_KEY}, timeout=30
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == "1" and 0 <= body["probability"] <= 1
    assert body["band"] in {"low", "medium", "high"} and body["drivers"]
