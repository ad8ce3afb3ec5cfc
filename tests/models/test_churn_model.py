"""The churn model: calibrated, banded, explained in words, saved safely, and right in direction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.churn import churn_features, churn_labels
from features.synthetic import SyntheticConfig, SyntheticData, generate
from models.churn import HIGH_SHARE, ChurnModel
from models.churn_baselines import BGNBDBaseline, RecencyBaseline
from models.churn_words import describe
from training.churn_metrics import churn_metrics


@pytest.fixture(scope="module")
def world() -> SyntheticData:
    return generate(SyntheticConfig(customers=2000, seed=4))


def cut(world: SyntheticData, day: str) -> tuple[pd.DataFrame, pd.Series]:
    events = world.tables["events"]
    events = events.assign(person_id=events["customer_id"])
    as_of = pd.Timestamp(day, tz="UTC")
    X = churn_features(events, as_of=as_of)
    return X, churn_labels(events, as_of=as_of).reindex(X.index)


@pytest.fixture(scope="module")
def fitted(world: SyntheticData) -> tuple[ChurnModel, pd.DataFrame, pd.Series]:
    train = [cut(world, day) for day in ("2026-02-01", "2026-03-01", "2026-04-01")]
    X = pd.concat([x for x, _ in train])
    y = pd.concat([y for _, y in train])
    X_val, y_val = cut(world, "2026-05-01")
    model = ChurnModel(n_estimators=150).fit(X, y, X_val, y_val)
    return model, X_val, y_val


@pytest.mark.slow
def test_true_churners_score_higher_than_loyal_customers(
    fitted: tuple[ChurnModel, pd.DataFrame, pd.Series], world: SyntheticData
) -> None:
    model, _, _ = fitted
    X_test, _ = cut(world, "2026-06-01")
    truth = world.truth["customers"].set_index("customer_id")
    churners = truth["churned"] & (truth["churn_date"] < pd.Timestamp("2026-09-01", tz="UTC"))
    p = pd.Series(model.predict_proba(X_test), index=X_test.index)
    leaving = churners.reindex(p.index).fillna(False).astype(bool)
    assert p[leaving].mean() > p[~leaving].mean() + 0.15


def test_calibrated_on_validation_and_bands_follow_its_distribution(
    fitted: tuple[ChurnModel, pd.DataFrame, pd.Series],
) -> None:
    model, X_val, y_val = fitted
    p = model.predict_proba(X_val)
    assert ((p > 0) & (p < 1)).all()
    assert abs(p.mean() - y_val.mean()) < 0.02
    bands = model.bands(p)
    assert set(bands) == {"low", "medium", "high"}
    assert (bands == "high").mean() == pytest.approx(HIGH_SHARE, abs=0.03)
    # Higher bands hold more churners.
    rate = pd.Series(y_val.to_numpy()).groupby(bands).mean()
    assert rate["low"] < rate["medium"] < rate["high"]


def test_save_and_load_give_identical_scores(
    fitted: tuple[ChurnModel, pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    model, X_val, _ = fitted
    model.save(tmp_path / "churn")
    assert sorted(p.name for p in (tmp_path / "churn").iterdir()) == [
        "booster.txt",
        "churn.json",
        "isotonic.npz",
    ]
    again = ChurnModel.load(tmp_path / "churn")
    np.testing.assert_allclose(again.predict_proba(X_val), model.predict_proba(X_val))
    assert again.drivers(X_val.head(3)) == model.drivers(X_val.head(3))


def test_drivers_speak_plainly(fitted: tuple[ChurnModel, pd.DataFrame, pd.Series]) -> None:
    model, X_val, _ = fitted
    reasons = model.drivers(X_val, top=3)
    assert all(len(r) <= 3 for r in reasons)
    assert sum(bool(r) for r in reasons) > 0.9 * len(reasons)
    row = pd.Series({"recency_days": 74.2, "mean_gap_days": 12.0})
    assert describe("recency_days", row) == "no purchase for 74 days, usually every 12 days"
    assert describe("purchase_days", pd.Series({"purchase_days": 1.0})) == (
        "only 1 purchase day in a year"
    )
    assert describe("not_a_feature", row) == ""


def test_a_low_band_is_told_what_keeps_the_customer_close(
    fitted: tuple[ChurnModel, pd.DataFrame, pd.Series],
) -> None:
    """A low risk comes with the reasons that hold it down, a high one with those pushing
    it up: the same customer's words change with the side they are asked for."""
    model, X_val, _ = fitted
    bands = model.bands(model.predict_proba(X_val))
    low = X_val[bands == "low"].head(50)
    high = X_val[bands == "high"].head(50)
    held = model.drivers(low, top=3, bands=np.full(len(low), "low"))
    pushed = model.drivers(high, top=3, bands=np.full(len(high), "high"))
    assert sum(bool(r) for r in held) > 0.8 * len(held)
    said = {reason for reasons in held for reason in reasons}
    worried = {reason for reasons in pushed for reason in reasons}
    alarms = ("no purchase for", "no visit", "only ", "no web", "no app", "no store")
    comforts = ("last purchase", "active in a channel", "bought ")
    assert not any(r.startswith(alarms) for r in said), said  # never a reason to worry
    assert any(r.startswith(comforts) for r in said), said
    assert any(r.startswith(alarms) for r in worried), worried
    assert not any(r.startswith(comforts) for r in worried), worried
    # Without bands every row is told what pushes it away (the former answer).
    assert model.drivers(low.head(5)) == model.drivers(low.head(5), bands=np.full(5, "high"))
    row = pd.Series({"recency_days": 5.0, "mean_gap_days": 21.6})
    assert describe("recency_days", row, holding=True) == (
        "last purchase 5 days ago, usually every 22 days"
    )
    assert describe("spend", pd.Series({"spend": 812.0}), holding=True) == "spent 812 in a year"


