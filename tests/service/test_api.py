"""The scoring API through FastAPI's TestClient, on a real store and registry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.app import create_app
from service.people import find_person
from service.recommending import Ask, recommend
from service.storage.engine import open_engine
from service.storage.tables import events as events_table
from tests.conftest import ADMIN_KEY, READ_KEY, TABLET_KEY, ServedStore

ADMIN = {"X-API-Key": ADMIN_KEY}
READER = {"X-API-Key": READ_KEY}
TABLET = {"X-API-Key": TABLET_KEY}


@pytest.fixture(scope="module")
def client(served_store: ServedStore) -> Iterator[TestClient]:
    with TestClient(create_app(served_store.settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def reference(served_store: ServedStore) -> dict[str, pd.DataFrame]:
    folder = served_store.data
    return {
        name: pd.read_parquet(folder / f"{name}.parquet")
        for name in ("customers", "inventory", "catalogue")
    }


def event(n: str, store: ServedStore, **fields: Any) -> dict[str, Any]:
    ts = store.clock - timedelta(hours=1)
    return {"event_id": f"test-{n}", "ts": ts.isoformat(), "channel": "app", **fields}


def stored_events(store: ServedStore) -> int:
    engine = open_engine(store.settings.database_url)
    with engine.connect() as conn:
        count = int(conn.execute(select(func.count()).select_from(events_table)).scalar_one())
    engine.dispose()
    return count


# -- access ------------------------------------------------------------------------------
def test_keys_and_scopes(client: TestClient) -> None:
    url = "/v1/customers/C0000001/recommendations"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"X-API-Key": "not-a-key"}).status_code == 401
    assert client.get(url, headers=READER).status_code == 200
    refused = client.get("/v1/customers/C0000001/churn", headers=READER)
    assert refused.status_code == 403 and "churn:read" in refused.json()["detail"]
    assert client.post("/v1/admin/reload", headers=READER).status_code == 403
    assert client.get("/health").status_code == 200


def test_a_store_tablet_sees_only_its_store(client: TestClient, reference: dict) -> None:
    own = client.get("/v1/customers/C0000002/recommendations?k=10", headers=TABLET)
    assert own.status_code == 200 and own.json()["store_id"] == "S001"
    stock = reference["inventory"]
    in_s001 = set(stock[(stock["store_id"] == "S001") & (stock["quantity"] > 0)]["item_id"])
    assert {i["item_id"] for i in own.json()["items"]} <= in_s001
    other = client.get("/v1/customers/C0000002/recommendations?store_id=S002", headers=TABLET)
    assert other.status_code == 403 and "S001" in other.json()["detail"]


# -- events ------------------------------------------------------------------------------
def test_events_are_stored_once(client: TestClient, served_store: ServedStore) -> None:
    batch = {
        "events": [
            event("once-1", served_store, customer_id="C0000010", type="view", item_id="I000001"),
            event("once-2", served_store, customer_id="C0000010", type="view", item_id="I000002"),
        ]
    }
    before = stored_events(served_store)
    first = client.post("/v1/events", json=batch, headers=ADMIN)
    assert first.status_code == 200
    assert first.json() == {"accepted": 2, "duplicates": 0, "erased": 0, "rejected": []}
    again = client.post("/v1/events", json=batch, headers=ADMIN)
    assert again.json() == {"accepted": 0, "duplicates": 2, "erased": 0, "rejected": []}
    assert stored_events(served_store) == before + 2


def test_a_bad_event_rejects_the_batch_and_names_it(
    client: TestClient, served_store: ServedStore
) -> None:
    good = event("bad-1", served_store, customer_id="C0000011", type="view", item_id="I000001")
    bad = event("bad-2", served_store, customer_id="C0000011", type="purchase", quantity=0)
    before = stored_events(served_store)
    answer = client.post("/v1/events", json={"events": [good, bad]}, headers=ADMIN)
    assert answer.status_code == 422
    rejected = answer.json()["rejected"]
    assert {(r["index"], r["field"]) for r in rejected} == {(1, "item_id"), (1, "quantity")}
    assert all(r["event_id"] == "test-bad-2" for r in rejected)
    assert answer.json()["accepted"] == 0
    assert stored_events(served_store) == before


def test_batches_are_capped(client: TestClient, served_store: ServedStore) -> None:
    many = [
        event(f"cap-{i}", served_store, customer_id="C0000012", type="view", item_id="I000001")
        for i in range(1001)
    ]
    answer = client.post("/v1/events", json={"events": many}, headers=ADMIN)
    assert answer.status_code == 422
    assert client.post("/v1/events", json={"nope": []}, headers=ADMIN).status_code == 422
    assert client.post("/v1/events", content=b"{not json", headers=ADMIN).status_code == 422


# -- recommendations ---------------------------------------------------------------------
def test_a_known_customer_gets_reasoned_recommendations(
    client: TestClient, served_store: ServedStore
) -> None:
    answer = client.get("/v1/customers/C0000003/recommendations?k=5", headers=READER).json()
    assert answer["cold_start"] is False and answer["basis"] == "history"
    assert answer["model_version"] == served_store.recommender_version
    assert len(answer["items"]) == 5
    assert all(item["reason"] and item["name"] for item in answer["items"])
    scores = [item["score"] for item in answer["items"]]
    assert scores == sorted(scores, reverse=True)


def test_filters_by_store_stock_and_category(client: TestClient, reference: dict) -> None:
    stock = reference["inventory"]
    shelf = stock[(stock["store_id"] == "S002") & (stock["quantity"] > 0)]
    answer = client.get(
        "/v1/customers/C0000004/recommendations?k=8&store_id=S002", headers=READER
    ).json()
    assert answer["items"]
    on_hand = dict(zip(shelf["item_id"], shelf["quantity"], strict=True))
    assert all(item["in_stock"] == on_hand[item["item_id"]] for item in answer["items"])
    category = reference["catalogue"]["category"].iloc[0]
    answer = client.get(
        "/v1/customers/C0000004/recommendations", params={"category": category}, headers=READER
    ).json()
    assert answer["items"] and {i["category"] for i in answer["items"]} == {category}
    unknown = client.get("/v1/customers/C0000004/recommendations?store_id=NOPE", headers=READER)
    assert unknown.status_code == 404 and "store_id" in unknown.json()["detail"]
    assert (
        client.get("/v1/customers/C0000004/recommendations?k=0", headers=READER).status_code == 422
    )


def test_strangers_get_a_flagged_cold_start_answer(client: TestClient) -> None:
    answer = client.get(
        "/v1/customers/NOBODY/recommendations?k=4&store_id=S001", headers=READER
    ).json()
    assert answer["cold_start"] is True and len(answer["items"]) == 4
    assert answer["basis"] in {"store best sellers", "best sellers"}
    anonymous = client.get("/v1/recommendations?anonymous_id=never-seen&k=3", headers=READER)
    assert anonymous.status_code == 200 and anonymous.json()["cold_start"] is True


def test_recent_views_of_an_anonymous_visitor_are_folded_in(
    client: TestClient, served_store: ServedStore
) -> None:
    views = [
        event(f"anon-{i}", served_store, anonymous_id="visitor-1", type="view", item_id=item)
        for i, item in enumerate(["I000005", "I000006", "I000007"])
    ]
    assert client.post("/v1/events", json={"events": views}, headers=ADMIN).status_code == 200
    answer = client.get("/v1/recommendations?anonymous_id=visitor-1&k=5", headers=READER).json()
    assert answer["cold_start"] is True and answer["basis"] == "recent activity"
    popular = client.get("/v1/recommendations?anonymous_id=nobody&k=5", headers=READER).json()
    assert [i["item_id"] for i in answer["items"]] != [i["item_id"] for i in popular["items"]]


def test_a_new_event_changes_the_next_answer(client: TestClient, served_store: ServedStore) -> None:
    url = "/v1/customers/C0000020/recommendations?k=10&include_purchased=true"
    before = client.get(url, headers=READER).json()
    assert before["basis"] == "history"
    carts = [
        event(f"rt-{i}", served_store, customer_id="C0000020", type="add_to_cart", item_id=item)
        for i, item in enumerate(["I000100", "I000101", "I000102", "I000103"])
    ]
    assert client.post("/v1/events", json={"events": carts}, headers=ADMIN).status_code == 200
    after = client.get(url, headers=READER).json()
    assert after["basis"] == "history and recent activity"
    assert [i["item_id"] for i in after["items"]] != [i["item_id"] for i in before["items"]]


def test_a_late_till_upload_changes_the_next_answer(
    client: TestClient, served_store: ServedStore
) -> None:
    """Events are new to the model by when they arrive, not by their own time: a store's
    purchases uploaded at night, stamped before the model's cutoff, count at once."""
    url = "/v1/customers/C0000021/recommendations?k=10&include_purchased=true"
    before = client.get(url, headers=READER).json()
    assert before["basis"] == "history"
    long_ago = (served_store.clock - timedelta(days=200)).isoformat()
    till = [
        {"event_id": f"till-{item}", "ts": long_ago, "customer_id": "C0000021",
         "channel": "store", "store_id": "S001", "type": "purchase", "item_id": item}
        for item in ["I000200", "I000201", "I000202"]
    ]  # fmt: skip
    assert client.post("/v1/events", json={"events": till}, headers=ADMIN).status_code == 200
    after = client.get(url, headers=READER).json()
    assert after["basis"] == "history and recent activity"
    assert [i["item_id"] for i in after["items"]] != [i["item_id"] for i in before["items"]]


