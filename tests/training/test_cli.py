"""The `omni` command line as a user drives it: generate, ingest, stats."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from training.cli import app

runner = CliRunner()


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_generate_ingest_stats_agree_with_the_files(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "synthetic"
    db = f"sqlite:///{tmp_path / 'omni.db'}"
    made = runner.invoke(
        app, ["generate", "--customers", "60", "--seed", "5", "--out", str(out), "--format", fmt]
    )
    assert made.exit_code == 0, made.output
    read = {
        "csv": pd.read_csv,
        "jsonl": lambda p: pd.read_json(p, lines=True),
        "parquet": pd.read_parquet,
    }[fmt]
    files = {
        name: read(out / f"{name}.{fmt}") for name in ("events", "customers", "catalogue", "stores")
    }
    loaded = runner.invoke(app, ["ingest", str(out), "--database-url", db])
    assert loaded.exit_code == 0, loaded.output
    shown = runner.invoke(app, ["stats", "--database-url", db, "--json"])
    assert shown.exit_code == 0, shown.output
    stats = json.loads(shown.stdout)
    events = files["events"]
    assert stats["events"] == len(events)
    assert stats["customers"] == len(files["customers"])
    assert stats["items"] == len(files["catalogue"])
    assert stats["stores"] == len(files["stores"])
    assert stats["events_by_channel"] == events["channel"].value_counts().to_dict()
    assert stats["events_by_type"] == events["type"].value_counts().to_dict()
    assert stats["anonymous_ids"] == events["anonymous_id"].nunique()
    assert 0 < stats["anonymous_stitched"] <= stats["anonymous_ids"]
    # Loading the same folder again stores no new event.
    again = runner.invoke(app, ["ingest", str(out), "--database-url", db])
    assert again.exit_code == 0
    assert json.loads(runner.invoke(app, ["stats", "--database-url", db, "--json"]).stdout)[
        "events"
    ] == len(events)


def test_a_bad_file_is_refused_with_its_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "event_id,ts,customer_id,channel,type,item_id\n"
        "e1,2026-01-01T10:00:00Z,C1,web,view,I1\n"
        "e2,2026-01-01T10:00:00Z,C1,tv,view,I1\n"
    )
    db = f"sqlite:///{tmp_path / 'omni.db'}"
    result = runner.invoke(app, ["ingest", str(path), "--database-url", db])
    assert result.exit_code == 1
    assert "events.csv line 3 (event_id 'e2'): field 'channel': 'tv' is not one of" in result.output
    stats = json.loads(runner.invoke(app, ["stats", "--database-url", db, "--json"]).stdout)
    assert stats["events"] == 0


def test_a_json_file_with_half_a_surrogate_pair_is_refused_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    good = '{"event_id":"e1","ts":"2026-01-01T10:00:00Z","customer_id":"C1","channel":"web",'
    path.write_text(
        good
        + '"type":"view","item_id":"I1"}\n'
        + good.replace("e1", "e2")
        + '"type":"view","item_id":"I\\ud800"}\n'
    )
    db = f"sqlite:///{tmp_path / 'omni.db'}"
    result = runner.invoke(app, ["ingest", str(path), "--database-url", db])
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    assert "events.jsonl line 2 (event_id 'e2'): field 'item_id': holds a control" in output
    stats = json.loads(runner.invoke(app, ["stats", "--database-url", db, "--json"]).stdout)
    assert stats["events"] == 0


def test_column_mapping_from_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("id,time,user,where,what,sku\nx1,2026-01-01T10:00:00+02:00,C7,app,view,I3\n")
    db = f"sqlite:///{tmp_path / 'omni.db'}"
    args = ["ingest", str(path), "--table", "events", "--database-url", db]
    maps = [
        "--map",
        "id=event_id",
        "--map",
        "time=ts",
        "--map",
        "user=customer_id",
        "--map",
        "where=channel",
        "--map",
        "what=type",
        "--map",
        "sku=item_id",
    ]
    result = runner.invoke(app, args + maps)
    assert result.exit_code == 0, result.output
    unmapped = runner.invoke(app, args)
    assert unmapped.exit_code == 1
    assert "column 'sku': unknown column" in unmapped.output
    wrong = runner.invoke(app, [*args, "--map", "sku"])
    assert wrong.exit_code == 2 and "--map takes source=omni_column" in wrong.output


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql+psycopg://bob:secret@127.0.0.1:9/x", "bob:***@127.0.0.1:9/x"),
        ("oracle://somewhere", "'oracle' URLs are not supported"),
        ("not a url", "Could not parse"),
    ],
)
def test_a_store_that_cannot_be_opened_is_named_without_its_password(url: str, says: str) -> None:
    result = runner.invoke(app, ["stats", "--database-url", url])
    assert result.exit_code == 2
    assert says in result.output.replace("\n", " ")
    assert "secret" not in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["train", "churn"], ["train", "recommender"]])
def test_an_empty_lake_is_refused_with_how_to_write_one(tmp_path: Path, command: list[str]) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    url = f"sqlite:///{tmp_path / 'omni.db'}"
    result = runner.invoke(app, [*command, "--lake", str(lake), "--database-url", url])
    said = " ".join(result.output.split())  # the console wraps long lines
    assert result.exit_code == 1
    assert "holds no Parquet files" in said
    assert "omni export events --format parquet" in said
