"""Hyper-parameter search stays inside its window and returns usable parameters."""

from __future__ import annotations

import pandas as pd
import pytest

from features import columns as c
from features.synthetic import SyntheticData
from models import ALS, TwoStage
from training.evaluate import TemporalSplit
from training.tuning import tune


@pytest.mark.slow
def test_tuning_never_reads_the_test_window(small_world: SyntheticData) -> None:
    events = small_world.tables["events"]
    events = events.assign(**{c.PERSON_ID: events[c.CUSTOMER_ID]})
    split = TemporalSplit.last_days(events, 28)
    without_test = events[events[c.TS] < split.cutoff]
    found = tune(events, split, budget_s=120, trials=3)
    again = tune(without_test, split, budget_s=120, trials=3)
    assert found == again
    assert set(found) == {"als", "two-stage"}
    # The parameters build working models.
    ALS(**found["als"])
    TwoStage(**found["two-stage"])
    assert pd.Timestamp(split.cutoff) > without_test[c.TS].max()
