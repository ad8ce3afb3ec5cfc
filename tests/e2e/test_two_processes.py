"""Two `omni serve` processes on one PostgreSQL store answer as one: what one of them
records (an event, a decision, a trigger handed out, an erasure) the other sees on the
next request, because no personal state lives in a process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest

from features.sources.files import read_folder
from service.storage.engine import open_engine, temporary_schema
from tests.conftest import ADMIN_KEY, POSTGRES_ENV, ServedStore, _postgres_url, add_customer
from tests.e2e.conftest import server_env, serving
from training.ingest import ingest

ADMIN = {"X-API-Key": ADMIN_KEY}
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def two_servers(
    served_store: ServedStore, tmp_path: Path
) -> Iterator[tuple[str, str, ServedStore]]:
    base = _postgres_url()
    if not base:
        pytest.skip(f"PostgreSQL not available: {POSTGRES_ENV} is not set (make test sets it)")
    with temporary_schema(base, prefix="omni_two") as url:
        engine = open_engine(url)
        ingest(engine, read_folder(served_store.data))
        engine.dispose()
        store = ServedStore(
            served_store.settings.model_copy(update={"database_url": url}),
            served_store.data,
            served_store.recommender_version,
            served_store.churn_version,
            served_store.clock,
        )
        env = server_env(store.settings, OMNI_CLOCK=store.clock.isoformat())
        with serving(env, tmp_path / "a.log") as a, serving(env, tmp_path / "b.log") as b:
            yield a, b, store


def call(method: str, url: str, **kwargs: Any) -> Any:
    answer = httpx2.request(method, url, headers=ADMIN, timeout=30, **kwargs)
    assert answer.status_code < 500, answer.text
    return answer


def test_two_processes_answer_as_one(two_servers: tuple[str, str, ServedStore]) -> None:
    a, b, store = two_servers
    cid = add_customer(store.settings, "TWO-1")
    added = (store.clock - timedelta(hours=30)).isoformat()
    cart = {"event_id": "two-add-1", "ts": added, "customer_id": cid, "channel": "web",
            "type": "add_to_cart", "item_id": "I000010"}  # fmt: skip
    assert call("POST", f"{a}/v1/events", json={"events": [cart]}).json()["accepted"] == 1

    # A cart change through A is in B's profile at once.
    profile = call("GET", f"{b}/v1/customers/{cid}/profile").json()
    assert [line["item_id"] for line in profile["cart"]] == ["I000010"]

    # A trigger handed out by A is not handed out again by B.
    def due(server: str) -> set[str]:
        params = {"channel": "email", "limit": 1000}
        body = call("GET", f"{server}/v1/triggers/abandoned-carts", params=params).json()
        return {t["customer_id"] for t in body["triggers"]}

    assert cid in due(a)
    assert cid not in due(b)

    # A decision made through A is the one B gives.
    first = call("GET", f"{a}/v1/customers/{cid}/next-best-offer", params={"channel": "web"})
    again = call("GET", f"{b}/v1/customers/{cid}/next-best-offer", params={"channel": "app"})
    assert (
        first.json()["decision_id"] and first.json()["decision_id"] == again.json()["decision_id"]
    )

    # An erasure through B: A knows nothing of the person on its next request.
    known = "C0000701"
    before = call("GET", f"{a}/v1/customers/{known}/recommendations").json()
    assert before["cold_start"] is False
    assert call("DELETE", f"{b}/v1/customers/{known}").status_code == 200
    assert call("GET", f"{a}/v1/customers/{known}/profile").status_code == 404
    assert call("GET", f"{a}/v1/customers/{known}/churn").status_code == 404
    assert call("GET", f"{a}/v1/customers/{known}/recommendations").json()["cold_start"] is True
