"""`omni export offers|triggers`: the marketing batches honour the API's ledgers and caps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete
from typer.testing import CliRunner

from service.app import create_app
from service.settings import get_settings
from service.storage.engine import open_engine
from service.storage.tables import answer_sets
from tests.conftest import ADMIN_KEY, ServedStore, add_customer, copy_of
from training.cli import app

ADMIN = {"X-API-Key": ADMIN_KEY}
runner = CliRunner()


@pytest.fixture
def store(
    served_store: ServedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServedStore]:
    noon = served_store.clock + timedelta(hours=12)
    copy = copy_of(served_store, tmp_path, clock=noon)
    s = copy.settings
    monkeypatch.setenv("OMNI_DATABASE_URL", s.database_url)
    monkeypatch.setenv("OMNI_MLFLOW_TRACKING_URI", s.mlflow_tracking_uri)
    monkeypatch.setenv("OMNI_MLFLOW_ARTIFACT_ROOT", str(s.mlflow_artifact_root))
    monkeypatch.setenv("OMNI_CLOCK", noon.isoformat())
    get_settings.cache_clear()
    yield copy
    get_settings.cache_clear()


def export(what: str, channel: str, output: Path) -> pd.DataFrame:
    result = runner.invoke(app, ["export", what, "--channel", channel, "--output", str(output)])
    assert result.exit_code == 0, result.output
    return pd.read_csv(output, dtype=str)


def test_email_offers_are_the_api_decisions_and_count_against_the_caps(
    store: ServedStore, tmp_path: Path
) -> None:
    customers = pd.read_parquet(store.data / "customers.parquet")
    consenting = set(customers.loc[customers["consent_email"], "customer_id"])
    with TestClient(create_app(store.settings)) as client:
        asked = "C0000007" if "C0000007" in consenting else sorted(consenting)[0]
        api = client.get(f"/v1/customers/{asked}/next-best-offer", params={"channel": "web"},
                         headers=ADMIN).json()  # fmt: skip
        first = export("offers", "email", tmp_path / "offers.csv")
        assert len(first) > 0.5 * len(consenting)
        assert set(first["customer_id"]) <= consenting  # never without e-mail consent
        mine = first[first["customer_id"] == asked].iloc[0]
        assert mine["decision_id"] == api["decision_id"]  # the same decision everywhere
        # Everyone exported was messaged today: a second batch is empty, and so is a pull.
        assert export("offers", "email", tmp_path / "again.csv").empty
        at = (store.clock - timedelta(hours=30)).isoformat()
        cart = {"event_id": "exp-cart", "ts": at, "customer_id": asked, "channel": "web",
                "type": "add_to_cart", "item_id": "I000005"}  # fmt: skip
        assert client.post("/v1/events", json={"events": [cart]}, headers=ADMIN).status_code == 200
        pulled = client.get("/v1/triggers/abandoned-carts", params={"channel": "email"},
                            headers=ADMIN).json()  # fmt: skip
        assert asked not in {t["customer_id"] for t in pulled["triggers"]}


def test_trigger_export_hands_each_cart_out_once(store: ServedStore, tmp_path: Path) -> None:
    cid = add_customer(store.settings, "EXP-TRIGGER")
    at = (store.clock - timedelta(hours=30)).isoformat()
    with TestClient(create_app(store.settings)) as client:
        cart = {"event_id": "exp-t", "ts": at, "customer_id": cid, "channel": "app",
                "type": "add_to_cart", "item_id": "I000006", "quantity": 2}  # fmt: skip
        assert client.post("/v1/events", json={"events": [cart]}, headers=ADMIN).status_code == 200
    first = export("triggers", "email", tmp_path / "triggers.csv")
    row = first[first["customer_id"] == cid].iloc[0]
    assert row["item_ids"] == "I000006" and row["items"].endswith("x2")
    assert cid not in set(export("triggers", "email", tmp_path / "again.csv")["customer_id"])


def test_bad_channel_is_named(store: ServedStore, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "offers", "--channel", "fax", "--output",
                                 str(tmp_path / "x.csv")])  # fmt: skip
    assert result.exit_code == 1 and "fax" in result.output
    assert not (tmp_path / "x.csv").exists()


def test_an_open_complaint_holds_back_sales_offers_in_the_batch(
    store: ServedStore, tmp_path: Path
) -> None:
    customers = pd.read_parquet(store.data / "customers.parquet")
    consenting = sorted(customers.loc[customers["consent_email"], "customer_id"])[:40]
    complaints = [{"event_id": f"batch-complaint-{cid}", "customer_id": cid,
                   "channel": "email", "type": "complaint", "reason": "late delivery",
                   "status": "open", "ts": (store.clock - timedelta(days=2)).isoformat()}
                  for cid in consenting]  # fmt: skip
    with TestClient(create_app(store.settings)) as client:
        sent = client.post("/v1/events", json={"events": complaints}, headers=ADMIN)
        assert sent.status_code == 200, sent.text
    offers = export("offers", "email", tmp_path / "offers.csv")
    theirs = offers[offers["customer_id"].isin(consenting)]
    others = offers[~offers["customer_id"].isin(consenting)]
    assert set(theirs["kind"]) <= {"retention"}  # at most a retention offer
    assert len(others) > 100 and set(others["kind"]) - {"retention"}


@pytest.mark.spark
def test_offers_ranked_on_spark_are_the_embedded_engines(
    store: ServedStore, spark: object, tmp_path: Path
) -> None:
    """`omni export offers --engine spark` (candidates ranked on the executors, missing
    churn answers scored on Spark) hands out the offers the embedded engine does."""
    (tmp_path / "twin").mkdir()
    twin = copy_of(store, tmp_path / "twin", clock=store.clock)
    for copy in (store, twin):  # both score their churn answers first, each on its engine
        engine = open_engine(copy.settings.database_url)
        with engine.begin() as conn:
            conn.execute(delete(answer_sets))
        engine.dispose()
    here = export("offers", "email", tmp_path / "embedded.csv")
    args = ["export", "offers", "--channel", "email", "--output", str(tmp_path / "spark.csv"),
            "--engine", "spark", "--database-url", twin.settings.database_url]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    there = pd.read_csv(tmp_path / "spark.csv", dtype=str)
    same = ["customer_id", "offer_id", "item_id", "probability", "expected_value", "reason"]
    assert len(here) > 100
    pd.testing.assert_frame_equal(here[same], there[same])
    # Each store's ledger made its own new decisions; any standing before the copy stand.
    made_here, made_there = (
        set(f.loc[f["reused"] == "False", "decision_id"]) for f in (here, there)
    )
    assert made_here and not made_here & made_there
    assert set(here.loc[here["reused"] == "True", "decision_id"]) == set(
        there.loc[there["reused"] == "True", "decision_id"]
    )
