"""Holdout windows: consecutive cuts before as_of, each labelled by the window after it."""

from __future__ import annotations

import pandas as pd

from features.matrix import with_holdout

AS_OF = pd.Timestamp("2026-06-01", tz="UTC")


def purchase(person: str, item: str, days_before: float) -> dict[str, object]:
    return {
        "person_id": person, "item_id": item, "type": "purchase", "channel": "web",
        "ts": AS_OF - pd.Timedelta(days=days_before), "quantity": 1, "store_id": None,
    }  # fmt: skip


def test_windows_are_consecutive_and_never_read_past_as_of() -> None:
    events = pd.DataFrame(
        [
            purchase("p", "old", 30),  # history of every cut
            purchase("p", "w2", 10),  # bought in the second window back (14-7 days)
            purchase("p", "w1", 3),  # bought in the last window (7-0 days)
            purchase("p", "future", -1),  # after as_of: never seen
        ]
    )
    data = with_holdout(events, as_of=AS_OF, holdout_days=7, windows=2)
    assert [h.early.as_of for h in data.holdouts] == [
        AS_OF - pd.Timedelta(days=7),
        AS_OF - pd.Timedelta(days=14),
    ]
    items = list(data.items)
    assert "future" not in items

    def bought(i: int) -> set[str]:
        labels = data.holdouts[i].labels
        return {items[col] for col in labels.nonzero()[1]}

    assert bought(0) == {"w1"}
    assert bought(1) == {"w2"}
    # Each cut's history holds only what came before it.
    last = data.holdouts[0].early
    assert {items[col] for col in last.weights.nonzero()[1]} == {"old", "w2"}
