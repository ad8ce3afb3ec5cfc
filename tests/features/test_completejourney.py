"""The Complete Journey adapter on the real folder: counts match the folder's README."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.schema import TABLES
from features.sources.completejourney import read_completejourney
from features.sources.files import SourceError
from features.validation import validate


def test_a_folder_that_is_not_complete_journey_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"missing transactions\.parquet"):
        read_completejourney(tmp_path)


@pytest.mark.data
@pytest.mark.slow
def test_complete_journey_becomes_valid_store_purchases(shared_data: Path) -> None:
    folder = shared_data / "completejourney"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    sources = {s.table: s for s in read_completejourney(folder)}
    events = validate(sources["events"].frame, TABLES["events"]).frame
    # README: 1,469,307 lines, of which 8,869 have quantity <= 0 (left out, and said so).
    assert len(events) == 1_469_307 - 8_869
    assert "8,869" in sources["events"].notes[0]
    assert set(events["channel"]) == {"store"} and set(events["type"]) == {"purchase"}
    assert events["customer_id"].nunique() == 2_469
    assert events["store_id"].notna().all()
    assert len(validate(sources["stores"].frame, TABLES["stores"]).frame) == 457
    assert len(validate(sources["catalogue"].frame, TABLES["catalogue"]).frame) == 92_331
    assert len(validate(sources["offers"].frame, TABLES["offers"]).frame) == 27
    assert len(validate(sources["customers"].frame, TABLES["customers"]).frame) == 2_469
