"""What a client sends that is wrong gets a 422 naming the field, or the key is refused
first; nothing of a bad batch is stored; never a 500. On SQLite and PostgreSQL (where a
NUL byte in text used to reach the database)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from features.records import validate_records
from features.schema import EVENTS
from features.validation import BatchRejected
from service.app import create_app
from service.settings import SCOPES, ApiKey, Settings

KEY = {"X-API-Key": "bad-input-admin"}
JSON = {**KEY, "content-type": "application/json"}
GOOD = {"event_id": "good-1", "ts": "2026-01-01T10:00:00Z", "customer_id": "C1",
        "channel": "web", "type": "view", "item_id": "I1"}  # fmt: skip


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database_url=db_url,
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        api_keys={KEY["X-API-Key"]: ApiKey(name="admin", scopes=list(SCOPES))},
    )
    with TestClient(create_app(settings, load_models=False)) as test_client:
        yield test_client


def _post(client: TestClient, body: str) -> Any:
    return client.post(
        "/v1/events",
        content=body.encode("utf-8", "surrogatepass"),
        headers=JSON,
    )


# JSON text as a client may send it: escapes and literals json.dumps would not write.
CASES = {
    "customer_id": '"customer_id": "\\ud800"',  # half of a UTF-16 pair
    "item_id": '"item_id": "I\\u0000X"',  # a NUL byte
    "anonymous_id": '"anonymous_id": "a\\u0007b"',  # a control character
    "ts": '"ts": "2100-01-01T00:00:00Z"',  # far ahead of now
    "price": '"price": NaN',  # not JSON, but Python's parser reads it
}


@pytest.mark.parametrize("field", list(CASES))
def test_a_bad_value_is_a_422_naming_it_and_the_batch_is_not_stored(
    client: TestClient, field: str
) -> None:
    good = {**GOOD, "type": "purchase", "price": 3.0}
    bad = {k: v for k, v in {**GOOD, "event_id": "bad-1", "price": 1.0}.items() if k != field}
    bad_text = json.dumps(bad)[:-1] + ", " + CASES[field] + "}"
    answer = _post(client, f'{{"events": [{json.dumps(good)}, {bad_text}]}}')
    assert answer.status_code == 422, answer.text
    problems = answer.json()["rejected"]
    assert [(p["index"], p["field"]) for p in problems] == [(1, field)]
    assert len(answer.text) < 1_000
    # Nothing of the batch was stored: the good event is new when sent again alone.
    again = client.post("/v1/events", json={"events": [good]}, headers=KEY)
    assert again.json()["accepted"] == 1


def test_the_window_of_event_times() -> None:
    for ts, word in [("1969-12-31T23:59:59Z", "before 1970"), ("2262-01-01T00:00:00Z", "ahead")]:
        with pytest.raises(BatchRejected) as refused:
            validate_records([{**GOOD, "ts": ts}], EVENTS)
        assert word in refused.value.errors[0].message
    assert validate_records([{**GOOD, "ts": "1970-01-01T00:00:00Z"}], EVENTS).rows


@pytest.mark.parametrize(
    "path",
    [
        "/v1/customers/UNKNOWN/churn",
        "/v1/customers/UNKNOWN/profile",
        "/v1/customers/UNKNOWN/recommendations",
        "/v1/customers/UNKNOWN/next-best-offer?channel=web",
        "/v1/customers/A%00B/churn",
    ],
)
def test_the_key_is_checked_before_the_customer_is_looked_up(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    assert client.delete("/v1/customers/UNKNOWN").status_code == 401


def test_a_control_character_in_a_path_id_is_a_422(client: TestClient) -> None:
    answer = client.get("/v1/customers/A%00B/churn", headers=KEY)
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"][-1] == "customer_id"


def test_a_body_over_the_limit_is_a_413_before_it_is_read(client: TestClient) -> None:
    big = json.dumps({"events": [{**GOOD, "event_id": f"big-{i}"} for i in range(9_000)]})
    assert len(big) > 1024 * 1024
    answer = client.post("/v1/events", content=big, headers=JSON)
    assert answer.status_code == 413 and "limit" in answer.json()["detail"]

    def streamed() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024].encode()

    answer = client.post("/v1/events", content=streamed(), headers=JSON)
    assert answer.status_code == 413
    again = client.post("/v1/events", json={"events": [{**GOOD, "event_id": "big-0"}]}, headers=KEY)
    assert again.json()["accepted"] == 1  # nothing of the refused bodies was stored


def test_a_batch_over_the_cap_is_refused_without_echoing_it(client: TestClient) -> None:
    events = [{**GOOD, "event_id": f"many-{i}"} for i in range(1_001)]
    answer = client.post("/v1/events", json={"events": events}, headers=KEY)
    assert answer.status_code == 422
    assert "many-" not in answer.text and len(answer.text) < 1_000
    assert answer.json()["detail"][0]["loc"] == ["body", "events"]


def test_a_body_that_is_no_json_is_a_422_saying_so(client: TestClient) -> None:
    answer = _post(client, '{"events": [{"event_id": "e1",')
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "json_invalid"
