"""A person's ids as the online state keys them: (kind, value), kind customer or anonymous."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, or_
from sqlalchemy.sql.elements import ColumnElement

from features import columns as c
from features.identity import ANONYMOUS, CUSTOMER
from service.storage.engine import fetch_all

#: The event column that holds each kind of id.
ID_COLUMNS = {CUSTOMER: c.CUSTOMER_ID, ANONYMOUS: c.ANONYMOUS_ID}


def ids_of(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (kind, value) ids an event row carries."""
    return [(kind, row[col]) for kind, col in ID_COLUMNS.items() if row.get(col) is not None]


def owner(row: Mapping[str, Any]) -> tuple[str, str] | None:
    """The one id an event counts under: its customer id, else its anonymous id (the rule
    `features.identity.resolve` follows; `owned_by_kind` is the same rule in SQL)."""
    if row.get(c.CUSTOMER_ID) is not None:
        return CUSTOMER, str(row[c.CUSTOMER_ID])
    if row.get(c.ANONYMOUS_ID) is not None:
        return ANONYMOUS, str(row[c.ANONYMOUS_ID])
    return None


def by_kind(
    customer_ids: Iterable[str], anonymous_ids: Iterable[str]
) -> list[tuple[str, list[str]]]:
    """A person's ids grouped by kind, kinds without ids left out (one indexed query each)."""
    groups = ((CUSTOMER, list(customer_ids)), (ANONYMOUS, list(anonymous_ids)))
    return [(kind, ids) for kind, ids in groups if ids]


def owned_by_kind(events: Table) -> list[tuple[str, Any, Any]]:
    """Per kind of id: the events column and the condition selecting the events that count
    under that kind (the customer id when there is one, else the anonymous id: the rule
    `features.identity.resolve` follows), for state rebuilt in SQL."""
    customer, anonymous = events.c[c.CUSTOMER_ID], events.c[c.ANONYMOUS_ID]
    return [
        (CUSTOMER, customer, customer.is_not(None)),
        (ANONYMOUS, anonymous, customer.is_(None) & anonymous.is_not(None)),
    ]


def of_kind(table: Table) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """The condition "the rows of one kind of id, these values" on a state table, with
    bound parameters `kind` and `ids`: for statements built once at import, since
    building one per request cost more than running it (`of_ids`: both kinds at once)."""
    return (
        table.c[c.ID_TYPE] == bindparam("kind"),
        table.c[c.ID_VALUE].in_(bindparam("ids", expanding=True)),
    )


def of_ids(table: Table) -> ColumnElement[bool]:
    """The condition "the rows of these customer ids and these anonymous ids" on a state
    table, with bound parameters `customers` and `anonymous` (`read_ids` fills them): one
    statement for both kinds, each read through the table's key."""
    return or_(
        and_(
            table.c[c.ID_TYPE] == CUSTOMER,
            table.c[c.ID_VALUE].in_(bindparam("customers", expanding=True)),
        ),
        and_(
            table.c[c.ID_TYPE] == ANONYMOUS,
            table.c[c.ID_VALUE].in_(bindparam("anonymous", expanding=True)),
        ),
    )


def read_ids(
    conn: Connection,
    statement: Any,
    customer_ids: Iterable[str],
    anonymous_ids: Iterable[str],
    **params: Any,
) -> list[tuple[Any, ...]]:
    """The rows of `statement` (built with `of_ids`) for the person with these ids."""
    customers, anonymous = list(customer_ids), list(anonymous_ids)
    if not customers and not anonymous:
        return []
    return fetch_all(conn, statement, {"customers": customers, "anonymous": anonymous, **params})
