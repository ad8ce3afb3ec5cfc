"""Answers kept for persons active since the batch answers: the same as made afresh, and
never served once something new of theirs arrived, whichever process it arrived through."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.answer_cache import AnswerCache
from service.app import create_app
from tests.conftest import ADMIN_KEY, ServedStore

ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
def two(own_store: ServedStore) -> Iterator[tuple[TestClient, TestClient]]:
    """Two services on one store: one keeps folded answers, the other makes every answer
    afresh."""
    keeping = own_store.settings
    afresh = keeping.model_copy(update={"folded_answers": 0})
    with TestClient(create_app(keeping)) as a, TestClient(create_app(afresh)) as b:
        yield a, b


def _post(client: TestClient, store: ServedStore, n: str, **fields: Any) -> None:
    ts = (store.clock - timedelta(hours=1)).isoformat()
    body = {"events": [{"event_id": f"cache-{n}", "ts": ts, "channel": "app", **fields}]}
    assert client.post("/v1/events", json=body, headers=ADMIN).status_code == 200


def _items(client: TestClient, cid: str) -> list[str]:
    answer = client.get(f"/v1/customers/{cid}/recommendations?k=10", headers=ADMIN).json()
    assert answer["basis"] == "history and recent activity"
    return [(i["item_id"], i["reason"]) for i in answer["items"]]


def _churn(client: TestClient, cid: str) -> tuple[object, ...]:
    body = client.get(f"/v1/customers/{cid}/churn", headers=ADMIN).json()
    return body["probability"], body["band"], tuple(body["drivers"])


def test_a_kept_recommendation_equals_one_made_afresh_until_the_next_event(
    two: tuple[TestClient, TestClient], own_store: ServedStore
) -> None:
    keeping, afresh = two
    cid = "C0000040"
    _post(keeping, own_store, "1", customer_id=cid, type="add_to_cart", item_id="I000300")
    first = _items(keeping, cid)
    assert _items(keeping, cid) == first == _items(afresh, cid)
    # Through the other service: the keeping one must not answer from before it.
    for n, item in enumerate(["I000301", "I000302", "I000303", "I000304"]):
        _post(afresh, own_store, f"2-{n}", customer_id=cid, type="add_to_cart", item_id=item)
    after = _items(keeping, cid)
    assert after != first
    assert after == _items(afresh, cid)


def test_a_kept_churn_answer_is_made_again_after_a_purchase(
    two: tuple[TestClient, TestClient], own_store: ServedStore
) -> None:
    keeping, afresh = two
    cid = "C0000041"
    _post(keeping, own_store, "3", customer_id=cid, type="view", item_id="I000310")
    before = _churn(keeping, cid)
    assert _churn(keeping, cid) == before == _churn(afresh, cid)
    _post(afresh, own_store, "4", customer_id=cid, type="purchase", item_id="I000311", price=90.0)
    after = _churn(keeping, cid)
    assert after == _churn(afresh, cid)
    assert after != before


def test_the_cache_is_bounded_and_drops_what_no_longer_holds() -> None:
    cache: AnswerCache[int] = AnswerCache(2)
    made: list[str] = []

    def make(key: str) -> int:
        made.append(key)
        return len(made)

    assert cache.get_or_make("a", lambda: make("a")) == 1
    assert cache.get_or_make("a", lambda: make("a")) == 1  # kept
    cache.get_or_make("b", lambda: make("b"))
    cache.get_or_make("a", lambda: make("a"))  # a is now the most recently used
    cache.get_or_make("c", lambda: make("c"))  # b leaves
    assert len(cache) == 2 and made == ["a", "b", "c"]
    cache.get_or_make("b", lambda: make("b"))
    assert made == ["a", "b", "c", "b"]
    # An answer that no longer holds (too old) is made again.
    assert cache.get_or_make("b", lambda: make("b"), fresh=lambda v: v > 10) == 5
    none: AnswerCache[int] = AnswerCache(0)
    none.get_or_make("a", lambda: make("a"))
    assert len(none) == 0
