"""Batch churn answers: served from one stored row while nothing new arrived, the same as
the answer computed from the history; a new event, a new version or erasure moves off them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update

from service.app import create_app
from service.churn_scoring import churn_now, churn_now_many
from service.intake import accept_events
from service.people import find_person
from service.serving import ModelHolder
from service.storage import answers
from service.storage.engine import open_engine
from service.storage.lake import write_lake
from service.storage.tables import answer_sets, churn_answers
from tests.conftest import ADMIN_KEY, ServedStore, copy_of
from training.answers import churn_answers_current, store_churn_answers

ADMIN = {"X-API-Key": ADMIN_KEY}
SAMPLE = [f"C{i:07d}" for i in range(601, 641)]  # ids no other test changes


@pytest.fixture(scope="module")
def answered(served_store: ServedStore, tmp_path_factory: pytest.TempPathFactory) -> ServedStore:
    store = copy_of(served_store, tmp_path_factory.mktemp("answers"), clock=served_store.clock)
    engine = open_engine(store.settings.database_url)
    with engine.begin() as conn:  # another test's `omni serve` may have stored a set
        conn.execute(delete(answer_sets))
    assert not churn_answers_current(engine, store.settings)
    done = store_churn_answers(engine, store.settings)
    assert done.rows > 700 and done.model_version == store.churn_version
    assert churn_answers_current(engine, store.settings)
    engine.dispose()
    return store


@pytest.fixture(scope="module")
def client(answered: ServedStore) -> Iterator[TestClient]:
    with TestClient(create_app(answered.settings)) as test_client:
        yield test_client


def stored_rows(store: ServedStore) -> int:
    engine = open_engine(store.settings.database_url)
    with engine.connect() as conn:
        n = int(conn.execute(select(func.count()).select_from(churn_answers)).scalar_one())
    engine.dispose()
    return n


def test_stored_answers_equal_the_answers_computed_from_history(
    client: TestClient, served_store: ServedStore, tmp_path: Path
) -> None:
    live_store = copy_of(served_store, tmp_path, clock=served_store.clock)
    engine = open_engine(live_store.settings.database_url)
    with engine.begin() as conn:  # this one computes every answer from the history
        conn.execute(delete(answer_sets))
    engine.dispose()
    with TestClient(create_app(live_store.settings)) as live:
        for cid in SAMPLE:
            stored = client.get(f"/v1/customers/{cid}/churn", headers=ADMIN).json()
            computed = live.get(f"/v1/customers/{cid}/churn", headers=ADMIN).json()
            assert stored == computed, cid


def test_the_stored_row_is_what_is_served(client: TestClient, answered: ServedStore) -> None:
    engine = open_engine(answered.settings.database_url)
    with engine.begin() as conn:
        person = find_person(conn, customer_id=SAMPLE[1])
        assert person is not None
        conn.execute(
            update(churn_answers)
            .where(churn_answers.c.person_id == person.person_id)
            .values(probability=0.987, band="high", drivers='["marked by the test"]')
        )
    engine.dispose()
    answer = client.get(f"/v1/customers/{SAMPLE[1]}/churn", headers=ADMIN).json()
    assert (answer["probability"], answer["drivers"]) == (0.987, ["marked by the test"])


def test_a_purchase_arriving_after_the_answers_is_counted_at_once(
    client: TestClient, answered: ServedStore
) -> None:
    url = "/v1/customers/C0000650/churn"
    before = client.get(url, headers=ADMIN).json()
    an_hour_ago = (answered.clock - timedelta(hours=1)).isoformat()
    buy = {"event_id": "answers-buy-1", "ts": an_hour_ago,
           "customer_id": "C0000650", "channel": "store", "store_id": "S001",
           "type": "purchase", "item_id": "I000001", "price": 5.0}  # fmt: skip
    assert client.post("/v1/events", json={"events": [buy]}, headers=ADMIN).status_code == 200
    after = client.get(url, headers=ADMIN).json()
    assert before["band"] != "new" and after["probability"] != before["probability"]


def test_answers_older_than_the_limit_are_not_served(answered: ServedStore) -> None:
    later = answered.settings.model_copy(
        update={"clock": answered.clock.replace(year=answered.clock.year + 1)}
    )
    engine = open_engine(later.database_url)
    assert not churn_answers_current(engine, later)
    engine.dispose()
    with TestClient(create_app(later)) as late:
        answer = late.get(f"/v1/customers/{SAMPLE[0]}/churn", headers=ADMIN).json()
    assert answer["as_of"].startswith(str(later.clock.year))


def test_erasure_deletes_the_answer(client: TestClient, answered: ServedStore) -> None:
    before = stored_rows(answered)
    assert client.delete(f"/v1/customers/{SAMPLE[-1]}", headers=ADMIN).status_code == 200
    assert stored_rows(answered) == before - 1


def every_answer(store: ServedStore) -> list[tuple[object, ...]]:
    engine = open_engine(store.settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(churn_answers).order_by(churn_answers.c.person_id)).all()
    engine.dispose()
    return [tuple(row) for row in rows]


@pytest.mark.spark
def test_answers_stored_from_spark_are_the_embedded_engines(
    answered: ServedStore, spark: Any, tmp_path: Path
) -> None:
    """The nightly answers computed on Spark from a lake: every person's row the same as
    the embedded engine's, on two copies of one store (other tests mark rows of theirs)."""
    copies = {}
    for name in ("embedded", "spark"):
        (tmp_path / name).mkdir()
        copies[name] = copy_of(answered, tmp_path / name, clock=answered.clock)
    embedded = open_engine(copies["embedded"].settings.database_url)
    store_churn_answers(embedded, copies["embedded"].settings, batch="embedded")
    embedded.dispose()
    engine = open_engine(copies["spark"].settings.database_url)
    write_lake(engine, tmp_path / "lake")
    done = store_churn_answers(
        engine, copies["spark"].settings, batch="spark", lake=tmp_path / "lake"
    )
    engine.dispose()
    expected = every_answer(copies["embedded"])
    assert done.rows == len(expected) > 700
    assert every_answer(copies["spark"]) == expected


