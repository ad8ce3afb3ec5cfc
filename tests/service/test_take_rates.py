"""Learned take rates: the assumed chances give way to what customers really did, once
enough of them did something, and every answer says which it used."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from features import columns as c
from service.app import create_app
from service.experiments.take_rates import learn
from service.settings import Settings
from service.storage.codec import micros
from service.storage.engine import open_engine
from service.storage.tables import decisions
from tests.conftest import ADMIN_KEY, ServedStore, add_customer, copy_of

ADMIN = {"X-API-Key": ADMIN_KEY}
RULE = Settings(take_rate_min_outcomes=30, take_rate_prior_weight=20)


def counts(**by_offer: tuple[int, int, float]) -> pd.DataFrame:
    """offer -> (accepted, declined or expired, prior chance of each)."""
    rows = []
    for offer, (took, not_took, prior) in by_offer.items():
        rows.append({c.OFFER_ID: offer, "status": "accepted", "n": took, "prior_sum": took * prior})
        rows.append({c.OFFER_ID: offer, "status": "expired", "n": not_took,
                     "prior_sum": not_took * prior})  # fmt: skip
    return pd.DataFrame(rows)


def test_too_few_outcomes_keep_the_prior() -> None:
    rates = learn(counts(S1=(5, 20, 0.05)), {"S1": "service"}, RULE)
    assert not rates.by_kind and not rates.by_offer
    p, source = rates.correct(pd.Series(["S1"]), pd.Series(["service"]), np.array([0.05]))
    assert p.tolist() == [0.05] and source.tolist() == ["prior"]


def test_the_rate_is_shrunk_toward_the_prior_and_corrects_its_level() -> None:
    # 30 of 60 took a service offer assumed at 5%: (30 + 20 x 0.05) / (60 + 20) = 38.75%.
    rates = learn(counts(S1=(30, 30, 0.05), S2=(1, 9, 0.05)), {"S1": "service", "S2": "service"},
                  RULE)  # fmt: skip
    kind = rates.by_kind["service"]
    assert kind.outcomes == 70 and kind.accepted == 31
    assert kind.learned == pytest.approx((31 + 20 * 0.05) / (70 + 20))
    offer = rates.by_offer["S1"]
    assert offer.learned == pytest.approx((30 + 20 * 0.05) / (60 + 20))
    assert "S2" not in rates.by_offer  # 10 outcomes: its kind's rate stands for it
    p, source = rates.correct(pd.Series(["S1", "S2", "P9"]),
                              pd.Series(["service", "service", "product"]),
                              np.array([0.05, 0.05, 0.2]))  # fmt: skip
    assert p[0] == pytest.approx(offer.learned) and source[0].startswith("learned from offer S1")
    assert p[1] == pytest.approx(kind.learned) and source[1].startswith("learned from kind")
    assert p[2] == 0.2 and source[2] == "prior"  # a kind nobody answered yet
    # A personal prior keeps its order between customers: the level moves, not the ranking.
    p2, _ = rates.correct(pd.Series(["S2", "S2"]), pd.Series(["service"] * 2),
                          np.array([0.02, 0.08]))  # fmt: skip
    assert p2[1] / p2[0] == pytest.approx(4.0)


def outcomes(settings: Settings, offer_id: str, took: int, did_not: int) -> None:
    """Closed decisions of `offer_id` made at the 5% prior: `took` accepted, the rest declined."""
    engine = open_engine(settings.database_url)
    at = micros(settings.now() - timedelta(days=3))
    rows: list[dict[str, Any]] = [
        {"decision_id": uuid.uuid4().hex, c.PERSON_ID: f"P{i}", c.CUSTOMER_ID: f"P{i}",
         c.OFFER_ID: offer_id, c.CHANNEL: "web", c.STORE_ID: None, "decided_at": at,
         c.VALID_UNTIL: at, "probability": 0.05, "expected_value": 0.1, "reason": "test",
         "prior": 0.05, "source": "prior", "status": "accepted" if i < took else "declined",
         "closed_at": at, "closed_by": "test"}
        for i in range(took + did_not)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(decisions), rows)
    engine.dispose()


def ask(served_store: ServedStore, folder: Any, took: int, did_not: int) -> dict[str, Any]:
    """A new customer's first offer on the web, in a copy of the store where the offer
    they get (a 2-for-1 promotion) was answered `took` times yes and `did_not` times no."""
    folder.mkdir()
    store = copy_of(served_store, folder, clock=served_store.clock + timedelta(hours=12))
    settings = store.settings.model_copy(update={"take_rate_ttl_seconds": 0})
    outcomes(settings, "O-CAT-1", took, did_not)
    cid = add_customer(settings, "TAKE-RATE-1")
    seen = {"event_id": "take-rate-view", "ts": (settings.now() - timedelta(hours=1)).isoformat(),
            "customer_id": cid, "channel": "web", "type": "view", "item_id": "I000001"}  # fmt: skip
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/events", json={"events": [seen]}, headers=ADMIN).status_code == 200
        url = f"/v1/customers/{cid}/next-best-offer"
        body: dict[str, Any] = client.get(url, params={"channel": "web"}, headers=ADMIN).json()
    assert body.get("offer") is not None, body
    return body


def test_the_answer_says_whether_it_learned(served_store: ServedStore, tmp_path: Any) -> None:
    few = ask(served_store, tmp_path / "few", 3, 7)  # 10 outcomes: not enough
    assert few["offer"]["offer_id"] == "O-CAT-1" and few["probability_source"] == "prior"
    many = ask(served_store, tmp_path / "many", 36, 4)  # 90% of 40 took it
    assert many["offer"]["offer_id"] == "O-CAT-1"
    assert many["probability_source"].startswith("learned from offer O-CAT-1: 36 of 40")
    # The prior's level corrected: x (36 + 20 x 5%) / 60 / 5%.
    factor = (36 + 20 * 0.05) / 60 / 0.05
    assert many["probability"] == pytest.approx(min(few["probability"] * factor, 1.0), rel=1e-3)
