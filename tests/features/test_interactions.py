"""Interactions: weighted by type and channel, decayed by age, blind to anything after as_of."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.interactions import InteractionWeights, interactions, item_trend, store_activity
from features.matrix import build_matrix

AS_OF = pd.Timestamp("2026-06-01", tz="UTC")


def events(rows: list[tuple[str, str, str, str, int]]) -> pd.DataFrame:
    """(person, item, type, channel, days before AS_OF)."""
    frame = pd.DataFrame(rows, columns=["person_id", "item_id", "type", "channel", "days"])
    frame["ts"] = AS_OF - pd.to_timedelta(frame.pop("days"), unit="D")
    frame["quantity"] = pd.array([1] * len(frame), dtype="Int64")
    return frame


def weight(inter: pd.DataFrame, person: str, item: str) -> float:
    row = inter[(inter["person_id"] == person) & (inter["item_id"] == item)]
    return float(row["weight"].iloc[0]) if len(row) else 0.0


def test_purchase_outweighs_cart_outweighs_view() -> None:
    inter = interactions(
        events([("p", "bought", "purchase", "web", 1), ("p", "carted", "add_to_cart", "web", 1),
                ("p", "viewed", "view", "web", 1)]),
        as_of=AS_OF,
    )  # fmt: skip
    assert (
        weight(inter, "p", "bought") > weight(inter, "p", "carted") > weight(inter, "p", "viewed")
    )


def test_a_return_cancels_the_purchase() -> None:
    inter = interactions(
        events([("p", "i", "purchase", "store", 10), ("p", "i", "return", "store", 5)]),
        as_of=AS_OF,
    )
    assert weight(inter, "p", "i") == 0.0


def test_weight_halves_every_half_life() -> None:
    rule = InteractionWeights(half_life_days=30)
    inter = interactions(
        events([("p", "new", "view", "web", 1), ("p", "old", "view", "web", 31)]),
        as_of=AS_OF,
        weights=rule,
    )
    assert weight(inter, "p", "old") == pytest.approx(weight(inter, "p", "new") / 2)
    with pytest.raises(ValueError, match="half_life_days"):
        InteractionWeights(half_life_days=0)


def test_nothing_at_or_after_the_cutoff_changes_anything() -> None:
    past = events([("p", "i", "view", "web", 3), ("q", "j", "purchase", "store", 40)])
    future = events([("p", "i", "purchase", "web", 0), ("p", "k", "view", "app", -2),
                     ("r", "j", "purchase", "web", -30)])  # fmt: skip
    before = interactions(past, as_of=AS_OF)
    after = interactions(pd.concat([past, future], ignore_index=True), as_of=AS_OF)
    pd.testing.assert_frame_equal(before, after)


def test_channels_are_weighted_and_anonymous_events_ignored() -> None:
    rows = events([("p", "i", "email_click", "email", 1), ("p", "j", "view", "web", 1)])
    rows.loc[len(rows)] = [None, "k", "view", "web", AS_OF - pd.Timedelta(days=1), 1]
    inter = interactions(rows, as_of=AS_OF)
    assert weight(inter, "p", "i") < weight(inter, "p", "j")
    assert set(inter["item_id"]) == {"i", "j"}
    with pytest.raises(ValueError, match="no UTC offset"):
        interactions(rows, as_of=pd.Timestamp("2026-06-01"))


def test_matrix_keeps_catalogue_items_and_purchase_ages() -> None:
    inter = interactions(
        events([("p", "i", "purchase", "store", 2), ("q", "j", "view", "web", 1)]), as_of=AS_OF
    )
    catalogue = pd.DataFrame({"item_id": ["i", "j", "never"], "category": ["a", "b", "c"]})
    m = build_matrix(inter, as_of=AS_OF, catalogue=catalogue)
    assert m.items.tolist() == ["i", "j", "never"] and m.users.tolist() == ["p", "q"]
    assert m.item_category.tolist() == ["a", "b", "c"]
    assert m.purchase_age_days[0, 0] == pytest.approx(3.0)  # 1 + 2 days
    assert m.purchase_age_days[1, 1] == 0  # viewed, never bought
    assert np.isclose(m.weights[1, 1], weight(inter, "q", "j"))


def test_store_activity_counts_what_sells_where_before_the_cutoff() -> None:
    rows = events([("p", "i", "purchase", "store", 2), ("p", "j", "purchase", "web", 2),
                   ("q", "i", "purchase", "store", -1)])  # fmt: skip
    rows["store_id"] = ["S1", None, "S1"]
    rows.loc[len(rows)] = [None, "k", "purchase", "store", AS_OF - pd.Timedelta(days=1), 1, "S2"]
    activity = store_activity(rows, as_of=AS_OF)
    assert set(zip(activity["store_id"], activity["item_id"], strict=True)) == {
        ("S1", "i"),
        ("S2", "k"),
    }
    assert activity.loc[activity["store_id"] == "S2", "person_id"].isna().all()


def test_item_trend_compares_recent_sales_with_the_usual_pace() -> None:
    rows = [("p", "hot", "purchase", "web", d) for d in (1, 2, 3, 4)]
    rows += [("p", "steady", "purchase", "web", d) for d in (5, 35, 65)]
    rows += [("p", "cold", "purchase", "web", d) for d in (40, 50, 60, 70)]
    rows += [("p", "hot", "purchase", "web", -3)]  # after the cutoff: ignored
    trend = item_trend(events(rows), as_of=AS_OF, recent_days=14, baseline_days=90)
    assert trend["hot"] > trend["steady"] > trend["cold"]
    assert trend["hot"] == pytest.approx((4 + 1) / (4 * 14 / 90 + 1))
