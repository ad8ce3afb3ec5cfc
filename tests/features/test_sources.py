"""Source readers: the column mapping, stable ids, and the real fixtures beside the project."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from features.schema import EVENTS
from features.sources.files import SourceError, read_file, read_folder, table_for
from features.sources.mapping import ColumnMapping, MappingError
from features.validation import validate

OTTO_MAPPING = Path(__file__).resolve().parents[2] / "docs" / "mappings" / "otto.json"


def test_mapping_renames_recodes_and_makes_stable_ids(tmp_path: Path) -> None:
    raw = pd.DataFrame(
        {
            "cookie": ["a", "a", "b"],
            "when": [1_700_000_000, 1_700_000_000, 1_700_000_100],
            "sku": ["I1", "I1", "I2"],
            "what": ["pv", "pv", "buy"],
        }
    )
    path = tmp_path / "clicks.csv"
    raw.to_csv(path, index=False)
    mapping = ColumnMapping(
        rename={"cookie": "anonymous_id", "when": "ts", "sku": "item_id", "what": "type"},
        values={"type": {"pv": "view", "buy": "purchase"}},
        constants={"channel": "app"},
        ts_unit="s",
        event_id_from=["anonymous_id", "ts", "item_id", "type"],
    )
    first = read_file(path, table="events", mapping=mapping)
    again = read_file(path, table="events", mapping=mapping)
    frame = validate(first.frame, EVENTS).frame
    assert frame["type"].tolist() == ["view", "view", "purchase"]
    assert frame["ts"].iloc[2] == pd.Timestamp(1_700_000_100, unit="s", tz="UTC")
    # Two identical clicks stay two events, and re-reading gives the same ids.
    assert frame["event_id"].nunique() == 3
    assert first.frame["event_id"].tolist() == again.frame["event_id"].tolist()
    assert first.where.tolist() == ["clicks.csv line 2", "clicks.csv line 3", "clicks.csv line 4"]


def test_mapping_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"renam": {}}))
    with pytest.raises(MappingError, match="renam"):
        ColumnMapping.from_file(bad)
    path = tmp_path / "events.csv"
    pd.DataFrame({"x": [1]}).to_csv(path, index=False)
    with pytest.raises(MappingError, match="'nope'"):
        read_file(path, mapping=ColumnMapping(rename={"nope": "item_id"}))


def test_file_names_say_which_table(tmp_path: Path) -> None:
    assert table_for(Path("events-2026-01.parquet")) == "events"
    assert table_for(Path("catalogue.csv")) == "catalogue"
    with pytest.raises(SourceError, match="cannot tell which table"):
        table_for(Path("stuff.csv"))
    (tmp_path / "readme.txt").write_text("not data")
    pd.DataFrame({"store_id": ["S1"]}).to_csv(tmp_path / "stores.csv", index=False)
    pd.DataFrame({"item_id": ["I1"], "category": ["x"]}).to_json(
        tmp_path / "catalogue.jsonl", orient="records", lines=True
    )
    assert [s.table for s in read_folder(tmp_path)] == ["catalogue", "stores"]


@pytest.mark.data
def test_otto_fixture_through_the_column_mapping(shared_data: Path) -> None:
    path = shared_data / "otto-sample" / "otto_train_fixture_20_sessions.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not found")
    source = read_file(path, mapping=ColumnMapping.from_file(OTTO_MAPPING))
    frame = validate(source.frame, EVENTS).frame
    # Counts from the folder's README: 862 events = 800 clicks, 52 carts, 10 orders.
    assert len(frame) == 862
    assert frame["type"].value_counts().to_dict() == {
        "view": 800,
        "add_to_cart": 52,
        "purchase": 10,
    }
    assert frame["anonymous_id"].nunique() == 20
    assert frame["ts"].min() == pd.Timestamp("2022-07-31 22:00:00.025", tz="UTC")
    assert source.where.iloc[0] == "otto_train_fixture_20_sessions.jsonl line 1"
