"""Preferences in the 360 view: what a person favours, from their state, in words."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import ADMIN_KEY, ServedStore

ADMIN = {"X-API-Key": ADMIN_KEY}


def test_preferences_follow_what_they_do(own_client: TestClient, served_store: ServedStore) -> None:
    catalogue = own_client.app.state.shelf.items()  # type: ignore[attr-defined]
    by_category: dict[str, list[str]] = {}
    for item in sorted(catalogue.values(), key=lambda i: i.item_id):
        by_category.setdefault(item.category, []).append(item.item_id)
    loved, other = sorted(by_category, key=lambda k: -len(by_category[k]))[:2]
    day = served_store.clock.date()

    def sent(n: int, kind: str, item: str, channel: str, **more: object) -> dict[str, object]:
        return {"event_id": f"pref-{n}", "customer_id": "PREFS", "type": kind,
                "item_id": item, "channel": channel, "ts": f"{day}T0{n % 10}:00:00Z",
                **more}  # fmt: skip

    events = [sent(i, "purchase", by_category[loved][i], "store", store_id="S002", price=5.0)
              for i in range(3)]  # fmt: skip
    events += [sent(3, "purchase", by_category[other][0], "web", price=5.0),
               sent(4, "view", by_category[loved][3], "app")]  # fmt: skip
    assert own_client.post("/v1/events", json={"events": events}, headers=ADMIN).status_code == 200
    prefs = own_client.get("/v1/customers/PREFS/profile", headers=ADMIN).json()["preferences"]
    assert prefs["categories"][0]["name"] == loved and prefs["categories"][0]["share"] > 0.7
    assert [(s["name"], s["share"]) for s in prefs["channels"]] == [("store", 0.5), ("web", 0.5)]
    assert prefs["stores"] == [{"name": "S002", "share": 1.0}]
    words = prefs["in_words"]
    assert words[0].startswith(f"mostly {loved} (")
    assert "buys in store 50% of the time" in words and "usual store Omni Leeds" in words
    nobody = own_client.get("/v1/customers/C0000005/profile", headers=ADMIN).json()["preferences"]
    assert nobody["in_words"]  # a customer with a history has some
