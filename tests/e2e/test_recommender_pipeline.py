"""Synthetic data -> omni train recommender -> registry -> omni recommend, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from service.registry import RECOMMENDER
from tests.e2e.conftest import generated_store, trained_on_both_engines
from training.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_train_register_promote_and_export(workspace: Path) -> None:
    data = generated_store(workspace, 400, seed=3)

    trained = runner.invoke(app, ["train", "recommender", "--test-days", "28", "--tune", "4"])
    assert trained.exit_code == 0, trained.output
    for model in ("popularity", "repurchase", "itemknn", "ease", "als", "bpr"):
        assert model in trained.output
    client = MlflowClient(tracking_uri=f"sqlite:///{workspace / 'mlruns' / 'mlflow.db'}")
    challenger = client.get_model_version_by_alias(RECOMMENDER, "challenger")
    run = client.get_run(challenger.run_id)
    assert run.data.metrics["all/ndcg_at_10"] > 0
    assert run.data.tags["data.events"].isdigit()
    # The input is logged as an MLflow dataset: the store, the digest, the rows it held.
    (logged,) = run.inputs.dataset_inputs
    assert logged.dataset.name == "events" and logged.dataset.source_type == "omni_event_store"
    assert str(workspace / "omni.db") in logged.dataset.source
    assert json.loads(logged.dataset.profile)["events"] == run.data.tags["data.events"]
    assert logged.dataset.digest == run.data.tags["data.fingerprint"][:8]
    assert int(run.data.params["eval_customers"]) <= int(run.data.params["eval_eligible_customers"])
    assert float(run.data.params["tune_seconds"]) == 4
    assert any(key.startswith("tuned.als.") for key in run.data.params)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"comparison.md", "comparison.csv", "metric_at_k.png"} <= artifacts

    # No champion yet: the export says so instead of guessing.
    customers = workspace / "customers.csv"
    truth = pd.read_parquet(data / "customers.parquet")
    known = truth["customer_id"].head(5).tolist()
    pd.DataFrame({"customer_id": [*known, "SOMEONE-NEW"]}).to_csv(customers, index=False)
    out = workspace / "recs.csv"
    refused = runner.invoke(app, ["recommend", "--customers", str(customers), "--output", str(out)])
    assert refused.exit_code == 1 and "champion" in refused.output

    promoted = runner.invoke(app, ["promote", "recommender", "--alias", "champion"])
    assert promoted.exit_code == 0, promoted.output
    exported = runner.invoke(
        app, ["recommend", "--customers", str(customers), "--output", str(out), "--k", "5"]
    )
    assert exported.exit_code == 0, exported.output
    recs = pd.read_csv(out, dtype={"customer_id": str, "item_id": str})
    assert list(recs.columns) == ["customer_id", "rank", "item_id", "score"]
    assert recs.groupby("customer_id")["rank"].apply(list).map(len).eq(5).all()
    assert set(recs["customer_id"]) == {*known, "SOMEONE-NEW"}
    catalogue = set(pd.read_parquet(data / "catalogue.parquet")["item_id"])
    assert set(recs["item_id"]) <= catalogue

    # --until: customers are scored from their events before that day. Before the first
    # event nobody has a history, so everyone gets the same (popular) list.
    early = workspace / "early.csv"
    result = runner.invoke(
        app,
        ["recommend", "--customers", str(customers), "--output", str(early), "--k", "5",
         "--until", "2000-01-01"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lists = pd.read_csv(early, dtype=str).groupby("customer_id")["item_id"].apply(tuple)
    assert lists.nunique() == 1 and len(lists) == len(known) + 1
    # Mid-history: the known customers have their own lists again.
    first_day = pd.read_parquet(data / "events.parquet")["ts"].min()
    middle = (first_day + pd.Timedelta(days=200)).strftime("%Y-%m-%d")
    result = runner.invoke(
        app,
        ["recommend", "--customers", str(customers), "--output", str(early), "--k", "5",
         "--until", middle],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    mid = pd.read_csv(early, dtype=str)
    assert set(mid["item_id"]) <= catalogue
    assert mid.groupby("customer_id")["item_id"].apply(tuple).nunique() > 1

    # The registered model also loads as a plain MLflow pyfunc.
    mlflow.set_tracking_uri(f"sqlite:///{workspace / 'mlruns' / 'mlflow.db'}")
    pyfunc = mlflow.pyfunc.load_model(f"models:/{RECOMMENDER}@champion")
    served = pyfunc.predict(pd.DataFrame({"customer_id": known[:2]}), params={"k": 3})
    assert served.groupby("customer_id").size().to_dict() == {known[0]: 3, known[1]: 3}


@pytest.mark.slow
@pytest.mark.spark
def test_a_recommender_trained_on_spark_measures_as_on_the_embedded_engine(
    workspace: Path, spark: Any
) -> None:
    """omni export events -> omni train recommender --engine spark --lake: the same
    comparison as the embedded engine's, the lake logged as the input, and the model it
    registers answers omni recommend."""
    generated_store(workspace, 400, seed=3)
    lake = workspace / "lake"
    spark_run, embedded_run = trained_on_both_engines(workspace, "recommender")
    assert (spark_run.data.params["engine"], embedded_run.data.params["engine"]) == (
        "spark",
        "embedded",
    )
    assert spark_run.data.params["chosen"] == embedded_run.data.params["chosen"]
    # Every figure of every model, but BPR's: implicit's BPR updates its factors from
    # several threads at once and differs from run to run on one engine too.
    figures = {
        key: value
        for key, value in embedded_run.data.metrics.items()
        if "/" in key and not key.startswith("bpr/") and not key.endswith("train_s")
    }
    assert len(figures) > 100
    for key, value in figures.items():
        assert spark_run.data.metrics[key] == pytest.approx(value, abs=1e-9), key
    (logged,) = spark_run.inputs.dataset_inputs
    assert json.loads(logged.dataset.source)["url"] == lake.resolve().as_uri()
    assert spark_run.data.tags["data.fingerprint"] == embedded_run.data.tags["data.fingerprint"]

    promoted = runner.invoke(app, ["promote", "recommender", "--version", "1", "--force"])
    assert promoted.exit_code == 0, promoted.output
    customers = workspace / "customers.csv"
    pd.DataFrame({"customer_id": ["C0000001", "C0000002"]}).to_csv(customers, index=False)
    out = workspace / "recs.csv"
    answered = runner.invoke(
        app, ["recommend", "--customers", str(customers), "--output", str(out), "--k", "5"]
    )
    assert answered.exit_code == 0, answered.output
    recs = pd.read_csv(out, dtype=str)
    assert recs.groupby("customer_id").size().to_dict() == {"C0000001": 5, "C0000002": 5}
    # Ranked on Spark's executors, the model broadcast: the same lists.
    pd.DataFrame({"customer_id": [f"C{n:07d}" for n in range(1, 400)] + ["nobody"]}).to_csv(
        customers, index=False
    )
    for engine, path in (("embedded", out), ("spark", workspace / "recs-spark.csv")):
        args = ["recommend", "--customers", str(customers), "--output", str(path)]
        answered = runner.invoke(app, [*args, "--engine", engine])
        assert answered.exit_code == 0, answered.output
    here, there = (pd.read_csv(p, dtype={"customer_id": str, "item_id": str}) for p in (out, path))
    assert len(here) == 400 * 10
    pd.testing.assert_frame_equal(there, here)
