"""Models by reference: served from the registry, refused when bad, 503 when absent."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from models.base import Recommender
from service import serving
from service.app import create_app
from service.registry import CHURN, connect
from service.serving import ModelHolder
from service.settings import Settings
from tests.conftest import ADMIN_KEY, ServedStore, fit_recommender, publish_recommender

ADMIN = {"X-API-Key": ADMIN_KEY}


def test_without_models_the_service_answers_503_and_stays_alive(
    served_store: ServedStore, tmp_path: Path
) -> None:
    empty = served_store.settings.model_copy(
        update={"mlflow_tracking_uri": f"sqlite:///{tmp_path / 'empty.db'}"}
    )
    with TestClient(create_app(empty)) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["models"]["omni-recommender"] is None
        recs = client.get("/v1/customers/C0000001/recommendations", headers=ADMIN)
        assert recs.status_code == 503 and "omni-recommender" in recs.json()["detail"]
        assert recs.headers["Retry-After"]
        churn = client.get("/v1/customers/C0000001/churn", headers=ADMIN)
        assert churn.status_code == 503
        # Events are still taken: ingest never waits for a model.
        view = {
            "event_id": "no-model-1",
            "ts": "2026-09-30T10:00:00Z",
            "customer_id": "C0000001",
            "channel": "web",
            "type": "view",
            "item_id": "I000001",
        }
        posted = client.post("/v1/events", json={"events": [view]}, headers=ADMIN)
        assert posted.status_code == 200


def test_a_version_that_fails_to_load_is_refused_and_the_old_keeps_serving(
    served_store: ServedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings: Settings = served_store.settings.model_copy(update={"model_alias": "refusal"})
    publish_recommender(settings, fit_recommender(settings), alias="refusal")
    connect(settings).set_registered_model_alias(CHURN, "refusal", served_store.churn_version)
    holder = ModelHolder(settings)
    assert {o.status for o in holder.reload()} == {"loaded"}
    serving_version = holder.current.recommender_version
    # A new version whose files cannot be read: refused, the old one keeps serving.
    publish_recommender(settings, fit_recommender(settings, neighbours=5), alias="refusal")

    def broken(*args: object, **kwargs: object) -> tuple[Recommender, str]:
        raise OSError("state.npz is truncated")

    monkeypatch.setattr(serving, "load_recommender", broken)
    outcome = {o.model: o for o in holder.reload()}
    assert outcome["omni-recommender"].status == "refused"
    assert "truncated" in outcome["omni-recommender"].detail
    assert holder.current.recommender_version == serving_version
    assert holder.current.recommender is not None


def test_a_model_that_fails_its_smoke_check_is_refused(served_store: ServedStore) -> None:
    model = fit_recommender(served_store.settings)
    model.item_popularity_ = model.item_popularity_ * float("nan")
    with pytest.raises(ValueError, match=r"finite|cold"):
        serving.smoke_recommender(model)


def test_polling_picks_up_a_newly_promoted_version(served_store: ServedStore) -> None:
    settings = served_store.settings.model_copy(
        update={"model_alias": "polled", "reload_poll_seconds": 0.2}
    )
    first = publish_recommender(settings, fit_recommender(settings), alias="polled")
    connect(settings).set_registered_model_alias(CHURN, "polled", served_store.churn_version)
    holder = ModelHolder(settings)
    holder.reload()
    assert holder.current.recommender_version == first
    holder.start_polling()
    try:
        second = publish_recommender(settings, fit_recommender(settings, neighbours=7), "polled")
        deadline = time.monotonic() + 60
        while holder.current.recommender_version != second and time.monotonic() < deadline:
            time.sleep(0.2)
        assert holder.current.recommender_version == second
    finally:
        holder.stop()


def test_a_refused_champion_at_start_serves_the_last_good_version(
    served_store: ServedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings: Settings = served_store.settings.model_copy(update={"model_alias": "fallen"})
    good = publish_recommender(settings, fit_recommender(settings), alias="fallen")
    connect(settings).set_registered_model_alias(CHURN, "fallen", served_store.churn_version)
    bad = publish_recommender(settings, fit_recommender(settings, neighbours=6), alias="fallen")
    real = serving.load_recommender

    def refusing(client: object, alias: str, version: str | None = None) -> object:
        if version == bad:
            raise OSError("state.npz is truncated")
        return real(client, alias, version)  # type: ignore[arg-type]

    monkeypatch.setattr(serving, "load_recommender", refusing)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200
        body = ready.json()
        assert body["models"]["omni-recommender"] == good
        assert bad in body["fallbacks"]["omni-recommender"]
        assert "truncated" in body["fallbacks"]["omni-recommender"]
        recs = client.get("/v1/customers/C0000001/recommendations", headers=ADMIN)
        assert recs.status_code == 200 and recs.json()["model_version"] == good