def test_one_row_by_name_scores_as_its_frame_does(
    fitted: tuple[ChurnModel, pd.DataFrame, pd.Series],
) -> None:
    """A customer's answer now (`score_one`, features by name, no frame) is the one the
    frame of their row gets: probability, band and drivers, in every band."""
    model, X_val, _ = fitted
    p = model.predict_proba(X_val)
    bands = model.bands(p)
    rows = np.concatenate(
        [np.flatnonzero(bands == band)[:20] for band in ("low", "medium", "high")]
    )
    drivers = model.drivers(X_val.iloc[rows], top=3, bands=bands[rows])
    for i, at in enumerate(rows):
        features = X_val.iloc[at].to_dict()
        assert model.score_one(features, top=3) == (float(p[at]), str(bands[at]), drivers[i])
    with pytest.raises(ValueError, match="features missing"):
        model.score_one({k: v for k, v in X_val.iloc[0].items() if k != "recency_days"})


def test_one_class_labels_are_refused(fitted: tuple[ChurnModel, pd.DataFrame, pd.Series]) -> None:
    _, X_val, y_val = fitted
    with pytest.raises(ValueError, match="both churners and stayers"):
        ChurnModel().fit(X_val, y_val & False, X_val, y_val)


def test_baselines_rank_churners_and_the_model_beats_them(
    fitted: tuple[ChurnModel, pd.DataFrame, pd.Series], world: SyntheticData
) -> None:
    model, X_val, y_val = fitted
    X_test, y_test = cut(world, "2026-06-01")
    recency = RecencyBaseline().fit(X_val, y_val)
    bgnbd = BGNBDBaseline(horizon_days=90).fit(X_test)
    scores = {
        "recency": recency.predict_proba(X_test),
        "bgnbd": bgnbd.predict_proba(X_test),
        "omni": model.predict_proba(X_test),
    }
    for p in scores.values():
        assert ((p >= 0) & (p <= 1)).all()
    # Longer since the last purchase, higher risk.
    order = np.argsort(X_test["recency_days"].to_numpy())
    assert np.all(np.diff(scores["recency"][order]) >= -1e-12)
    auc = {name: churn_metrics(y_test.to_numpy(), p)["auc"] for name, p in scores.items()}
    assert auc["recency"] > 0.6 and auc["bgnbd"] > 0.6
    assert auc["omni"] > max(auc["recency"], auc["bgnbd"])
