"""A person's ids as the online state keys them: (kind, value), kind customer or anonymous."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from features import columns as c
from features.identity import ANONYMOUS, CUSTOMER

#: The event column that holds each kind of id.
ID_COLUMNS = {CUSTOMER: c.CUSTOMER_ID, ANONYMOUS: c.ANONYMOUS_ID}


def ids_of(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (kind, value) ids an event row carries."""
    return [(kind, row[col]) for kind, col in ID_COLUMNS.items() if row.get(col) is not None]


def by_kind(
    customer_ids: Iterable[str], anonymous_ids: Iterable[str]
) -> list[tuple[str, list[str]]]:
    """A person's ids grouped by kind, kinds without ids left out (one indexed query each)."""
    groups = ((CUSTOMER, list(customer_ids)), (ANONYMOUS, list(anonymous_ids)))
    return [(kind, ids) for kind, ids in groups if ids]
