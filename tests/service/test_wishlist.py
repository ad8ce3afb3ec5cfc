"""The wish-list in the 360 view: wished in any channel, gone when removed or bought
anywhere, with this store's shelf quantity."""

from __future__ import annotations

import pandas as pd
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_KEY, TABLET_KEY, ServedStore

ADMIN = {"X-API-Key": ADMIN_KEY}


def event(n: int, day: str, kind: str, item: str | None, **more: object) -> dict[str, object]:
    sent = {"event_id": f"wish-{n}", "ts": f"2026-09-{day}T10:00:00Z", "type": kind,
            "item_id": item, "channel": "app", **more}  # fmt: skip
    return {k: v for k, v in sent.items() if v is not None}


def test_the_wishlist_follows_every_channel(
    own_client: TestClient, served_store: ServedStore
) -> None:
    stock = pd.read_parquet(served_store.data / "inventory.parquet")
    here = stock[(stock["store_id"] == "S001") & (stock["quantity"] > 0)]
    on_shelf, qty = str(here["item_id"].iloc[0]), int(here["quantity"].iloc[0])
    items = sorted(set(stock["item_id"]) - {on_shelf})
    other, removed, bought = items[:3]
    sent = [
        event(1, "01", "wishlist", on_shelf, anonymous_id="dev-w1"),  # before they signed in
        event(2, "02", "identify", None, anonymous_id="dev-w1", customer_id="WISHER"),
        event(3, "03", "wishlist", other, customer_id="WISHER", channel="web"),
        event(4, "04", "wishlist", removed, customer_id="WISHER"),
        event(5, "05", "wishlist_remove", removed, customer_id="WISHER", channel="web"),
        event(6, "06", "wishlist", bought, customer_id="WISHER"),
        event(
            7,
            "07",
            "purchase",
            bought,
            customer_id="WISHER",
            channel="store",
            store_id="S002",
            price=9.5,
        ),
    ]
    answer = own_client.post("/v1/events", json={"events": sent}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    profile = own_client.get("/v1/customers/WISHER/profile", params={"store_id": "S001"},
                         headers=ADMIN).json()  # fmt: skip
    wished = [(w["item_id"], w["channel"], w["in_stock"]) for w in profile["wishlist"]]
    others = int(
        stock[(stock["store_id"] == "S001") & (stock["item_id"] == other)]["quantity"].sum()
    )
    assert wished == [(other, "web", others), (on_shelf, "app", qty)]  # latest first
    # Asked without a store, no shelf quantity; a store key's own store by default.
    plain = own_client.get("/v1/customers/WISHER/profile", headers=ADMIN).json()
    assert [w["in_stock"] for w in plain["wishlist"]] == [None, None]
    tablet = own_client.get("/v1/customers/WISHER/profile", headers={"X-API-Key": TABLET_KEY})
    assert [w["in_stock"] for w in tablet.json()["wishlist"]] == [others, qty]
    # Wished again after the removal: back on the list; a late purchase takes it off.
    again = [event(8, "08", "wishlist", removed, customer_id="WISHER"),
             event(9, "02", "purchase", other, customer_id="WISHER", channel="store",
                   store_id="S001", price=3.0)]  # fmt: skip
    assert own_client.post("/v1/events", json={"events": again}, headers=ADMIN).status_code == 200
    later = own_client.get("/v1/customers/WISHER/profile", headers=ADMIN).json()
    # The purchase on the 2nd is before the wish on the 3rd: the wish stands.
    assert [w["item_id"] for w in later["wishlist"]] == [removed, other, on_shelf]
    # Wished under the device id before signing in, bought under the customer id: gone.
    paid = event(10, "10", "purchase", on_shelf, customer_id="WISHER", channel="store",
                 store_id="S001", price=4.0)  # fmt: skip
    assert own_client.post("/v1/events", json={"events": [paid]}, headers=ADMIN).status_code == 200
    final = own_client.get("/v1/customers/WISHER/profile", headers=ADMIN).json()
    assert [w["item_id"] for w in final["wishlist"]] == [removed, other]
    unknown = own_client.get("/v1/customers/WISHER/profile", params={"store_id": "S999"},
                         headers=ADMIN)  # fmt: skip
    assert unknown.status_code == 404 and "S999" in unknown.text
