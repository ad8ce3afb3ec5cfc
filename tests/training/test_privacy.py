"""Privacy rights as a data-protection officer exercises them: access, erasure reaching
the registry and every batch command, no real id in any MLflow artifact, retention."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from typer.testing import CliRunner

from service.app import create_app
from service.registry import RECOMMENDER, connect, load_recommender, version_of
from tests.conftest import (
    ADMIN_KEY,
    READ_KEY,
    ServedStore,
    copy_of,
    fit_recommender,
    publish_recommender,
)
from training.cli import app
from training.scrub import REASON_TAG, SCRUBBED_FROM_TAG

ADMIN = {"X-API-Key": ADMIN_KEY}
runner = CliRunner()


@pytest.fixture(scope="module")
def private(served_store: ServedStore, tmp_path_factory: pytest.TempPathFactory) -> ServedStore:
    """A copy of the served store with a registry of its own (scrubbing deletes versions)."""
    root = tmp_path_factory.mktemp("private")
    store = copy_of(served_store, root, clock=served_store.clock)
    settings = store.settings.model_copy(
        update={
            "mlflow_tracking_uri": f"sqlite:///{root / 'mlruns' / 'mlflow.db'}",
            "mlflow_artifact_root": root / "mlruns" / "artifacts",
        }
    )
    version = publish_recommender(settings, fit_recommender(settings))
    return ServedStore(settings, store.data, version, store.churn_version, store.clock)


@pytest.fixture
def env(private: ServedStore, monkeypatch: pytest.MonkeyPatch) -> ServedStore:
    """The CLI pointed at the private store and registry."""
    s = private.settings
    monkeypatch.setenv("OMNI_DATABASE_URL", s.database_url)
    monkeypatch.setenv("OMNI_MLFLOW_TRACKING_URI", s.mlflow_tracking_uri)
    monkeypatch.setenv("OMNI_MLFLOW_ARTIFACT_ROOT", str(s.mlflow_artifact_root))
    monkeypatch.setenv("OMNI_CLOCK", private.clock.isoformat())
    return private


@pytest.fixture
def client(private: ServedStore) -> Iterator[TestClient]:
    with TestClient(create_app(private.settings)) as test_client:
        yield test_client


def batch_recommend(customers: list[str], tmp_path: Path) -> pd.DataFrame:
    ids = tmp_path / "ids.csv"
    pd.DataFrame({"customer_id": customers}).to_csv(ids, index=False)
    out = tmp_path / "recs.csv"
    done = runner.invoke(app, ["recommend", "--customers", str(ids), "--output", str(out)])
    assert done.exit_code == 0, done.output
    return pd.read_csv(out, dtype=str)


def text_artifacts(root: Path) -> dict[Path, str]:
    """Every artifact file MLflow keeps that is text (the model state is compressed npz)."""
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and path.suffix not in (".npz", ".png", ".pkl"):
            try:
                found[path] = path.read_text()
            except UnicodeDecodeError:
                continue
    return found


def test_access_then_erasure_reaches_the_registry_and_every_command(
    env: ServedStore, client: TestClient, tmp_path: Path
) -> None:
    cid = "C0000050"
    document = client.get(f"/v1/customers/{cid}/export", headers=ADMIN)
    assert document.status_code == 200
    held = document.json()
    assert held["person"]["customer_ids"] == [cid] and len(held["events"]) > 0
    assert {e["customer_id"] for e in held["events"] if e["customer_id"]} == {cid}
    assert held["customer_records"][0]["consent_email"] in (True, False)
    assert held["derived_state"]["interests"] and held["identities"]
    assert (
        client.get(f"/v1/customers/{cid}/export", headers={"X-API-Key": READ_KEY}).status_code
        == 403
    )
    cli_copy = tmp_path / "access.json"
    assert runner.invoke(app, ["privacy", "export", cid, "--output", str(cli_copy)]).exit_code == 0
    assert len(pd.read_json(io.StringIO(cli_copy.read_text()), typ="series")["events"]) == len(
        held["events"]
    )

    stranger = batch_recommend(["NEVER-SEEN"], tmp_path)["item_id"].tolist()
    assert batch_recommend([cid], tmp_path)["item_id"].tolist() != stranger
    assert client.delete(f"/v1/customers/{cid}", headers=ADMIN).status_code == 200
    # At once, before any scrub: every path treats them as a stranger.
    assert batch_recommend([cid], tmp_path)["item_id"].tolist() == stranger
    assert client.get(f"/v1/customers/{cid}/export", headers=ADMIN).status_code == 404
    recs = client.get(f"/v1/customers/{cid}/recommendations", headers=ADMIN).json()
    assert recs["cold_start"] is True

    settings = env.settings
    registry: MlflowClient = connect(settings)
    old = version_of(registry, RECOMMENDER, "champion")
    scrubbed = runner.invoke(app, ["privacy", "scrub"])
    assert scrubbed.exit_code == 0, scrubbed.output
    assert f"version {old} ->" in scrubbed.output and "1 erased people removed" in scrubbed.output
    new = version_of(registry, RECOMMENDER, "champion")
    assert new != old
    versions = {str(v.version) for v in registry.search_model_versions(f"name='{RECOMMENDER}'")}
    assert old not in versions  # the version that held them is gone ...
    tags = registry.get_model_version(RECOMMENDER, new).tags
    assert tags[SCRUBBED_FROM_TAG] == old and "erasure" in tags[REASON_TAG]
    for version in versions:  # ... and no version left holds them
        model, _ = load_recommender(registry, "", version)
        assert cid not in model.users_ and len(model.users_) > 100
    again = runner.invoke(app, ["privacy", "scrub"])
    assert "no registered version holds an erased person" in again.output
    # The service moves to the scrubbed version; the answer is the same stranger's.
    assert client.post("/v1/admin/reload", headers=ADMIN).status_code == 200
    assert client.get("/ready").json()["models"][RECOMMENDER] == new
    after = client.get(f"/v1/customers/{cid}/recommendations", headers=ADMIN).json()
    assert after["cold_start"] is True and after["model_version"] == new
    # No real customer id in any text MLflow keeps (input examples, comparisons, metadata).
    texts = text_artifacts(settings.mlflow_artifact_root)
    assert any(path.name == "input_example.json" for path in texts)
    assert {path.name for path, text in texts.items() if "C00" in text} == set()


def test_retention_command(env: ServedStore, client: TestClient) -> None:
    before = client.get("/v1/customers/C0000060/export", headers=ADMIN).json()["events"]
    cutoff = (pd.Timestamp(env.clock) - pd.Timedelta(days=120)).isoformat()
    assert min(e["ts"] for e in before) < cutoff
    refused = runner.invoke(app, ["privacy", "retention"])
    assert refused.exit_code == 2 and "OMNI_RETENTION_DAYS" in refused.output
    done = runner.invoke(app, ["privacy", "retention", "--days", "120"])
    assert done.exit_code == 0, done.output
    after = client.get("/v1/customers/C0000060/export", headers=ADMIN).json()["events"]
    assert 0 < len(after) < len(before) and min(e["ts"] for e in after) >= cutoff
