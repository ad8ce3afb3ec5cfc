"""The tracking API's mapping and its refusals: one event per product, ids from the
message id, the channel from the context, Segment's limits, and all or nothing."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from features import columns as c
from service.app import create_app
from service.storage.engine import open_engine
from service.storage.tables import events
from service.tracking import MAX_MESSAGE_BYTES, to_omni
from tests.conftest import ADMIN_KEY, TABLET_KEY, ServedStore, copy_of

NOW = datetime(2026, 10, 2, 12, tzinfo=UTC)


def test_an_order_of_two_products_is_two_purchases_with_ids_from_the_message() -> None:
    order = {"type": "track", "event": "Order Completed", "userId": "C1", "messageId": "m1",
             "timestamp": "2026-10-02T10:00:00Z",
             "properties": {"order_id": "o9", "store_id": "S001", "products": [
                 {"product_id": "I1", "price": 3.5, "quantity": 2}, {"sku": "I2"}]}}  # fmt: skip
    mapped = to_omni(order, NOW).events
    assert [e[c.EVENT_ID] for e in mapped] == ["seg:m1:0", "seg:m1:1"]
    assert [e[c.ITEM_ID] for e in mapped] == ["I1", "I2"]
    assert {e[c.TYPE] for e in mapped} == {"purchase"} and mapped[0][c.QUANTITY] == 2
    assert {(e[c.CHANNEL], e[c.STORE_ID], e[c.ORDER_ID]) for e in mapped} == {
        ("store", "S001", "o9")
    }
    viewed = {"type": "track", "event": "Product Viewed", "anonymousId": "a1", "messageId": "m2",
              "context": {"app": {"name": "shop"}}, "properties": {"product_id": "I1"}}  # fmt: skip
    (view,) = to_omni(viewed, NOW).events
    assert (view[c.CHANNEL], view[c.TYPE], view[c.EVENT_ID]) == ("app", "view", "seg:m2")
    cart = to_omni({"type": "track", "event": "Cart Viewed", "userId": "C1"}, NOW)
    assert cart.unmapped == "Cart Viewed"
    assert (cart.events[0][c.TYPE], cart.events[0][c.EVENT_NAME]) == ("custom", "Cart Viewed")
    identify = {"type": "identify", "userId": "C1", "anonymousId": "a1", "messageId": "m3",
                "traits": {"email": "ana@x.eu"}}  # fmt: skip
    who = to_omni(identify, NOW)
    assert who.events[0][c.TYPE] == "identify" and who.traits == {
        c.CUSTOMER_ID: "C1",
        c.EMAIL: "ana@x.eu",
    }


@pytest.fixture
def api(served_store: ServedStore, tmp_path: Path) -> Iterator[TestClient]:
    store = copy_of(served_store, tmp_path, clock=served_store.clock)
    with TestClient(create_app(store.settings)) as client:
        yield client


def stored(client: TestClient) -> int:
    engine = open_engine(client.app.state.settings.database_url)  # type: ignore[attr-defined]
    with engine.connect() as conn:
        count = int(conn.execute(select(func.count()).select_from(events)).scalar_one())
    engine.dispose()
    return count


def message(n: int, **extra: object) -> dict[str, object]:
    return {"type": "track", "event": "Product Viewed", "userId": "C0000001",
            "messageId": f"t{n}", "timestamp": datetime.now(UTC).isoformat(),
            "properties": {"product_id": "I000001"}, **extra}  # fmt: skip


def test_batches_are_all_or_nothing_and_limits_are_segments(api: TestClient) -> None:
    auth = (ADMIN_KEY, "")
    before = stored(api)
    bad = message(2, properties={"product_id": "I000001", "quantity": "lots"})
    refused = api.post("/v1/batch", json={"batch": [message(1), bad]}, auth=auth)
    assert refused.status_code == 400 and "quantity" in refused.json()["message"]
    assert stored(api) == before  # the good message was not stored either
    big = message(3, properties={"product_id": "I000001", "note": "x" * MAX_MESSAGE_BYTES})
    assert api.post("/v1/batch", json={"batch": [big]}, auth=auth).status_code == 400
    nobody = api.post("/v1/track", json={"event": "Product Viewed", "messageId": "t4"}, auth=auth)
    assert nobody.status_code == 400 and "userId or anonymousId" in nobody.json()["message"]
    zipped = gzip.compress(json.dumps({"batch": [message(5)]}).encode())
    sent = api.post("/v1/batch", content=zipped, auth=auth, headers={"Content-Encoding": "gzip"})
    assert sent.status_code == 200 and sent.json()["accepted"] == 1
    again = api.post("/v1/batch", content=zipped, auth=auth, headers={"Content-Encoding": "gzip"})
    assert again.json()["duplicates"] == 1 and stored(api) == before + 1
    tablet = api.post("/v1/batch", json={"batch": [message(6)]}, auth=(TABLET_KEY, ""))
    assert tablet.status_code == 403
    assert api.post("/v1/batch", json={"batch": []}).status_code == 401
