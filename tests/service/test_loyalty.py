"""Loyalty: points from purchases in every channel by the settings' rule, plus the points
the customer record carries; the tier they reach; offers kept for some tiers."""

from __future__ import annotations

import pandas as pd
from fastapi.testclient import TestClient

from features.schema import TABLES
from features.validation import validate
from service.decisioning.offers import Where, eligible
from service.loyalty import tier_of
from service.settings import Settings
from service.storage.engine import open_engine
from service.storage.writer import write_batch
from tests.conftest import ADMIN_KEY, ServedStore

ADMIN = {"X-API-Key": ADMIN_KEY}


def test_the_tier_is_the_highest_threshold_reached() -> None:
    rule = Settings(loyalty_tiers={"bronze": 0, "silver": 1000, "gold": 3000})
    assert tier_of(0, rule) == ("bronze", "silver", 1000)
    assert tier_of(999, rule) == ("bronze", "silver", 1)
    assert tier_of(1000, rule) == ("silver", "gold", 2000)
    assert tier_of(12_000, rule) == ("gold", None, None)


def test_offers_for_a_tier_go_to_that_tier_only() -> None:
    book = pd.DataFrame({"offer_id": ["O-ALL", "O-GOLD", "O-TWO"], "kind": "service",
                         "item_id": None, "category": None,
                         "tiers": [None, "gold", "silver, gold"]})  # fmt: skip
    persons = pd.DataFrame({"person_id": ["P1", "P2", "P3"], "band": "low"})
    none = pd.DataFrame({"person_id": [], "item_id": [], "offer_id": []})
    pairs = eligible(book, persons, Where("web"), bought=none, answered=none,
                     retention_bands=None, tier_of={"P1": "bronze", "P2": "silver",
                                                    "P3": "gold"})  # fmt: skip
    got = set(zip(pairs["person_id"], pairs["offer_id"], strict=True))
    assert got == {("P1", "O-ALL"), ("P2", "O-ALL"), ("P2", "O-TWO"), ("P3", "O-ALL"),
                   ("P3", "O-GOLD"), ("P3", "O-TWO")}  # fmt: skip


def test_points_count_purchases_in_every_channel(
    own_client: TestClient, own_store: ServedStore
) -> None:
    record = {"customer_id": "LOYAL", "name": "Lou", "consent_email": True,
              "consent_sms": False, "consent_push": False, "loyalty_points": 250}  # fmt: skip
    engine = open_engine(own_store.settings.database_url)
    with engine.begin() as conn:
        write_batch(conn, TABLES["customers"], validate(pd.DataFrame([record]),
                                                        TABLES["customers"]))  # fmt: skip
    engine.dispose()
    day = own_store.clock - pd.Timedelta(days=3)
    old = own_store.clock - pd.Timedelta(days=400)  # outside the year: no points

    def buy(n: int, at: pd.Timestamp, channel: str, price: float, qty: int) -> dict[str, object]:
        where = {"store_id": "S001"} if channel == "store" else {}
        return {"event_id": f"loyal-{n}", "customer_id": "LOYAL", "type": "purchase",
                "item_id": "I000001", "channel": channel, "ts": at.isoformat(), "price": price,
                "quantity": qty, **where}  # fmt: skip

    events = [buy(1, day, "store", 400.0, 2), buy(2, day, "web", 150.5, 1),
              buy(3, old, "app", 999.0, 1)]  # fmt: skip
    assert own_client.post("/v1/events", json={"events": events}, headers=ADMIN).status_code == 200
    loyalty = own_client.get("/v1/customers/LOYAL/profile", headers=ADMIN).json()["loyalty"]
    # 800 + 150.5 spent this year -> 950 points, and 250 carried: 1,200.
    assert loyalty == {"points": 1200, "tier": "silver", "next_tier": "gold", "to_next": 1800,
                       "in_words": "Silver, 1,200 points (1,800 to Gold)"}  # fmt: skip
