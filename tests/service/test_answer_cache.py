"""Answers kept for persons active since the batch answers: the same as made afresh, and
never served once something new of theirs arrived, whichever process it arrived through."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from models import Filters
from service.answer_cache import AnswerCache
from service.app import create_app
from service.fold_in import history_now
from service.people import find_person
from service.serving import ModelHolder
from service.shelf import Shelf
from service.storage.engine import open_engine
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


@pytest.mark.parametrize(
    ("store_id", "category", "k"), [(None, None, 10), ("S001", None, 10), (None, "Books", 50)]
)
def test_a_folded_answer_is_the_full_ranking_of_the_history_now(
    two: tuple[TestClient, TestClient],
    own_store: ServedStore,
    store_id: str | None,
    category: str | None,
    k: int,
) -> None:
    """Kept as the person's best items before any filter, a folded answer still equals
    every item scored from their history now under the request's filters (a store's
    shelf, a category, the repeat policy), as the batch's warm answers do for everyone
    else; when too few of the kept ones pass (50 of one category), all are scored."""
    keeping, _ = two
    cid = "C0000042"
    for n, item in enumerate(["I000320", "I000321", "I000322"]):
        _post(keeping, own_store, f"5-{n}", customer_id=cid, type="purchase", item_id=item)
    query = f"?k={k}" + (f"&store_id={store_id}" if store_id else "")
    url = f"/v1/customers/{cid}/recommendations{query}" + (
        f"&category={category}" if category else ""
    )
    got = [i["item_id"] for i in keeping.get(url, headers=ADMIN).json()["items"]]

    settings = own_store.settings
    holder = ModelHolder(settings)
    holder.reload()
    model = holder.current.need_recommender()
    engine = open_engine(settings.database_url)
    try:
        shelf = Shelf(engine, settings.stock_ttl_seconds)
        allowed = shelf.stock_mask(store_id, model) if store_id else None
        if category is not None:
            allowed = shelf.category_mask(category, model)
        with engine.connect() as conn:
            person = find_person(conn, customer_id=cid)
            assert person is not None
            history = history_now(conn, person, model.items_, settings.now())
    finally:
        engine.dispose()
    assert history is not None
    filters = Filters.default_answer(pd.Timestamp(settings.now()), allowed=allowed)
    expected = model.recommend_history(history, k, filters)["item_id"].tolist()
    assert got == expected and len(got) >= 10
