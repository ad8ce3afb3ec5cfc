"""The online state written with events equals the state recomputed from the event log,
whatever the order, lateness and repetition of what arrives; on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select

from features.cart import open_cart
from features.validation import BatchRejected
from service.intake import accept_events
from service.people import erase, find_person, person_events
from service.storage import activity, carts
from service.storage import state as online_state
from service.storage.tables import activity as activity_table
from service.storage.tables import bought, cart_moves, events, id_channels, identities

STAMPS = [f"2026-03-{day:02d}T{hour:02d}:00:00Z" for day in (1, 2, 9) for hour in (8, 17)]
EVENT = st.fixed_dictionaries(
    {
        "event_id": st.sampled_from([f"e{i}" for i in range(12)]),
        "ts": st.sampled_from(STAMPS),
        "channel": st.sampled_from(["web", "app"]),
        "type": st.sampled_from(["view", "add_to_cart", "remove_from_cart", "purchase"]),
        "quantity": st.integers(1, 3),
        "item_id": st.sampled_from(["I1", "I2"]),
    },
    optional={
        "customer_id": st.sampled_from(["C1", "C2"]),
        "anonymous_id": st.sampled_from(["a1", "a2", "a3"]),
    },
)


def state(engine: Engine) -> list[tuple[Any, ...]]:
    """Every row of every table of the online state."""
    with engine.connect() as conn:
        return [
            (table.name, *row)
            for table in (activity_table, id_channels, bought, cart_moves)
            for row in conn.execute(select(table).order_by(*table.primary_key)).all()
        ]


def rebuilt(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.begin() as conn:
        online_state.rebuild(conn)
    return state(engine)


def _clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (events, identities, activity_table, id_channels, bought, cart_moves):
            conn.execute(delete(table))


@settings(
    max_examples=60,
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
    # The cart read from the state is the cart computed from the whole history.
    with engine.connect() as conn:
        for cid in ("C1", "C2"):
            person = find_person(conn, customer_id=cid)
            if person is None:
                continue
            history = person_events(conn, person)
            expected = open_cart(history, as_of=pd.Timestamp("2100-01-01T00:00Z"))
            lines = carts.open_lines(conn, person.customer_ids, person.anonymous_ids, until=2**62)
            got = [(x.item_id, x.quantity, x.added_at, x.channel) for x in lines]
            assert sorted(got) == sorted(
                (r.item_id, r.quantity, r.added_at.value // 1000, r.channel)
                for r in expected.itertuples()
            )


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


def test_a_store_purchase_closes_the_web_cart_of_the_same_person(engine: Engine) -> None:
    def ev(n: str, ts: str, **more: Any) -> dict[str, Any]:
        return {"event_id": n, "ts": f"2026-03-01T{ts}:00Z", "item_id": "I1", **more}

    accept_events(engine, [
        ev("w1", "09:00", anonymous_id="dev", channel="web", type="add_to_cart", quantity=2),
        ev("w2", "09:05", anonymous_id="dev", channel="web", type="add_to_cart", item_id="I2"),
        ev("id", "09:06", anonymous_id="dev", customer_id="C7", channel="web", type="identify",
           item_id=None),
    ])  # fmt: skip
    with engine.connect() as conn:
        lines = carts.open_lines(conn, ["C7"], ["dev"], until=2**62)
    assert [(x.item_id, x.quantity, x.channel) for x in lines] == [
        ("I2", 1, "web"),
        ("I1", 2, "web"),
    ]
    till = ev("s1", "15:00", customer_id="C7", channel="store", store_id="S1", type="purchase")
    accept_events(engine, [till])
    with engine.connect() as conn:
        lines = carts.open_lines(conn, ["C7"], ["dev"], until=2**62)
    assert [x.item_id for x in lines] == ["I2"]
