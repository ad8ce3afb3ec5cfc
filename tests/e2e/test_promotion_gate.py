"""The quality gate, as an operator meets it: `omni promote` refuses a worse version and
one trained on another store, says why, and --force overrides it; the service refuses to
load a version that does not fit the store and names it in /ready."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from typer.testing import CliRunner

from features import columns as c
from features.matrix import with_holdout
from models import RecentPopularity
from service.app import create_app
from service.registry import CHURN, RECOMMENDER
from service.settings import get_settings
from service.storage.engine import open_engine
from service.storage.reader import load_events, load_table
from tests.e2e.conftest import generated_store
from training.cli import app
from training.tracking import log_recommender, setup

runner = CliRunner()


def register_popularity(workspace: Path, *, rename_items: bool, ndcg: float) -> str:
    """A popularity recommender on the store's events (items renamed: as if another
    store's), registered with a training run that logged `ndcg` on the champion's split."""
    settings = get_settings()
    engine = open_engine(settings.database_url)
    events, catalogue = load_events(engine), load_table(engine, "catalogue")
    engine.dispose()
    if rename_items:
        events = events.assign(**{c.ITEM_ID: "elsewhere-" + events[c.ITEM_ID].astype(str)})
        catalogue = catalogue.assign(**{c.ITEM_ID: "elsewhere-" + catalogue[c.ITEM_ID]})
    as_of = events[c.TS].max() + pd.Timedelta(seconds=1)
    model = RecentPopularity().fit(
        with_holdout(events, as_of=as_of, holdout_days=28, catalogue=catalogue)
    )
    client = MlflowClient(settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(RECOMMENDER, "champion")
    params = client.get_run(str(champion.run_id)).data.params
    setup(settings, RECOMMENDER)
    with mlflow.start_run(run_name="a worse recommender"):
        mlflow.log_params({"cutoff": params["cutoff"], "test_days": params["test_days"]})
        mlflow.log_metric("all/ndcg_at_10", ndcg)
        return log_recommender(model, client)


@pytest.mark.slow
def test_promote_refuses_worse_and_foreign_versions_unless_forced(workspace: Path) -> None:
    generated_store(workspace, 400, seed=3)
    trained = runner.invoke(app, ["train", "recommender", "--test-days", "28"])
    assert trained.exit_code == 0, trained.output
    first = runner.invoke(app, ["promote", "recommender"])
    assert first.exit_code == 0, first.output  # nothing to compare with yet
    assert "no version to compare with" in first.output
    client = MlflowClient(get_settings().mlflow_tracking_uri)
    champion = str(client.get_model_version_by_alias(RECOMMENDER, "champion").version)

    worse = register_popularity(workspace, rename_items=False, ndcg=0.001)
    refused = runner.invoke(app, ["promote", "recommender", "--version", worse])
    assert refused.exit_code == 1
    assert "worse than the current version" in refused.output and "--force" in refused.output
    assert str(client.get_model_version_by_alias(RECOMMENDER, "champion").version) == champion

    foreign = register_popularity(workspace, rename_items=True, ndcg=0.9)
    refused = runner.invoke(app, ["promote", "recommender", "--version", foreign])
    assert refused.exit_code == 1 and "in the store's catalogue" in refused.output
    assert str(client.get_model_version_by_alias(RECOMMENDER, "champion").version) == champion

    # Forced through, the service still refuses to serve it, falls back and says so.
    forced = runner.invoke(app, ["promote", "recommender", "--version", foreign, "--force"])
    assert forced.exit_code == 0, forced.output
    assert str(client.get_model_version_by_alias(RECOMMENDER, "champion").version) == foreign
    with TestClient(create_app(get_settings())) as api:
        ready = api.get("/ready").json()  # 503: no churn model here, but it says why
    # The version the alias pointed at before serves (not the newer, worse one).
    assert ready["models"][RECOMMENDER] == champion
    why = ready["fallbacks"][RECOMMENDER]
    assert f"version {foreign}" in why and "does not fit this store" in why


@pytest.mark.slow
def test_promote_churn_refuses_a_worse_version(workspace: Path) -> None:
    generated_store(workspace, 1200, seed=9)
    assert runner.invoke(app, ["train", "churn"]).exit_code == 0
    assert runner.invoke(app, ["promote", "churn"]).exit_code == 0
    assert runner.invoke(app, ["train", "churn"]).exit_code == 0
    client = MlflowClient(get_settings().mlflow_tracking_uri)
    challenger = client.get_model_version_by_alias(CHURN, "challenger")
    # Its run says it ranked churners no better than chance on its holdout.
    client.log_metric(str(challenger.run_id), "omni/auc", 0.5)
    refused = runner.invoke(app, ["promote", "churn"])
    assert refused.exit_code == 1 and "worse than the current version" in refused.output
    assert "AUC 0.5000 against" in refused.output


@pytest.mark.slow
def test_a_retrain_is_judged_against_the_current_configuration_not_its_hindsight(
    workspace: Path,
) -> None:
    """The current version was fitted on events up to the store's last day, so it has seen
    the window a retrain is tested on; folding histories into it would flatter it. The gate
    fits its configuration at the retrain's cutoff instead: the same data, the same model,
    the same figure, and the retrain goes through."""
    generated_store(workspace, 400, seed=3)
    for _ in range(2):
        trained = runner.invoke(app, ["train", "recommender", "--test-days", "28"])
        assert trained.exit_code == 0, trained.output
        promoted = runner.invoke(app, ["promote", "recommender"])
        assert promoted.exit_code == 0, promoted.output
    assert "version 1 saw the test window" in promoted.output
    figures = [line for line in promoted.output.splitlines() if "NDCG@10" in line]
    ours, theirs = figures[0].split("NDCG@10 ")[1].split(" against ")
    assert float(ours) == pytest.approx(float(theirs.split()[0]), abs=1e-4)
