"""Ids to positions: the same answers whether a mapping holds a few ids (one customer's
fold-in) or many (a fitted catalogue)."""

from __future__ import annotations

import numpy as np
import pytest

from models.ids import SMALL, IdMapping, UnknownCustomer


@pytest.mark.parametrize("size", [0, 1, SMALL, SMALL + 1, 500])
def test_positions_and_membership_at_every_size(size: int) -> None:
    ids = [f"C{n:05d}" for n in range(size)]
    mapping = IdMapping(ids, UnknownCustomer)
    asked = [*ids[::-1], "nobody", *ids[: size // 2]]
    expected = [ids.index(a) if a in ids else -1 for a in asked]
    assert mapping.positions(asked, missing="skip").tolist() == expected
    assert mapping.positions(np.array(ids, dtype=object)).tolist() == list(range(size))
    assert all(i in mapping for i in ids) and "nobody" not in mapping and None not in mapping
    with pytest.raises(UnknownCustomer, match="nobody"):
        mapping.positions(["nobody", *ids[:1]])


@pytest.mark.parametrize("size", [2, SMALL + 2])
def test_repeated_ids_are_refused(size: int) -> None:
    with pytest.raises(ValueError, match="unique"):
        IdMapping([*(f"I{n}" for n in range(size - 1)), "I0"])
