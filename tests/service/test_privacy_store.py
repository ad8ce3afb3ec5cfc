"""Erasure and retention in the store, on SQLite and PostgreSQL: an erased history never
comes back by any path, and a retention pass leaves the state agreeing with the log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from features import columns as c
from features.sources.frame import SourceFrame
from service.access import person_export
from service.erasure import erase
from service.intake import accept_events
from service.people import find_person
from service.retention import apply_retention
from service.storage import exposures
from service.storage import state as online_state
from service.storage.exposures import Exposure
from service.storage.tables import customers, events, identities
from tests.service.test_online_state import state
from training.ingest import ingest

ERASED_AT = datetime(2026, 3, 10, tzinfo=UTC)


def ev(n: str, ts: str, **more: Any) -> dict[str, Any]:
    return {"event_id": n, "ts": ts, "channel": "web", "type": "view", "item_id": "I1", **more}


def history() -> list[dict[str, Any]]:
    return [
        ev("h1", "2026-03-01T10:00:00Z", customer_id="C7", anonymous_id="d7"),
        ev("h2", "2026-03-02T10:00:00Z", anonymous_id="d7", type="add_to_cart"),
        ev("h3", "2026-03-03T10:00:00Z", customer_id="C7", type="purchase", price=4.0),
        ev("k1", "2026-03-03T10:00:00Z", customer_id="C8"),
    ]


def source(table: str, frame: pd.DataFrame) -> SourceFrame:
    lines = pd.Series([f"{table}.csv line {i + 2}" for i in range(len(frame))], index=frame.index)
    return SourceFrame(table, f"{table}.csv", frame, lines)


def count(engine: Engine, where: Any = None) -> int:
    query = select(func.count()).select_from(events)
    with engine.connect() as conn:
        return int(conn.execute(query if where is None else query.where(where)).scalar_one())


def erase_c7(engine: Engine) -> None:
    with engine.connect() as conn:
        person = find_person(conn, customer_id="C7")
    assert person is not None and person.anonymous_ids == ("d7",)
    assert erase(engine, person, ERASED_AT) == 3


def test_a_retried_batch_cannot_bring_an_erased_history_back(engine: Engine) -> None:
    accept_events(engine, history())
    erase_c7(engine)
    # The client's retry queue sends the same events again, and one of the device's.
    again = accept_events(engine, [*history(), ev("h4", "2026-03-09T10:00:00Z", anonymous_id="d7")])
    assert (again.stored, again.duplicates, again.erased) == (0, 1, 4)
    assert count(engine, events.c[c.CUSTOMER_ID] == "C7") == 0
    with engine.connect() as conn:
        assert find_person(conn, customer_id="C7") is None
    assert [row for row in state(engine) if row[2] in ("C7", "d7")] == []
    # After the erasure the id starts over: a new person with no past.
    later = accept_events(engine, [ev("n1", "2026-03-11T10:00:00Z", customer_id="C7")])
    assert (later.stored, later.erased) == (1, 0)
    with engine.connect() as conn:
        person = find_person(conn, customer_id="C7")
        assert person is not None
        document = person_export(conn, person, ERASED_AT)
    assert [e[c.EVENT_ID] for e in document["events"]] == ["n1"]
    assert document["person"]["anonymous_ids"] == []


def test_a_reingested_file_cannot_bring_an_erased_person_back(engine: Engine) -> None:
    accept_events(engine, history())
    erase_c7(engine)
    frame = pd.DataFrame(history())
    people = pd.DataFrame(
        [
            {"customer_id": "C7", "email": "c7@example.com", "created_at": "2025-01-01T00:00:00Z"},
            {"customer_id": "C8", "email": "c8@example.com", "created_at": "2025-01-01T00:00:00Z"},
        ]
    )
    report = ingest(engine, [source("events", frame), source("customers", people)])
    done = {a.table: a for a in report.applied}
    assert (done["events"].stored, done["events"].erased, done["events"].duplicates) == (0, 3, 1)
    assert (done["customers"].stored, done["customers"].erased) == (1, 1)
    with engine.connect() as conn:
        kept = conn.execute(select(customers.c[c.CUSTOMER_ID])).scalars().all()
        ids = conn.execute(select(identities.c[c.ID_VALUE])).scalars().all()
    assert kept == ["C8"] and set(ids) == {"C8"}


def test_retention_deletes_old_events_and_keeps_the_state_true(engine: Engine) -> None:
    accept_events(
        engine,
        [
            *history(),
            ev("r1", "2026-03-20T10:00:00Z", customer_id="C7", type="purchase", price=2.0),
            ev("r2", "2026-03-21T10:00:00Z", anonymous_id="d9", type="add_to_cart"),
            ev("r3", "2026-02-01T10:00:00Z", anonymous_id="d5"),
        ],
    )
    with engine.begin() as conn:  # an e-mail sent before the limit and a list after it
        exposures.record(conn, [Exposure("old", "C7", "C7", "offer", "email", {})],
                         datetime(2026, 3, 1, tzinfo=UTC))  # fmt: skip
        exposures.record(conn, [Exposure("new", "C7", "C7", "recommendations", "web", {})],
                         datetime(2026, 3, 20, tzinfo=UTC))  # fmt: skip
    removed = apply_retention(engine, 20, datetime(2026, 3, 25, tzinfo=UTC))
    assert removed.before == datetime(2026, 3, 5, tzinfo=UTC)
    with engine.connect() as conn:
        assert exposures.read(conn)["served_id"].tolist() == ["new"] and removed.exposures == 1
    assert (removed.events, count(engine)) == (5, 2)
    assert removed.anonymous_ids == 1  # d7's link to C7: no event carries d7 any more
    with engine.connect() as conn:
        ids = set(conn.execute(select(identities.c[c.ID_VALUE])).scalars().all())
        person = find_person(conn, customer_id="C7")
    assert ids == {"C7", "C8"} and person is not None and person.anonymous_ids == ()
    after = state(engine)
    with engine.begin() as conn:
        online_state.rebuild(conn)
    assert state(engine) == after  # what the pass left is what the log says
    assert {row[2] for row in after} == {"C7", "d9"}
