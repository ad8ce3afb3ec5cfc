"""Real fixtures beside the project, ingested end to end into the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from features.sources.files import read_file
from features.sources.mapping import ColumnMapping
from service.storage.reader import load_events
from service.storage.stats import summarize
from training.ingest import ingest

OTTO_MAPPING = Path(__file__).resolve().parents[2] / "docs" / "mappings" / "otto.json"


@pytest.mark.data
def test_otto_sessions_ingest_once_through_the_mapping(engine: Engine, shared_data: Path) -> None:
    path = shared_data / "otto-sample" / "otto_train_fixture_20_sessions.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not found")
    mapping = ColumnMapping.from_file(OTTO_MAPPING)
    first = ingest(engine, [read_file(path, mapping=mapping)])
    assert (first.applied[0].stored, first.applied[0].duplicates) == (862, 0)
    again = ingest(engine, [read_file(path, mapping=mapping)])
    assert (again.applied[0].stored, again.applied[0].duplicates) == (0, 862)
    summary = summarize(engine)
    # The folder's README: 800 clicks, 52 carts, 10 orders over 20 sessions.
    assert summary.by_channel_type.loc["web"].to_dict() == {
        "add_to_cart": 52,
        "purchase": 10,
        "view": 800,
    }
    assert summary.anonymous_ids == 20
    assert summary.anonymous_stitched == 0  # sessions never log in
    events = load_events(engine)
    assert events["ts"].is_monotonic_increasing
    assert events["person_id"].isna().all()
