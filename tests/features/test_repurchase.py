"""Repeat chances: learned from repurchase intervals, censored at as_of, shrunk to the category."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.matrix import with_holdout
from features.repurchase import AGE_EDGES, repeat_chance

AS_OF = pd.Timestamp("2026-06-01", tz="UTC")
ITEMS = np.array(["milk", "sofa", "tea", "shoes"], dtype=object)
CATEGORY = np.array(["grocery", "furniture", "grocery", "shoes"], dtype=object)


def buys(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """Purchases (person, item, days before AS_OF)."""
    return pd.DataFrame(
        {
            "person_id": [p for p, _, _ in rows],
            "item_id": [i for _, i, _ in rows],
            "type": "purchase",
            "channel": "web",
            "ts": [AS_OF - pd.Timedelta(days=d) for _, _, d in rows],
            "quantity": 1,
            "store_id": None,
        }
    )


def shoppers() -> pd.DataFrame:
    rows = []
    for n in range(40):
        person = f"p{n}"
        rows += [(person, "milk", d) for d in range(300, 0, -7)]  # every week
        rows.append((person, "sofa", 200 - n))  # once
        rows += [(person, "shoes", d) for d in (360, 180)] if n % 2 else [(person, "shoes", 360)]
    rows.append(("p0", "tea", 100))  # one buyer, never again: too few to say alone
    return buys(rows)


def chance_of(table: np.ndarray, item: str, age: float) -> float:
    band = int(np.searchsorted(AGE_EDGES, age, side="right") - 1)
    return float(table[list(ITEMS).index(item), band])


def test_groceries_come_back_a_sofa_does_not_shoes_after_months() -> None:
    chance = repeat_chance(
        shoppers(), as_of=AS_OF, items=ITEMS, item_category=CATEGORY, horizon_days=28
    )
    assert chance is not None
    table = chance.chance
    assert chance_of(table, "milk", 0) > 0.9 and chance_of(table, "milk", 3) > 0.9
    assert chance_of(table, "sofa", 0) < 0.05 and chance_of(table, "sofa", 60) < 0.05
    # Half the shoe buyers come back after 180 days: unlikely a month on, likely near then.
    assert chance_of(table, "shoes", 30) < 0.05 < 0.3 < chance_of(table, "shoes", 180)
    # The policy: what is left out at which age.
    ages = np.array([1.0, 1.0, 30.0, 170.0])
    cols = np.array([0, 1, 3, 3])
    assert chance.unlikely(cols, ages).tolist() == [False, True, True, False]


def test_tea_with_one_buyer_borrows_from_its_category() -> None:
    chance = repeat_chance(
        shoppers(), as_of=AS_OF, items=ITEMS, item_category=CATEGORY, horizon_days=28
    )
    assert chance is not None
    # Its own record (bought once, never again) is outweighed by grocery's weekly rebuys.
    assert chance_of(chance.chance, "tea", 0) > 0.5


def test_purchases_too_recent_to_judge_are_not_counted() -> None:
    # Everyone bought the sofa ten days before as_of: nobody was watched for 28 days.
    recent = buys([(f"p{n}", "sofa", 10) for n in range(30)])
    assert (
        repeat_chance(recent, as_of=AS_OF, items=ITEMS, item_category=CATEGORY, horizon_days=28)
        is None
    )
    # A rebuy after as_of is never read: the same table with or without it.
    later = pd.concat([shoppers(), buys([("p1", "sofa", -5)])], ignore_index=True)
    kwargs = {"as_of": AS_OF, "items": ITEMS, "item_category": CATEGORY, "horizon_days": 28}
    with_later, without = repeat_chance(later, **kwargs), repeat_chance(shoppers(), **kwargs)
    assert with_later is not None and without is not None
    np.testing.assert_array_equal(with_later.chance, without.chance)


def test_training_matrices_carry_chances_cut_at_their_own_as_of() -> None:
    events = shoppers()
    data = with_holdout(events, as_of=AS_OF, holdout_days=28, windows=1)
    early = data.holdouts[0].early
    assert data.repeat is not None and early.repeat is not None
    assert data.repeat.horizon_days == 28
    cut = AS_OF - pd.Timedelta(days=28)
    alone = repeat_chance(
        events, as_of=cut, items=early.items, item_category=early.item_category, horizon_days=28
    )
    assert alone is not None
    np.testing.assert_array_equal(early.repeat.chance, alone.chance)
