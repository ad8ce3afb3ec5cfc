"""Honest churn: out-of-time cutoffs, a refit on the latest complete horizon, the window
saved with the model and used to score, and a baseline that fails reported, not raised."""

from __future__ import annotations

import pandas as pd
import pytest
from lifetimes.utils import ConvergenceError

from features import columns as c
from features.churn import OneHistory
from features.sources.files import read_folder
from features.synthetic import SyntheticConfig, write_synthetic
from service.churn_scoring import churn_answer
from service.registry import CHURN, load_churn
from service.serving import Served
from service.settings import Settings
from service.storage.engine import open_engine
from service.storage.reader import load_events
from training.ingest import ingest
from training.tracking import setup
from training.train_churn import ChurnReport, cutoffs_for, train_churn


def events_over(days: int) -> pd.DataFrame:
    end = pd.Timestamp("2026-10-01", tz="UTC")
    ts = pd.date_range(end - pd.Timedelta(days=days), end, freq="D")
    return pd.DataFrame({c.TS: ts})


def test_every_training_and_validation_horizon_ends_by_the_test_cutoff() -> None:
    events = events_over(400)
    cuts = cutoffs_for(events, None, horizon_days=90, lookback_days=365, train_cutoffs=3)
    test = cuts[-1]
    assert test + pd.Timedelta(days=90) <= events[c.TS].max() + pd.Timedelta(days=1)
    for cut in cuts[:-1]:
        assert cut + pd.Timedelta(days=90) <= test
    assert cuts == sorted(cuts) and len(set(cuts)) == len(cuts) == 5


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("churn")
    settings = Settings(
        database_url=f"sqlite:///{root / 'omni.db'}",
        mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        mlflow_artifact_root=root / "artifacts",
    )
    write_synthetic(SyntheticConfig(customers=600, seed=4), root / "data")
    engine = open_engine(settings.database_url)
    ingest(engine, read_folder(root / "data"))
    engine.dispose()
    return settings


def trained(settings: Settings, **window: float) -> ChurnReport:
    engine = open_engine(settings.database_url)
    try:
        return train_churn(engine, settings, **window)  # type: ignore[arg-type]
    finally:
        engine.dispose()


@pytest.mark.slow
def test_the_registered_model_is_refit_on_the_latest_horizon_and_keeps_its_window(
    store: Settings,
) -> None:
    report = trained(store, horizon_days=60, lookback_days=200)
    test = report.cutoffs[-1]
    # Evaluated out of time; then refit with validation at the test cutoff.
    assert report.refit_cutoffs[-1] == test
    assert all(cut + pd.Timedelta(days=60) <= test for cut in report.cutoffs[:-1])
    client = setup(store, CHURN)
    client.set_registered_model_alias(CHURN, "check", report.version)
    model, _ = load_churn(client, "check")
    assert (model.horizon_days_, model.lookback_days_) == (60, 200)
    assert model.as_of_ == test
    run = client.get_run(client.get_model_version(CHURN, report.version).run_id)
    assert run.data.params["refit_cutoffs"].endswith(f"{test:%Y-%m-%d}")
    # The population it scores is the one it was trained on: a purchase in 200 days.
    engine = open_engine(store.database_url)
    events = load_events(engine)
    engine.dispose()
    now = events[c.TS].max() + pd.Timedelta(days=1)
    buys = events[events[c.TYPE] == c.EventType.PURCHASE]
    last = buys.groupby(c.PERSON_ID)[c.TS].max()
    gone = last[last < now - pd.Timedelta(days=200)].index.astype(str).tolist()
    near = last[last > now - pd.Timedelta(days=30)].index.astype(str).tolist()
    assert gone and near
    served = Served(churn=model, churn_version=report.version)
    answers = {
        person: churn_answer(
            served, OneHistory.of_frame(events[events[c.PERSON_ID] == person]), now.to_pydatetime()
        )
        for person in gone[:20] + near[:20]
    }
    for person in gone[:20]:
        assert answers[person].band == "lapsed", person
        assert answers[person].drivers == ["no purchase in the last 200 days"]
    assert all(answers[p].band in {"low", "medium", "high"} for p in near[:20])
    assert {a.horizon_days for a in answers.values()} == {60}


@pytest.mark.slow
def test_bgnbd_that_does_not_converge_is_reported_failed_and_the_model_still_trains(
    store: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lifetimes import BetaGeoFitter

    penalizers: list[float] = []

    def never(self: BetaGeoFitter, *args: object, **kwargs: object) -> BetaGeoFitter:
        penalizers.append(self.penalizer_coef)
        raise ConvergenceError("The model did not converge.")

    monkeypatch.setattr(BetaGeoFitter, "fit", never)
    report = trained(store)
    assert penalizers == sorted(penalizers) and len(penalizers) > 1  # retried, larger each time
    assert report.table.loc["bg/nbd", "fitted"] == 0
    assert pd.isna(report.table.loc["bg/nbd", "auc"])
    assert report.table.loc["omni", "fitted"] == 1 and report.table.loc["omni", "auc"] > 0.5
    assert report.version
