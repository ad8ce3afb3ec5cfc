"""Service history through the API: a complaint is shown open first and holds back sales
offers until a later event of its case resolves it."""

from __future__ import annotations

import pandas as pd
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_KEY, ServedStore

ADMIN = {"X-API-Key": ADMIN_KEY}


def test_a_complaint_is_open_until_its_case_is_resolved(
    own_client: TestClient, own_store: ServedStore
) -> None:
    at = pd.Timestamp(own_store.clock)
    opened = {"event_id": "case-1", "customer_id": "C0000011", "channel": "social",
              "type": "complaint", "reason": "damaged item", "status": "open",
              "case_id": "K-11", "ts": (at - pd.Timedelta(days=3)).isoformat()}  # fmt: skip
    asked = {"event_id": "case-2", "customer_id": "C0000011", "channel": "call_center",
             "type": "service_contact", "reason": "where is my order", "status": "resolved",
             "ts": (at - pd.Timedelta(days=10)).isoformat()}  # fmt: skip
    sent = own_client.post("/v1/events", json={"events": [opened, asked]}, headers=ADMIN)
    assert sent.status_code == 200, sent.text
    service = own_client.get("/v1/customers/C0000011/profile", headers=ADMIN).json()["service"]
    cases = [(s["case_id"], s["status"]) for s in service]
    assert cases[0] == ("K-11", "open") and ("case-2", "resolved") in cases  # open first
    assert service[0]["in_words"] == "complaint: damaged item, open for 3 days, on social media"
    offer = own_client.get("/v1/customers/C0000011/next-best-offer", params={"channel": "web"},
                           headers=ADMIN).json()  # fmt: skip
    assert offer["offer"] is None and "complaint" in offer["reason"]
    closed = {**opened, "event_id": "case-3", "status": "resolved", "channel": "email",
              "ts": (at - pd.Timedelta(days=1)).isoformat()}  # fmt: skip
    assert (
        own_client.post("/v1/events", json={"events": [closed]}, headers=ADMIN).status_code == 200
    )
    service = own_client.get("/v1/customers/C0000011/profile", headers=ADMIN).json()["service"]
    # Opened on social media, resolved a day ago: still about the damaged item.
    assert service[0]["in_words"] == "complaint: damaged item, resolved 1 day ago, on social media"
    again = own_client.get("/v1/customers/C0000011/next-best-offer", params={"channel": "web"},
                           headers=ADMIN).json()  # fmt: skip
    assert "complaint" not in again["reason"]
