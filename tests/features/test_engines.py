"""One definition, two engines: churn's features, labels, scores and the training input's
fingerprint come out the same from the embedded engine and from Spark, and the same as
from a frame of events (the path the online layer's features are held equal to)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from features import columns as c
from features.engines import EVENTS, BatchEngine
from features.interactions import (
    interactions,
    interactions_on,
    item_trend,
    item_trend_on,
    store_activity,
    store_activity_on,
)
from features.point_in_time import resolved_sql
from features.sources.files import read_folder
from features.synthetic import SyntheticConfig, write_synthetic
from models.churn import ChurnModel
from service.settings import Settings
from service.storage.engine import open_engine
from service.storage.identities import load_identities
from service.storage.lake import write_lake
from service.storage.reader import load_events, load_table
from training.batch import batch_engine, time_range
from training.churn_scores import score_everyone
from training.ingest import ingest
from training.provenance import fingerprint
from training.train_churn import cutoffs_for, dataset, engine_dataset

pytestmark = pytest.mark.spark
WINDOW = {"horizon_days": 90.0, "lookback_days": 365.0}


@dataclass(frozen=True)
class Lake:
    store: Engine
    folder: Path
    settings: Settings


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    """A synthetic store (identities stitched, late till uploads) and its lake."""
    root = tmp_path_factory.mktemp("engines")
    write_synthetic(SyntheticConfig(customers=500, seed=21), root / "data")
    store = open_engine(f"sqlite:///{root / 'omni.db'}")
    ingest(store, read_folder(root / "data"))
    write_lake(store, root / "lake")
    yield Lake(store, root / "lake", Settings(database_url=str(store.url)))
    store.dispose()


def on(lake: Lake, name: str, source: str) -> Any:
    """The engine `name` over the store or over the lake."""
    folder = lake.folder if source == "lake" else None
    return batch_engine(lake.store, lake.settings, name=name, lake=folder)  # type: ignore[arg-type]


def cutoffs(engine: BatchEngine) -> list[pd.Timestamp]:
    span = time_range(engine)
    assert span is not None
    return cutoffs_for(span, None, train_cutoffs=2, **WINDOW)


def test_churn_features_and_labels_are_the_same_on_every_engine(lake: Lake, spark: Any) -> None:
    customers = load_table(lake.store, "customers")
    results = {}
    for name, source in [("embedded", "store"), ("embedded", "lake"), ("spark", "lake")]:
        with on(lake, name, source) as engine:
            cuts = cutoffs(engine)
            results[name, source] = engine_dataset(engine, cuts, customers=customers, **WINDOW)
    X, y = results["embedded", "store"]
    assert len(X) > 600 and 0.1 < y.mean() < 0.9  # several cutoffs, both outcomes
    for other in [("embedded", "lake"), ("spark", "lake")]:
        X_other, y_other = results[other]
        # Bit for bit: a model fitted on either is the same model.
        pd.testing.assert_frame_equal(X_other, X, check_exact=True)
        pd.testing.assert_series_equal(y_other, y)
    # The frame path (persons stitched by pandas at each cutoff) agrees with the SQL one.
    X_frame, y_frame = dataset(load_events(lake.store), cuts, customers=customers, **WINDOW)
    pd.testing.assert_frame_equal(X_frame, X, check_exact=False, rtol=1e-12)
    pd.testing.assert_series_equal(y_frame, y)


def test_the_training_inputs_fingerprint_is_the_same_on_every_engine(
    lake: Lake, spark: Any
) -> None:
    expected = fingerprint(load_events(lake.store))
    assert int(expected["data.events"]) > 10_000
    for name, source in [("embedded", "store"), ("spark", "lake")]:
        with on(lake, name, source) as engine:
            assert fingerprint(engine) == expected, (name, source)


def test_churn_scores_are_the_same_on_every_engine(lake: Lake, spark: Any) -> None:
    customers = load_table(lake.store, "customers")
    with on(lake, "embedded", "store") as engine:
        cuts = cutoffs(engine)
        X, y = engine_dataset(engine, cuts[:-1], customers=customers, **WINDOW)
        X_val, y_val = engine_dataset(engine, cuts[-1:], customers=customers, **WINDOW)
    model = ChurnModel().fit(X, y, X_val, y_val, as_of=cuts[-1], **WINDOW)
    with lake.store.connect() as conn:
        identities = load_identities(conn)
    at = cuts[-1] + pd.Timedelta(days=10)
    scores = {}
    for name, source in [("embedded", "store"), ("spark", "lake")]:
        with on(lake, name, source) as engine:
            scores[name] = score_everyone(
                engine, model, identities, as_of=at, lookback_days=WINDOW["lookback_days"]
            )
    embedded, spark_scores = scores["embedded"], scores["spark"]
    assert len(embedded) > 250
    assert list(spark_scores.columns) == list(embedded.columns)
    assert spark_scores["customer_id"].tolist() == embedded["customer_id"].tolist()
    np.testing.assert_array_equal(
        spark_scores["churn_probability"].to_numpy(), embedded["churn_probability"].to_numpy()
    )
    assert spark_scores["band"].tolist() == embedded["band"].tolist()
    assert spark_scores["top_drivers"].tolist() == embedded["top_drivers"].tolist()
    assert set(embedded["band"]) > {"low"}  # not one answer for everyone
    # Everyone scored is a person known to the store.
    persons = set(identities[c.PERSON_ID]) | set(load_table(lake.store, "customers")[c.CUSTOMER_ID])
    assert set(embedded["customer_id"]) <= persons


def test_the_recommenders_inputs_are_the_same_on_every_engine(lake: Lake, spark: Any) -> None:
    """Interaction weights, store activity and item trends: Spark over the lake equals the
    embedded engine over the store's events (weights to float tolerance: the decay is a
    power, whose last digit may differ between the JVM and C)."""
    events = load_events(lake.store)
    as_of = events[c.TS].max().normalize() - pd.Timedelta(days=20)
    expected = {
        "interactions": interactions(events, as_of=as_of),
        "store_activity": store_activity(events, as_of=as_of),
        "item_trend": item_trend(events, as_of=as_of).to_frame().reset_index(),
    }
    assert len(expected["interactions"]) > 5_000 and len(expected["store_activity"]) > 1_000
    with lake.store.connect() as conn:
        identities = load_identities(conn)
    with on(lake, "spark", "lake") as engine:
        engine.register("persons_stored", identities[[c.ID_TYPE, c.ID_VALUE, c.PERSON_ID]])
        engine.view("events_resolved", resolved_sql(EVENTS, "persons_stored"))
        found = {
            "interactions": interactions_on(engine, "events_resolved", as_of=as_of),
            "store_activity": store_activity_on(engine, "events_resolved", as_of=as_of),
            "item_trend": item_trend_on(engine, "events_resolved", as_of=as_of)
            .to_frame()
            .reset_index(),
        }
    for name, frame in expected.items():
        got = found[name]
        assert list(got.columns) == list(frame.columns), name
        assert len(got) == len(frame), name
        for col in frame.columns:
            if frame[col].dtype.kind == "f":
                np.testing.assert_allclose(got[col], frame[col], rtol=1e-12, err_msg=col)
            else:
                same = got[col].astype(object).fillna("-") == frame[col].astype(object).fillna("-")
                assert same.all(), (name, col)
