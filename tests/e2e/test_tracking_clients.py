"""The official Segment and RudderStack Python SDKs, pointed at a real `omni serve`: what
they send is stored as Omni events, stitches the person, opens the cart, updates the
customer record, and a re-sent batch adds nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient
from sqlalchemy import func, select

from features import columns as c
from service.people import find_person
from service.storage.engine import open_engine
from service.storage.reader import load_table
from service.storage.tables import customers, events
from tests.conftest import ADMIN_KEY, ServedStore, copy_of
from tests.e2e.conftest import server_env, serving

CLIENTS: dict[str, Callable[[str], Any]] = {
    "segment": lambda base: SegmentClient(ADMIN_KEY, host=base, sync_mode=True, max_retries=0),
    "rudderstack": lambda base: RudderClient(ADMIN_KEY, host=base, sync_mode=True, gzip=True,
                                             max_retries=0),
}  # fmt: skip


def send(client: Any, user: str, anonymous: str, items: list[str]) -> None:
    """An identify, a view, two adds and an order of two products, with fixed message ids."""
    client.identify(
        user, {"email": f"{user.lower()}@example.com", "consent_email": True},
        anonymous_id=anonymous, message_id=f"{user}-identify",
    )  # fmt: skip
    client.track(
        user, "Product Viewed", {"product_id": items[0], "price": 10.0},
        anonymous_id=anonymous, message_id=f"{user}-view",
    )  # fmt: skip
    for n, item in enumerate(items[:3]):
        client.track(
            user, "Product Added", {"product_id": item, "quantity": 1},
            anonymous_id=anonymous, message_id=f"{user}-add-{n}",
        )  # fmt: skip
    order = {"order_id": f"{user}-o1", "revenue": 20.0, "currency": "EUR",
             "products": [{"product_id": items[0], "price": 10.0, "quantity": 1},
                          {"product_id": items[1], "price": 5.0, "quantity": 2}]}  # fmt: skip
    client.track(user, "Order Completed", order, message_id=f"{user}-order")
    client.track(user, "Newsletter Opened", {}, message_id=f"{user}-unmapped")
    client.flush()


@pytest.mark.slow
@pytest.mark.parametrize("sdk", sorted(CLIENTS))
def test_the_official_sdks_send_events_omni_stores_once(
    served_store: ServedStore, tmp_path: Path, sdk: str
) -> None:
    store = copy_of(served_store, tmp_path, clock=served_store.clock)
    env = server_env(store.settings)  # no replay clock: the SDKs stamp events with now
    engine = open_engine(store.settings.database_url)
    items = load_table(engine, "catalogue")[c.ITEM_ID].head(3).astype(str).tolist()
    user, anonymous = f"U-{sdk}", f"anon-{sdk}"
    with serving(env, tmp_path / "server.log") as base:
        client = CLIENTS[sdk](base)
        send(client, user, anonymous, items)
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    events.c[c.TYPE],
                    events.c[c.ITEM_ID],
                    events.c[c.ORDER_ID],
                    events.c[c.EVENT_NAME],
                ).where(events.c[c.CUSTOMER_ID] == user)
            ).all()
            kinds = sorted(r[0] for r in rows)
            assert kinds == sorted(
                ["identify", "view", *["add_to_cart"] * 3, *["purchase"] * 2, "custom"]
            )
            assert {r[1] for r in rows if r[0] == "purchase"} == set(items[:2])
            assert {r[2] for r in rows if r[0] == "purchase"} == {f"{user}-o1"}
            assert [r[3] for r in rows if r[0] == "custom"] == ["Newsletter Opened"]
            person = find_person(conn, anonymous_id=anonymous)
            assert person is not None and person.person_id == user
            record = conn.execute(
                select(customers.c[c.EMAIL], customers.c[c.CONSENT_EMAIL]).where(
                    customers.c[c.CUSTOMER_ID] == user
                )
            ).one()
            assert tuple(record) == (f"{user.lower()}@example.com", True)
            stored = conn.execute(select(func.count()).select_from(events)).scalar()
        profile = httpx2.get(
            f"{base}/v1/customers/{user}/profile", headers={"X-API-Key": ADMIN_KEY}, timeout=30
        )
        assert profile.status_code == 200, profile.text
        assert [line["item_id"] for line in profile.json()["cart"]] == [items[2]]
        # The SDK retries the same messages: nothing more is stored.
        send(CLIENTS[sdk](base), user, anonymous, items)
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(events)).scalar() == stored
        refused = httpx2.post(f"{base}/v1/batch", json={"batch": []}, auth=("not-a-key", ""))
        assert refused.status_code == 401
    engine.dispose()
