"""External ids <-> matrix positions, fitted once and saved with the model."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


class UnknownId(KeyError):
    """An id the model was not fitted on."""

    kind = "id"

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids = list(ids)
        shown = ", ".join(repr(i) for i in self.ids[:5])
        more = f" and {len(self.ids) - 5} more" if len(self.ids) > 5 else ""
        super().__init__(f"unknown {self.kind}: {shown}{more}")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownCustomer(UnknownId):
    kind = "customer"


class UnknownItem(UnknownId):
    kind = "item"


#: A mapping of up to this many ids is a dict, not a pandas Index.
SMALL = 32
#: Up to this many ids are looked up one by one (see `IdMapping.positions`): about 0.3 us
#: an id, where an `Index.get_indexer` call costs 1.7 ms whatever the number of ids (20,000
#: items: a person's few hundred touched items took 1.7 ms instead of 0.1).
ONE_BY_ONE = 4096


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _get(index: pd.Index, value: str) -> int:
    try:
        position = index.get_loc(value)
    except (KeyError, TypeError):
        return -1
    return position if isinstance(position, int) else -1


class IdMapping:
    """A sorted, unique list of ids; position i in the matrix is `ids[i]`."""

    def __init__(self, ids: Iterable[str], error: type[UnknownId] = UnknownId) -> None:
        self.ids = np.asarray(list(ids), dtype=object)
        self._error = error
        # A handful of ids (one customer's fold-in): a dict, not a pandas Index, whose
        # building cost more than the whole lookup.
        self._small: dict[object, int] | None = None
        if len(self.ids) <= SMALL:
            self._small = {value: i for i, value in enumerate(self.ids.tolist())}
            if len(self._small) != len(self.ids):
                raise ValueError("ids must be unique")
            return
        self._index = pd.Index(self.ids)
        if not self._index.is_unique:
            raise ValueError("ids must be unique")

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, value: object) -> bool:
        if self._small is not None:
            return _hashable(value) and value in self._small
        return value in self._index

    def positions(self, values: Iterable[str], *, missing: str = "raise") -> np.ndarray:
        """Matrix positions of `values`. Unknown ids raise (`missing="raise"`) or map to -1."""
        values = list(values)
        if self._small is not None:
            small = self._small
            found = np.array(
                [small.get(v, -1) if _hashable(v) else -1 for v in values], dtype=np.int64
            )
        elif len(values) <= ONE_BY_ONE:
            # A request asks for a person's ids (up to a few thousand): the hash table
            # pandas keeps answers them one by one far faster than `get_indexer`.
            engine = self._index
            found = np.array([_get(engine, v) for v in values], dtype=np.int64)
        else:
            found = self._index.get_indexer(pd.Index(values, dtype=object))
        if missing == "raise" and (found < 0).any():
            raise self._error([v for v, f in zip(values, found, strict=True) if f < 0])
        return np.asarray(found, dtype=np.int64)