def test_a_batch_gets_each_persons_own_answer(served_store: ServedStore, tmp_path: Path) -> None:
    """What a batch (tonight's offers) reads for everyone at once is what each person's own
    ask gets: the stored row where it stands, computed from the state where something of
    theirs arrived after the set was made."""
    store = copy_of(served_store, tmp_path, clock=served_store.clock)
    engine = open_engine(store.settings.database_url)
    store_churn_answers(engine, store.settings)
    an_hour_ago = (store.clock - timedelta(hours=1)).isoformat()
    late = [{"event_id": f"batch-buy-{cid}", "ts": an_hour_ago, "customer_id": cid,
             "channel": "store", "store_id": "S001", "type": "purchase",
             "item_id": "I000001", "price": 5.0} for cid in SAMPLE[:3]]  # fmt: skip
    accept_events(engine, late)
    holder = ModelHolder(store.settings)
    holder.reload()
    served, hours = holder.current, store.settings.answer_max_age_hours
    with engine.connect() as conn:
        people = [find_person(conn, customer_id=cid) for cid in SAMPLE]
        ids = [p.person_id for p in people if p is not None] + ["no-such-person"]
        batch = churn_now_many(conn, served, ids, store.clock, hours)
        each = {p.person_id: churn_now(conn, served, p, store.clock, hours) for p in people if p}
        rows = answers.churn_rows(conn, str(served.churn_version))
    engine.dispose()
    assert batch.pop("no-such-person").band == "new"
    assert batch == each
    stored = {p: (rows[p].probability, rows[p].drivers) for p in batch if p in rows}
    got = {p: (a.probability, a.drivers) for p, a in batch.items()}
    late_ones = {p.person_id for p in people[:3] if p}
    assert len(late_ones) == 3 and all(got[p] != stored[p] for p in late_ones)
    assert len(stored) > 20 and all(got[p] == stored[p] for p in set(stored) - late_ones)