def test_similar_items(client: TestClient, reference: dict) -> None:
    answer = client.get("/v1/items/I000001/similar?k=5", headers=READER)
    assert answer.status_code == 200 and answer.json()["items"]
    assert all(i["item_id"] != "I000001" for i in answer.json()["items"])
    stock = reference["inventory"]
    in_s003 = set(stock[(stock["store_id"] == "S003") & (stock["quantity"] > 0)]["item_id"])
    local = client.get("/v1/items/I000001/similar?k=5&store_id=S003", headers=READER).json()
    assert {i["item_id"] for i in local["items"]} <= in_s003
    missing = client.get("/v1/items/NO-SUCH-ITEM/similar", headers=READER)
    assert missing.status_code == 404 and "NO-SUCH-ITEM" in missing.json()["detail"]


# -- churn and profile --------------------------------------------------------------------
def test_churn_for_one_and_many(client: TestClient, served_store: ServedStore) -> None:
    one = client.get("/v1/customers/C0000005/churn", headers=ADMIN)
    assert one.status_code == 200
    body = one.json()
    assert body["band"] in {"low", "medium", "high", "lapsed", "new"}
    assert body["model_version"] == served_store.churn_version
    if body["band"] not in ("lapsed", "new"):
        assert 0 < body["probability"] < 1 and body["drivers"]
    assert body["drivers_effect"] == ("lowers" if body["band"] == "low" else "raises")
    assert client.get("/v1/customers/NOBODY/churn", headers=ADMIN).status_code == 404
    many = client.post(
        "/v1/churn/scores", json={"customer_ids": ["C0000005", "C0000006", "NOBODY"]}, headers=ADMIN
    ).json()
    assert [s["customer_id"] for s in many["scores"]] == ["C0000005", "C0000006"]
    assert many["unknown"] == ["NOBODY"]
    # Scored together or alone, a customer gets the same answer.
    assert many["scores"][0]["probability"] == body["probability"]
    assert many["scores"][0]["drivers"] == body["drivers"]
    alone = client.get("/v1/customers/C0000006/churn", headers=ADMIN).json()
    assert (many["scores"][1]["probability"], many["scores"][1]["band"]) == (
        alone["probability"],
        alone["band"],
    )
    assert (
        client.post("/v1/churn/scores", json={"customer_ids": []}, headers=ADMIN).status_code == 422
    )


