"""The short reason given with each recommended item (`service.recommending._reasons`)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from models.ids import IdMapping
from service.recommending import Row, _reasons
from service.serving import Served

IDS = ["a", "b", "c", "d", "e"]
CATEGORIES = np.array(["shoes", "bags", "shoes", "socks", "hats"], dtype=object)
#: Per item, its closest items best first; -1: no more neighbours.
NEIGHBOURS = np.array([[3, -1], [-1, -1], [4, 3], [0, 1], [2, -1]], dtype=np.int32)


def _served() -> Served:
    model: Any = SimpleNamespace(items_=IdMapping(IDS), item_category_=CATEGORIES)
    return Served(recommender=model, neighbours=NEIGHBOURS)


def _shelf() -> Any:
    return SimpleNamespace(items=lambda: {"d": SimpleNamespace(name="Wool socks")})


def _reasons_for(positions: list[int], history: list[int], bought: dict[int, float]) -> list[str]:
    weights = Row(np.array(history, dtype=np.int32), np.ones(len(history)))
    cols = sorted(bought)
    ages = Row(np.array(cols, dtype=np.int32), np.array([bought[c] for c in cols]))
    return _reasons(_served(), _shelf(), np.array(positions), weights, ages, None, 2.0)


def test_an_item_near_one_of_theirs_says_which_by_its_catalogue_name() -> None:
    # c's closest (e) is not theirs, its second (d) is: named as the catalogue names it.
    assert _reasons_for([0, 2], history=[3], bought={}) == [
        "bought together with Wool socks",
        "bought together with Wool socks",
    ]


def test_an_item_with_no_neighbour_of_theirs_is_popular_in_its_category() -> None:
    # b has no neighbour at all: its -1 slots are never one of theirs, not even the last
    # item of the catalogue (e), which they have.
    assert _reasons_for([1], history=[3, 4], bought={}) == ["popular in bags"]
    assert _reasons_for([0], history=[1], bought={}) == ["popular in shoes"]


def test_an_item_they_bought_says_when_counting_from_now() -> None:
    # Bought 3 days before the history's end (age 1 + 3), which is 2 days old.
    assert _reasons_for([0, 4], history=[3], bought={4: 4.0}) == [
        "bought together with Wool socks",
        "you bought this 5 days ago",
    ]
