"""`omni export events`: the event log as Parquet folders by day, read back whole."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from service.storage.lake import read_lake, write_lake
from service.storage.reader import load_events
from tests.service.test_store import ev, source
from training.ingest import ingest


def test_the_lake_holds_every_event_once_in_its_days_folder(engine: Engine, tmp_path: Path) -> None:
    rows = [
        ev("a", "2026-03-01T23:30:00-02:00", channel="store", store_id="S1", type="purchase",
           quantity=2, price=9.5),  # 1 March in its zone, 2 March in UTC
        ev("b", "2026-03-01T08:00:00Z", anonymous_id="cookie-1"),
        ev("c", "2026-03-03T12:00:00Z", item_id="I2"),
    ]  # fmt: skip
    ingest(engine, [source("events", rows)])
    lake = tmp_path / "lake"

    written = write_lake(engine, lake, chunk_rows=2)

    assert (written.rows, written.days) == (3, 3)
    assert sorted(p.name for p in lake.iterdir()) == [
        "day=2026-03-01", "day=2026-03-02", "day=2026-03-03"
    ]  # fmt: skip
    table = read_lake(lake).to_table().to_pandas().set_index("event_id").sort_index()
    stored = load_events(engine).set_index("event_id").sort_index()
    assert table.index.tolist() == ["a", "b", "c"]
    assert table["day"].tolist() == ["2026-03-02", "2026-03-01", "2026-03-03"]
    pd.testing.assert_series_equal(table["ts"], stored["ts"], check_dtype=False)
    assert table.loc["a", ["store_id", "quantity", "price"]].tolist() == ["S1", 2, 9.5]
    assert table.loc["b", "anonymous_id"] == "cookie-1"
    assert (table["ingested_at"] >= stored["ts"].min()).all()


def test_writing_days_again_replaces_them(engine: Engine, tmp_path: Path) -> None:
    ingest(engine, [source("events", [ev("a", "2026-03-01T08:00:00Z")])])
    lake = tmp_path / "lake"
    write_lake(engine, lake)
    ingest(engine, [source("events", [ev("late", "2026-03-01T09:00:00Z")])])  # arrives later
    day = datetime(2026, 3, 1, tzinfo=UTC)
    write_lake(engine, lake, since=day, until=datetime(2026, 3, 2, tzinfo=UTC))
    ids = read_lake(lake).to_table(columns=["event_id"]).column(0).to_pylist()
    assert sorted(ids) == ["a", "late"]  # the day's files replaced, nothing twice