def test_profile_shows_every_channel_and_the_open_cart(
    client: TestClient, served_store: ServedStore
) -> None:
    cid = "C0000030"
    posted = [
        event("cart-1", served_store, customer_id=cid, type="add_to_cart", item_id="I000200"),
        event("cart-2", served_store, customer_id=cid, type="add_to_cart", item_id="I000201"),
    ]
    assert client.post("/v1/events", json={"events": posted}, headers=ADMIN).status_code == 200
    profile = client.get(f"/v1/customers/{cid}/profile", headers=ADMIN).json()
    assert {line["item_id"] for line in profile["cart"]} >= {"I000200", "I000201"}
    assert "app" in profile["channels"] and cid in profile["customer_ids"]
    assert profile["recent"][0]["type"] == "add_to_cart"
    # An offer shown (no item): named by the offer book.
    shown = event("shown-1", served_store, customer_id=cid, type="offer_shown", item_id=None,
                  offer_id="O-CC")  # fmt: skip
    assert client.post("/v1/events", json={"events": [shown]}, headers=ADMIN).status_code == 200
    latest = client.get(f"/v1/customers/{cid}/profile", headers=ADMIN).json()["recent"][0]
    assert (latest["offer_id"], latest["name"]) == ("O-CC", "Free click & collect")
    # Bought at a store till: it leaves the cart, whatever channel it was carted in.
    till = event(
        "cart-3", served_store, customer_id=cid, type="purchase", item_id="I000200",
        channel="store", store_id="S001", quantity=1, price=9.5,
    )  # fmt: skip
    till["ts"] = (served_store.clock - timedelta(minutes=10)).isoformat()
    assert client.post("/v1/events", json={"events": [till]}, headers=ADMIN).status_code == 200
    cart = client.get(f"/v1/customers/{cid}/profile", headers=ADMIN).json()["cart"]
    items = {line["item_id"] for line in cart}
    assert "I000200" not in items and "I000201" in items
    assert client.get("/v1/customers/NOBODY/profile", headers=ADMIN).status_code == 404


