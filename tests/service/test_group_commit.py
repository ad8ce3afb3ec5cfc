"""Concurrent event requests written in one transaction (a group commit): each request's
answer and what is stored are what writing them one after the other gives."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from features.validation import BatchRejected
from service import intake
from service.app import create_app
from service.group_commit import GroupCommit
from service.handoff import Handoff
from service.intake import Records, accept_batches, accept_events
from service.storage.tables import events
from service.storage.writer import Applied
from tests.conftest import ADMIN_KEY, ServedStore
from tests.service.test_online_state import EVENT, _catalogue, _clear, rebuilt, same_state, state


def stored(engine: Engine) -> list[tuple[Any, ...]]:
    """Every stored event, without its arrival time."""
    columns = [col for col in events.c if col.name != "ingested_at"]
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(*columns).order_by(events.c.event_id))]


def outcome(engine: Engine, batch: Records) -> Applied | str:
    try:
        return accept_events(engine, batch)
    except BatchRejected as rejected:
        return f"rejected: {[(e.index, e.field) for e in rejected.errors]}"


def said(result: Applied | Exception) -> Applied | str:
    if isinstance(result, BatchRejected):
        return f"rejected: {[(e.index, e.field) for e in result.errors]}"
    assert isinstance(result, Applied), result
    return result


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=st.lists(st.lists(EVENT, min_size=1, max_size=5), min_size=1, max_size=6))
def test_batches_written_together_store_and_answer_as_written_one_by_one(
    engine: Engine, batches: list[list[dict[str, Any]]]
) -> None:
    """Random batches (ids, types and times drawn from a few, so that batches share events
    and customers; some refused) written as one group: every batch's answer, the events
    stored and the online state are those of the batches written one after the other."""
    _clear(engine)
    _catalogue(engine)
    one_by_one = [outcome(engine, batch) for batch in batches]
    alone = stored(engine)
    _clear(engine)
    _catalogue(engine)
    together = [said(result) for result in accept_batches(engine, batches)]
    assert together == one_by_one
    assert stored(engine) == alone
    online = state(engine)
    assert same_state(online, rebuilt(engine)), online


def event(key: str, who: str = "C1", **more: Any) -> dict[str, Any]:
    return {"event_id": key, "ts": "2026-03-01T10:00:00Z", "customer_id": who,
            "channel": "web", "type": "view", "item_id": "I1", **more}  # fmt: skip


async def _submit_together(commit: GroupCommit, batches: Sequence[Records]) -> list[Any]:
    return await asyncio.gather(*(commit.submit(b) for b in batches), return_exceptions=True)


def _group_commit(engine: Engine, max_events: int = 1000) -> tuple[GroupCommit, list[int]]:
    handoff = Handoff(threads=2, grace_s=0.0)
    sizes: list[int] = []
    commit = GroupCommit(
        lambda batches: accept_batches(engine, batches),
        handoff.run,
        max_events,
        on_group=sizes.append,
    )
    return commit, sizes


def test_requests_arriving_together_share_one_commit_each_with_its_own_answer(
    engine: Engine,
) -> None:
    _clear(engine)
    _catalogue(engine)
    commit, sizes = _group_commit(engine)
    bad = [event("e9", channel="carrier-pigeon")]
    results = asyncio.run(
        _submit_together(
            commit,
            [
                [event("e1"), event("e2", "C2")],
                [event("e2", "C2"), event("e3")],
                bad,
                [event("e4")],
            ],
        )
    )
    assert sizes == [4]  # one transaction for the four requests
    assert results[0] == Applied("events", 2, 2, 0)
    assert results[1] == Applied("events", 2, 1, 1)  # e2 came first with the first request
    assert isinstance(results[2], BatchRejected)
    assert [(e.index, e.field) for e in results[2].errors] == [(0, "channel")]
    assert results[3] == Applied("events", 1, 1, 0)
    assert [row[0] for row in stored(engine)] == ["e1", "e2", "e3", "e4"]
    assert same_state(state(engine), rebuilt(engine))


def test_a_group_holds_at_most_max_events_and_never_splits_a_request(engine: Engine) -> None:
    _clear(engine)
    _catalogue(engine)
    commit, sizes = _group_commit(engine, max_events=150)
    batches = [
        [event(f"a{i}") for i in range(100)],
        [event(f"b{i}") for i in range(100)],
        [event(f"c{i}") for i in range(30)],
        [event(f"d{i}") for i in range(200)],  # larger than a group: written alone
    ]
    results = asyncio.run(_submit_together(commit, batches))
    assert sizes == [1, 2, 1]
    assert [r.stored for r in results] == [100, 100, 30, 200]
    assert len(stored(engine)) == 430


def test_no_request_is_left_waiting_whenever_it_arrives(engine: Engine) -> None:
    """Clients that send their next request the moment the last is answered (it arrives
    as the writer finishes its last group), and others at every moment between: each is
    answered, none waits for a writer that has stopped."""
    _clear(engine)
    _catalogue(engine)
    commit, sizes = _group_commit(engine)

    async def client(who: int) -> list[int]:
        return [(await commit.submit([event(f"r{who}-{i}", f"R{who}")])).stored for i in range(30)]

    async def everyone() -> list[list[int]]:
        return await asyncio.wait_for(asyncio.gather(*(client(w) for w in range(4))), 30)

    assert asyncio.run(everyone()) == [[1] * 30] * 4
    assert sum(sizes) == 120


def test_with_two_writers_a_request_is_not_held_behind_a_write_in_progress(
    engine: Engine,
) -> None:
    """PostgreSQL writes several transactions at once: with two writers, a request that
    arrives while a group is being written goes to the database at once (both writes
    wait for each other to start: with one writer the second would wait for the first)."""
    _clear(engine)
    _catalogue(engine)
    both = threading.Barrier(2, timeout=5)

    def write(batches: Sequence[Records]) -> list[Applied | Exception]:
        both.wait()
        return accept_batches(engine, batches)

    handoff = Handoff(threads=2, grace_s=0.0)
    sizes: list[int] = []
    commit = GroupCommit(write, handoff.run, 1000, writers=2, on_group=sizes.append)

    async def one_then_another() -> list[Applied]:
        first = asyncio.create_task(commit.submit([event("e1")]))
        await asyncio.sleep(0.05)  # the first group is being written
        second = await commit.submit([event("e2", "C2")])
        return [await first, second]

    try:
        assert asyncio.run(one_then_another()) == [Applied("events", 1, 1, 0)] * 2
    finally:
        handoff.close()
    assert sizes == [1, 1]


def test_a_request_whose_write_fails_fails_alone(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses one request's events (a fault injected into the state's write
    for event 'boom'): the group is written again request by request, the others are
    stored and only that request gets the error; nothing of it is stored."""
    _clear(engine)
    _catalogue(engine)
    write_state = intake.state.apply

    def refusing(conn: Any, rows: Sequence[Any]) -> None:
        if any(row["event_id"] == "boom" for row in rows):
            raise RuntimeError("the database refused the write")
        write_state(conn, rows)

    monkeypatch.setattr(intake.state, "apply", refusing)
    commit, sizes = _group_commit(engine)
    results = asyncio.run(
        _submit_together(
            commit, [[event("e1")], [event("e2"), event("boom", "C2")], [event("e3", "C2")]]
        )
    )
    assert sizes == [3]
    assert results[0] == Applied("events", 1, 1, 0)
    assert isinstance(results[1], RuntimeError)
    assert results[2] == Applied("events", 1, 1, 0)
    assert [row[0] for row in stored(engine)] == ["e1", "e3"]
    monkeypatch.setattr(intake.state, "apply", write_state)
    assert same_state(state(engine), rebuilt(engine))


