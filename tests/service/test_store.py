"""The event store, on SQLite and on PostgreSQL: idempotent, all-or-nothing, order-free."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select, text

from features.progress import reporting
from features.sources.frame import SourceFrame, label_rows
from service.intake import accept_events
from service.storage import columnar
from service.storage.engine import open_engine, temporary_schema
from service.storage.reader import iter_events, load_events
from service.storage.stats import summarize
from service.storage.tables import activity, catalogue, events
from service.storage.writer import insert_events
from tests.conftest import POSTGRES_ENV, _postgres_url
from training.ingest import IngestRejected, ingest


def source(table: str, rows: list[dict[str, object]], origin: str = "batch.csv") -> SourceFrame:
    frame = pd.DataFrame(rows)
    return SourceFrame(table, origin, frame, label_rows(origin, "line", 2, len(frame)))


def ev(event_id: str, ts: str, **more: object) -> dict[str, object]:
    row: dict[str, object] = {
        "event_id": event_id,
        "ts": ts,
        "customer_id": "C1",
        "channel": "web",
        "type": "view",
        "item_id": "I1",
    }
    row.update(more)
    return row


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def test_resending_the_same_events_adds_nothing(engine: Engine) -> None:
    batch = [ev("e1", "2026-01-01T10:00:00Z"), ev("e2", "2026-01-01T11:00:00Z")]
    first = ingest(engine, [source("events", batch)])
    assert (first.applied[0].stored, first.applied[0].duplicates) == (2, 0)
    again = ingest(engine, [source("events", [*batch, ev("e3", "2026-01-02T10:00:00Z")])])
    assert (again.applied[0].received, again.applied[0].stored, again.applied[0].duplicates) == (
        3,
        1,
        2,
    )
    assert count(engine) == 3


def test_a_bad_record_rejects_every_file_and_leaves_the_store_as_it_was(engine: Engine) -> None:
    ingest(engine, [source("events", [ev("e1", "2026-01-01T10:00:00Z")])])
    before = load_events(engine)
    items = source("catalogue", [{"item_id": "I9", "category": "Shoes"}], "catalogue.csv")
    rows = [ev(f"n{i}", "2026-02-01T10:00:00Z") for i in range(50)]
    rows[37] = ev("n37", "2026-02-01T10:00:00", channel="store")  # no offset, no store
    with pytest.raises(IngestRejected) as caught:
        ingest(engine, [items, source("events", rows, "events.csv")])
    text = str(caught.value)
    assert "nothing was written" in text
    assert "events.csv line 39 (event_id 'n37'): field 'store_id'" in text
    assert "events.csv line 39 (event_id 'n37'): field 'ts'" in text
    pd.testing.assert_frame_equal(load_events(engine), before)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(catalogue)).scalar_one() == 0


def test_late_and_out_of_order_events_are_read_back_in_time_order(engine: Engine) -> None:
    ingest(
        engine,
        [
            source(
                "events",
                [ev("late", "2026-01-03T09:00:00+01:00"), ev("early", "2026-01-01T00:00:00Z")],
            )
        ],
    )
    ingest(engine, [source("events", [ev("middle", "2026-01-02T00:00:00Z")])])
    frame = load_events(engine)
    assert frame["event_id"].tolist() == ["early", "middle", "late"]
    assert frame["ts"].iloc[2] == pd.Timestamp("2026-01-03T08:00:00Z")


def test_reading_is_chunked_and_respects_the_cutoff(engine: Engine) -> None:
    rows = [ev(f"e{i:02d}", f"2026-01-{i + 1:02d}T12:00:00Z") for i in range(25)]
    ingest(engine, [source("events", rows)])
    chunks = list(iter_events(engine, until=datetime(2026, 1, 21, tzinfo=UTC), chunk_rows=7))
    assert [len(ch) for ch in chunks] == [7, 7, 6]
    assert pd.concat(chunks)["ts"].max() < pd.Timestamp("2026-01-21T00:00:00Z")
    with pytest.raises(ValueError, match="no UTC offset"):
        load_events(engine, until=datetime(2026, 1, 21))


def test_the_log_is_read_in_bulk_with_each_repeated_id_held_once(engine: Engine) -> None:
    rows = [
        ev(f"e{i:03d}", f"2026-01-{1 + i % 28:02d}T12:00:00Z", customer_id=f"C{i % 3}",
           item_id=f"I{i % 5}", type="purchase" if i % 2 else "view")
        for i in range(120)
    ]  # fmt: skip
    ingest(engine, [source("events", rows)])
    frame = load_events(engine, chunk_rows=25)  # several chunks, one dictionary per column
    for col in ("customer_id", "item_id", "type", "channel", "person_id"):
        assert isinstance(frame[col].dtype, pd.CategoricalDtype), col
    assert sorted(frame["item_id"].cat.categories) == [f"I{i}" for i in range(5)]
    assert sorted(frame["person_id"].cat.categories) == ["C0", "C1", "C2"]
    expected = {f"e{i:03d}": f"C{i % 3}" for i in range(120)}
    assert frame.set_index("event_id")["person_id"].astype(str).to_dict() == expected
    assert frame["quantity"].isna().all() and frame["store_id"].isna().all()


class Recorder:
    """A progress listener that keeps what it is told: [description, total, done] a step."""

    def __init__(self) -> None:
        self.steps: list[list[object]] = []

    def start(self, description: str, total: int) -> None:
        self.steps.append([description, total, 0])

    def advance(self, done: int) -> None:
        self.steps[-1][2] = int(str(self.steps[-1][2])) + done


def test_a_bulk_read_reports_rows_read_of_rows_selected(engine: Engine) -> None:
    rows = [ev(f"e{i:02d}", f"2026-01-{i + 1:02d}T12:00:00Z") for i in range(25)]
    ingest(engine, [source("events", rows)])
    heard = Recorder()
    with reporting(heard):
        load_events(engine, until=datetime(2026, 1, 21, tzinfo=UTC), chunk_rows=7)
    load_events(engine)  # nobody listens: nothing is told
    assert heard.steps == [["reading events", 20, 20]]


def test_reading_the_log_in_bulk_leaves_the_open_store_working(engine: Engine) -> None:
    """The bulk reader's own database library never touches this process's connections:
    a store held open (as the service holds it) keeps reading and writing after a read."""
    ingest(engine, [source("events", [ev("e1", "2026-01-01T10:00:00Z")])])
    with engine.connect() as held:
        held.execute(select(func.count()).select_from(events)).scalar_one()
        assert len(load_events(engine)) == 1
        assert held.execute(select(func.count()).select_from(events)).scalar_one() == 1
    ingest(engine, [source("events", [ev("e2", "2026-01-02T10:00:00Z")])])
    assert count(engine) == 2
    assert load_events(engine)["event_id"].tolist() == ["e1", "e2"]


def test_reference_data_is_replaced_by_key(engine: Engine) -> None:
    ingest(engine, [source("catalogue", [{"item_id": "I1", "category": "Shoes", "price": "10"}])])
    ingest(engine, [source("catalogue", [{"item_id": "I1", "category": "Boots", "price": "12.5"}])])
    with engine.connect() as conn:
        rows = conn.execute(select(catalogue.c.category, catalogue.c.price)).all()
    assert [tuple(r) for r in rows] == [("Boots", 12.5)]


def test_identities_are_stitched_on_ingest_and_resolve_events(engine: Engine) -> None:
    customers = source(
        "customers",
        [
            {"customer_id": "C1", "email": "ana@example.com"},
            {"customer_id": "L1", "email": "Ana@Example.com"},
        ],
    )
    rows = [
        ev("a1", "2026-01-01T10:00:00Z", customer_id=None, anonymous_id="cookie"),
        ev(
            "a2",
            "2026-01-01T10:05:00Z",
            customer_id="C1",
            anonymous_id="cookie",
            type="identify",
            item_id=None,
        ),
        ev(
            "a3",
            "2026-01-02T10:00:00Z",
            customer_id="L1",
            channel="store",
            store_id="S1",
            type="purchase",
        ),
        ev("a4", "2026-01-02T11:00:00Z", customer_id=None, anonymous_id="stranger"),
    ]
    report = ingest(engine, [customers, source("events", rows)])
    assert report.anonymous_stitched == 1
    people = load_events(engine).set_index("event_id")["person_id"]
    assert people[["a1", "a2", "a3"]].tolist() == ["C1", "C1", "C1"]
    assert pd.isna(people["a4"])
    summary = summarize(engine)
    assert (summary.customers, summary.persons, summary.customers_merged) == (2, 1, 1)
    assert (summary.anonymous_ids, summary.anonymous_stitched) == (2, 1)
    assert summary.by_channel_type.loc["web", "view"] == 2


def test_the_bulk_reader_never_puts_the_store_url_on_a_command_line(tmp_path: Path) -> None:
    """Another user of the machine reads command lines (`ps`): a PostgreSQL URL there
    would show its password. The child reading the store is told on its standard input."""
    db = tmp_path / "secret-name.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (a INTEGER)")
        conn.execute("INSERT INTO t VALUES (7)")
    read = columnar.stream(f"sqlite://{db}", "SELECT a FROM t", 10)
    assert "secret-name" not in " ".join(str(arg) for arg in read._proc.args)
    assert [batch.column(0).to_pylist() for batch in read] == [[7]]


def test_the_intake_stores_only_new_events_and_says_which(engine: Engine) -> None:
    # The service's intake (one transaction; on PostgreSQL the rows go by psycopg's
    # pipelined executemany): a batch half re-sent stores and counts the new half.
    first = accept_events(engine, [ev(f"n{i}", "2026-01-01T10:00:00Z") for i in range(5)])
    again = accept_events(engine, [ev(f"n{i}", "2026-01-01T10:00:00Z") for i in range(3, 8)])
    assert (first.stored, first.duplicates) == (5, 0)
    assert (again.received, again.stored, again.duplicates) == (5, 3, 2)
    assert count(engine) == 8
    with engine.connect() as conn:
        assert conn.execute(select(activity.c.events)).scalar_one() == 8


def test_an_intake_that_fails_after_the_events_are_written_leaves_nothing(
    engine: Engine,
) -> None:
    class Broken(Exception):
        pass

    with pytest.raises(Broken), engine.begin() as conn:
        assert insert_events(conn, [_as_stored(ev("lost", "2026-01-01T10:00:00Z"))]) == {"lost"}
        raise Broken
    assert count(engine) == 0
    assert accept_events(engine, [ev("lost", "2026-01-01T10:00:00Z")]).stored == 1


def _as_stored(row: dict[str, object]) -> dict[str, object]:
    stamp = int(pd.Timestamp(str(row["ts"])).value // 1000)
    return {**{col.name: None for col in events.columns}, **row, "ts": stamp, "ingested_at": 1}


@pytest.mark.postgres
def test_postgresql_plans_with_the_row_counts_of_an_ingest() -> None:
    """A store loaded in bulk is planned as it is, not as the empty tables it was
    (a server with autovacuum off or behind never learns them otherwise)."""
    base = _postgres_url()
    if not base:
        pytest.skip(f"PostgreSQL not available: {POSTGRES_ENV} is not set")
    rows = [ev(f"e{i}", f"2026-01-0{1 + i % 9}T10:00:00Z", customer_id=f"C{i % 40}",
               type="add_to_cart" if i % 2 else "view") for i in range(400)]  # fmt: skip
    catalogue_rows = [{"item_id": f"I{i}", "category": "Shoes", "price": "10"} for i in range(30)]
    with temporary_schema(base, prefix="omni_test") as url:
        engine = open_engine(url)
        try:
            ingest(engine, [source("catalogue", catalogue_rows), source("events", rows)])
            with engine.connect() as conn:
                known = dict(
                    conn.execute(
                        text(
                            "SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' "
                            "AND relnamespace = current_schema()::regnamespace"
                        )
                    ).all()
                )
                counted = {
                    name: conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
                    for name in ("events", "catalogue", "identities", "activity", "cart_moves")
                }
        finally:
            engine.dispose()
    assert {name: known[name] for name in counted} == counted