def test_erasure(client: TestClient, served_store: ServedStore) -> None:
    cid = "C0000040"
    before = stored_events(served_store)
    erased = client.delete(f"/v1/customers/{cid}", headers=ADMIN)
    assert erased.status_code == 200 and erased.json()["events_deleted"] > 0
    assert stored_events(served_store) == before - erased.json()["events_deleted"]
    assert client.get(f"/v1/customers/{cid}/profile", headers=ADMIN).status_code == 404
    recs = client.get(f"/v1/customers/{cid}/recommendations", headers=ADMIN).json()
    assert recs["cold_start"] is True
    assert client.delete(f"/v1/customers/{cid}", headers=ADMIN).status_code == 404
    assert client.delete("/v1/customers/C0000041", headers=READER).status_code == 403


def test_an_erased_customer_who_returns_is_new_to_every_list(
    own_client: TestClient, own_store: ServedStore
) -> None:
    """Erased, then back with one view: the recommendations, and the suggestions the
    offers and the tablet weigh, come from that view alone, not from what the model
    learned of them before the erasure."""
    cid = "C0000042"
    assert own_client.delete(f"/v1/customers/{cid}", headers=ADMIN).status_code == 200
    back = event("back-1", own_store, customer_id=cid, type="view", item_id="I000020")
    back["ts"] = (own_store.clock + timedelta(seconds=1)).isoformat()  # after the erasure
    assert own_client.post("/v1/events", json={"events": [back]}, headers=ADMIN).status_code == 200
    listed = own_client.get(f"/v1/customers/{cid}/recommendations?k=10", headers=ADMIN).json()
    assert listed["basis"] == "recent activity" and listed["cold_start"] is True
    state = own_client.app.state  # type: ignore[attr-defined]
    with state.engine.connect() as conn:
        person = find_person(conn, customer_id=cid)
        assert person is not None
        answer = recommend(
            state.holder.current, state.shelf, conn, person, Ask(k=10), own_store.clock
        )
    assert answer.basis == "recent activity"
    assert [s.item_id for s in answer.items] == [i["item_id"] for i in listed["items"]]


# -- operations --------------------------------------------------------------------------
def test_ready_and_metrics(client: TestClient, served_store: ServedStore) -> None:
    ready = client.get("/ready").json()
    assert ready["ready"] is True
    assert ready["models"]["omni-recommender"] == served_store.recommender_version
    client.get("/v1/customers/C0000001/recommendations", headers=READER)
    text = client.get("/metrics").text
    assert 'route="/v1/customers/{customer_id}/recommendations"' in text
    assert "omni_request_seconds_bucket" in text and "C0000001" not in text