def test_posts_arriving_during_a_write_are_answered_each_and_share_the_next_commit(
    own_store: ServedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the API: while one request's write takes 300 ms, four more arrive; each is
    answered for its own events, and they are written together (the metric
    omni_event_commit_requests says how many requests each commit held)."""
    write_state, slow = intake.state.apply, threading.Event()

    def first_slowly(conn: Any, rows: Sequence[Any]) -> None:
        if not slow.is_set():
            slow.set()
            time.sleep(0.3)
        write_state(conn, rows)

    monkeypatch.setattr(intake.state, "apply", first_slowly)
    key = {"X-API-Key": ADMIN_KEY}

    def post(i: int) -> Any:
        if i:
            slow.wait(5)
        batch = [event(f"gc-{i}", f"GC{i}"), event("gc-shared", "GC0")]
        return client.post("/v1/events", json={"events": batch}, headers=key)

    with TestClient(create_app(own_store.settings, load_models=False)) as client:
        with ThreadPoolExecutor(5) as pool:
            answers = list(pool.map(post, range(5)))
        metrics = client.get("/metrics").text
    assert [a.status_code for a in answers] == [200] * 5
    bodies = [a.json() for a in answers]
    assert bodies[0] == {"accepted": 2, "duplicates": 0, "erased": 0, "rejected": []}
    assert [b["accepted"] for b in bodies[1:]] == [1] * 4  # the shared event stored once
    assert [b["duplicates"] for b in bodies[1:]] == [1] * 4

    def metric(name: str) -> float:
        return next(float(x.split()[-1]) for x in metrics.splitlines() if x.startswith(name))

    assert metric("omni_event_commit_requests_sum") == 5
    assert metric("omni_event_commit_requests_count") == 2


@pytest.mark.parametrize("set_writers", [None, 3])
def test_the_writers_of_a_worker_by_database_and_setting(
    db_url: str, set_writers: int | None
) -> None:
    """SQLite writes one group at a time; PostgreSQL as many as the request threads (which
    `omni serve --workers` shares out among the processes); a setting says otherwise."""
    from service.settings import Settings

    config = Settings(database_url=db_url, request_threads=4, commit_writers=set_writers)
    app = create_app(config, load_models=False)
    expected = set_writers or (1 if db_url.startswith("sqlite") else 4)
    assert app.state.intake._writers == expected
    app.state.engine.dispose()
