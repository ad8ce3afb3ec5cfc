"""The online state written with events equals the state recomputed from the event log,
whatever the order, lateness and repetition of what arrives; on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select

from features.validation import BatchRejected
from service.intake import accept_events
from service.people import erase, find_person
from service.storage import activity
from service.storage.tables import activity as activity_table
from service.storage.tables import events, identities

STAMPS = [f"2026-03-{day:02d}T{hour:02d}:00:00Z" for day in (1, 2, 9) for hour in (8, 17)]
EVENT = st.fixed_dictionaries(
    {
        "event_id": st.sampled_from([f"e{i}" for i in range(12)]),
        "ts": st.sampled_from(STAMPS),
        "channel": st.sampled_from(["web", "app"]),
        "type": st.sampled_from(["view", "add_to_cart", "purchase"]),
        "item_id": st.sampled_from(["I1", "I2"]),
    },
    optional={
        "customer_id": st.sampled_from(["C1", "C2"]),
        "anonymous_id": st.sampled_from(["a1", "a2", "a3"]),
    },
)


def state(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(select(activity_table).order_by(*activity_table.primary_key)).all()
    return [tuple(r) for r in rows]


def rebuilt(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.begin() as conn:
        activity.rebuild(conn)
    return state(engine)


def _clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (events, identities, activity_table):
            conn.execute(delete(table))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=st.lists(st.lists(EVENT, min_size=1, max_size=5), min_size=1, max_size=8))
def test_state_written_with_events_equals_state_rebuilt_from_them(
    engine: Engine, batches: list[list[dict[str, Any]]]
) -> None:
    _clear(engine)
    for batch in batches:
        # A batch with no id, or one event id with two contents, is refused: nothing stored.
        with contextlib.suppress(BatchRejected):
            accept_events(engine, batch)
    online = state(engine)
    assert online == rebuilt(engine)


def test_a_resent_event_changes_nothing(engine: Engine) -> None:
    one = {"event_id": "r1", "ts": "2026-03-01T10:00:00Z", "customer_id": "C1",
           "channel": "web", "type": "view", "item_id": "I1"}  # fmt: skip
    first = accept_events(engine, [one])
    before = state(engine)
    again = accept_events(engine, [one, one])
    assert (first.stored, again.stored, again.duplicates) == (1, 0, 2)
    assert state(engine) == before


def test_a_late_event_moves_arrival_not_event_time(engine: Engine) -> None:
    accept_events(engine, [{"event_id": "n1", "ts": "2026-03-02T10:00:00Z", "customer_id": "C1",
                            "channel": "web", "type": "view", "item_id": "I1"}])  # fmt: skip
    with engine.connect() as conn:
        before = activity.last_seen(conn, ["C1"], [])
    accept_events(engine, [{"event_id": "till-7", "ts": "2026-03-01T15:00:00Z",
                            "customer_id": "C1", "channel": "store", "store_id": "S1",
                            "type": "purchase", "item_id": "I2"}])  # fmt: skip
    with engine.connect() as conn:
        after = activity.last_seen(conn, ["C1"], [])
    assert before is not None and after is not None
    assert after.events == 2
    assert after.last_ts == before.last_ts  # the till's purchase is older than the view...
    assert after.last_arrival > before.last_arrival  # ...but it arrived later


def test_first_events_of_a_new_customer_at_once_all_succeed(engine: Engine) -> None:
    failures: list[BaseException] = []

    def send(i: int) -> None:
        first = {"event_id": f"x{i}", "ts": "2026-03-01T10:00:00Z", "customer_id": "NEW",
                 "anonymous_id": f"dev{i % 2}", "channel": "app", "type": "view",
                 "item_id": "I1"}  # fmt: skip
        try:
            accept_events(engine, [first])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    with engine.connect() as conn:
        person = find_person(conn, customer_id="NEW")
        seen = activity.last_seen(conn, ["NEW"], [])
    assert person is not None and person.anonymous_ids == ("dev0", "dev1")
    assert seen is not None and seen.events == 8


def test_erasure_forgets_the_state(engine: Engine) -> None:
    accept_events(engine, [{"event_id": "z1", "ts": "2026-03-01T10:00:00Z", "customer_id": "C9",
                            "anonymous_id": "d9", "channel": "web", "type": "view",
                            "item_id": "I1"}])  # fmt: skip
    with engine.connect() as conn:
        person = find_person(conn, customer_id="C9")
    assert person is not None
    erase(engine, person)
    with engine.connect() as conn:
        assert activity.last_seen(conn, ["C9"], ["d9"]) is None


@pytest.mark.parametrize("bad", [{"channel": "fax"}, {"customer_id": None}])
def test_a_rejected_batch_changes_no_state(engine: Engine, bad: dict[str, Any]) -> None:
    good = {"event_id": "g1", "ts": "2026-03-01T10:00:00Z", "customer_id": "C1",
            "channel": "web", "type": "view", "item_id": "I1"}  # fmt: skip
    with pytest.raises(BatchRejected):
        accept_events(engine, [good, {**good, "event_id": "g2", **bad}])
    assert state(engine) == []