def test_openapi_has_an_example_for_every_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for name in ("EventBatch", "EventsAccepted", "Recommendations", "ChurnScore", "SimilarItems",
                 "ItemAvailability"):  # fmt: skip
        assert spec["components"]["schemas"][name].get("examples"), name
    # Every field of an event is typed, with its values and limits.
    event = spec["components"]["schemas"]["EventBatch"]["properties"]["events"]["items"]
    assert set(event["properties"]) == {
        "event_id", "ts", "customer_id", "anonymous_id", "channel", "type", "item_id",
        "quantity", "price", "store_id", "order_id", "offer_id", "event_name", "reason",
        "status", "case_id", "served_id",
    }  # fmt: skip
    assert "store" in event["properties"]["channel"]["enum"]
    assert set(event["properties"]["status"]["anyOf"][0]["enum"]) == {"open", "resolved"}
    assert event["properties"]["event_id"]["maxLength"] == 128
    assert event["additionalProperties"] is False


def test_openapi_documents_the_key_errors_of_every_v1_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operations = [
        (path, method, op)
        for path, methods in spec["paths"].items()
        if path.startswith("/v1/")
        for method, op in methods.items()
    ]
    assert len(operations) > 10
    tracking = {"/v1/batch", "/v1/track", "/v1/identify", "/v1/page", "/v1/screen", "/v1/alias"}
    for path, method, op in operations:
        for code in ("401", "403", "413"):
            body = op["responses"][code]["content"]["application/json"]["schema"]
            refs = [b.get("$ref", "") for b in body.get("anyOf", [body])]
            # The tracking API answers key errors in Segment's shape (success, code, message).
            shape = "/Failed" if path in tracking and code != "413" else "/Problem"
            assert any(r.endswith(shape) for r in refs), (method, path, code)
    # What the service answers matches: a string detail.
    answer = client.get("/v1/customers/C0000001/churn")
    assert answer.status_code == 401 and isinstance(answer.json()["detail"], str)


def test_json_oddities_are_422_never_500(client: TestClient, served_store: ServedStore) -> None:
    base = event("odd-1", served_store, customer_id="C0000013", type="view", item_id="I000001")
    cases = {
        "item_id": {**base, "item_id": {"nested": 1}},
        "quantity": {**base, "type": "purchase", "quantity": 10**30, "price": 1.0},
        "ts": {**base, "ts": 1_700_000_000},
        "colour": {**base, "colour": "red"},
    }
    for field, bad in cases.items():
        answer = client.post("/v1/events", json={"events": [bad]}, headers=ADMIN)
        assert answer.status_code == 422, field
        assert field in {r["field"] for r in answer.json()["rejected"]}, answer.json()


def test_a_store_key_writes_only_its_own_store_events(
    client: TestClient, served_store: ServedStore
) -> None:
    base = event("store-key-1", served_store, customer_id="C0000020", type="view",
                 item_id="I000001", channel="store", store_id="S001")  # fmt: skip
    ok = client.post("/v1/events", json={"events": [base]}, headers=TABLET)
    assert ok.status_code == 200 and ok.json()["accepted"] == 1
    cases = {
        "channel": {**base, "channel": "web", "store_id": None},
        "store_id": {**base, "store_id": "S002"},
        "customer_id": {**base, "customer_id": "NOBODY-KNOWS"},
        "offer_id": {**base, "type": "offer_accepted", "offer_id": "O-NONE", "item_id": None},
    }
    for field, bad in cases.items():
        bad = {**bad, "event_id": f"store-key-{field}"}
        answer = client.post("/v1/events", json={"events": [base, bad]}, headers=TABLET)
        assert answer.status_code == 403, (field, answer.text)
        assert [(r["index"], r["field"]) for r in answer.json()["rejected"]] == [(1, field)]
    # Nothing of a refused batch was stored; the admin key may write any of them.
    web = {**cases["channel"], "event_id": "store-key-channel"}
    assert client.post("/v1/events", json={"events": [web]}, headers=ADMIN).json()["accepted"] == 1
