"""Churn labels and features: a retailer's definition, and nothing read past the cutoff."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.churn import OneHistory, churn_features, churn_labels, churn_row, population
from features.synthetic import SyntheticData

AS_OF = pd.Timestamp("2026-06-01", tz="UTC")


def ev(
    person: str, days_before: float, kind: str = "purchase", channel: str = "store"
) -> dict[str, object]:
    return {
        "person_id": person, "ts": AS_OF - pd.Timedelta(days=days_before), "type": kind,
        "channel": channel, "item_id": "i", "quantity": 1, "price": 10.0,
        "store_id": "S1" if channel == "store" else None,
    }  # fmt: skip


def frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    out["quantity"] = out["quantity"].astype("Int64")
    return out


def test_labels_follow_the_retailers_definition() -> None:
    events = frame(
        [
            ev("stays", 20), ev("stays", -30),  # buys again within 90 days
            ev("leaves", 20),  # never buys again
            ev("late", 20), ev("late", -120),  # only after the horizon: churned
            ev("gone", 400), ev("gone", -10),  # no purchase in the lookback: not judged
            ev("browser", 5, kind="view", channel="web"),  # never bought: not judged
        ]
    )  # fmt: skip
    labels = churn_labels(events, as_of=AS_OF, lookback_days=365, horizon_days=90)
    assert labels.to_dict() == {"late": True, "leaves": True, "stays": False}
    assert list(population(events, as_of=AS_OF)) == ["late", "leaves", "stays"]


def test_no_feature_reads_at_or_after_the_cutoff() -> None:
    past = [ev("a", d) for d in (3, 13, 40, 95)] + [
        ev("a", 2, kind="view", channel="web"),
        ev("a", 8, kind="email_open", channel="email"),
        ev("b", 50, channel="web"),
    ]
    future = [
        ev("a", 0),  # exactly at the cutoff
        ev("a", -1, channel="app"),
        ev("b", -5, kind="return"),
        ev("b", -3, kind="email_click", channel="email"),
        ev("c", -2),
    ]
    before = churn_features(frame(past), as_of=AS_OF)
    after = churn_features(frame(past + future), as_of=AS_OF)
    pd.testing.assert_frame_equal(before, after)
    assert list(before.index) == ["a", "b"]


def test_gaps_recency_and_missing_channels() -> None:
    # Bought every 10 days, then nothing for 40 days; never used the app or the web.
    events = frame([ev("p", d) for d in (40, 50, 60, 70)])
    row = churn_features(events, as_of=AS_OF).loc["p"]
    assert row["recency_days"] == pytest.approx(40)
    assert row["mean_gap_days"] == pytest.approx(10)
    assert row["gap_ratio"] == pytest.approx(4)
    assert row["purchase_days"] == 4 and row["store_purchase_days"] == 4
    assert np.isnan(row["web_recency_days"]) and row["web_purchase_days"] == 0
    assert row["spend"] == pytest.approx(40.0)


def test_a_naive_cutoff_is_refused() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        churn_features(frame([ev("p", 3)]), as_of=pd.Timestamp("2026-06-01"))


def test_one_person_path_equals_the_batch_features(small_world: SyntheticData) -> None:
    """The service scores one customer with `churn_row`; the model was trained on
    `churn_features`. Every value must agree, for every person of the population."""
    raw = small_world.tables["events"]
    events = raw.assign(person_id=raw["customer_id"])
    events = events[events["person_id"].notna()].sort_values("ts", kind="stable")
    as_of = events["ts"].max().ceil("D") - pd.Timedelta(days=45)
    batch = churn_features(events, as_of=as_of)
    assert len(batch) > 100
    for person, theirs in events.groupby("person_id"):
        one = churn_row(OneHistory.of_frame(theirs), as_of=as_of)
        if person not in batch.index:
            assert one is None, person
            continue
        assert one is not None and list(one) == list(batch.columns)
        np.testing.assert_allclose(
            list(one.values()), batch.loc[person].to_numpy(), rtol=1e-9, err_msg=person
        )


def test_a_missing_price_counts_as_nothing_spent() -> None:
    """Views carry no price (NaN in a frame): never an error, never spend."""
    rows = [ev("p", 3), ev("p", 2, kind="view", channel="web"), ev("p", 1)]
    rows[0]["price"] = float("nan")
    events = frame(rows)
    row = churn_features(events, as_of=AS_OF).loc["p"]
    assert row["spend"] == pytest.approx(10.0) and row["purchase_days"] == 2
