"""What a store-bound key (a tablet's) may write: store events of its own store, about
customers Omni knows, answering offers that exist. Anything else is refused whole, each
problem named as a rejected event is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from features import columns as c
from service.people import find_person
from service.shelf import Shelf


def store_key_problems(
    conn: Connection, shelf: Shelf, store_id: str, events: Sequence[Mapping[str, Any]]
) -> list[tuple[int, str | None, str, str]]:
    """(index, event_id, field, reason) of every event a key bound to `store_id` may not
    write; empty when it may write them all."""
    problems = []
    known: dict[str, bool] = {}
    for i, event in enumerate(events):
        event_id = event.get(c.EVENT_ID)
        key = str(event_id) if event_id is not None else None
        if event.get(c.CHANNEL) != c.Channel.STORE.value:
            problems.append((i, key, c.CHANNEL, "a store's key writes only 'store' events"))
        elif event.get(c.STORE_ID) != store_id:
            problems.append((i, key, c.STORE_ID, f"this key writes only for store '{store_id}'"))
        customer = event.get(c.CUSTOMER_ID)
        if isinstance(customer, str) and customer.strip():
            if customer not in known:
                known[customer] = find_person(conn, customer_id=customer.strip()) is not None
            if not known[customer]:
                problems.append((i, key, c.CUSTOMER_ID, "no customer has this id"))
        if event.get(c.TYPE) in c.OFFER_EVENT_TYPES and shelf.offer(event.get(c.OFFER_ID)) is None:
            problems.append((i, key, c.OFFER_ID, "no offer has this id"))
    return problems
