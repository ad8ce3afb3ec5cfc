"""What a store-bound key (a tablet's) may write: store events of its own store, about
customers Omni knows, answering offers that exist and were made to that customer.
Anything else is refused whole, each problem named as a rejected event is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select

from features import columns as c
from service.people import Person, find_person
from service.shelf import Shelf
from service.storage.tables import decisions


def store_key_problems(
    conn: Connection, shelf: Shelf, store_id: str, events: Sequence[Mapping[str, Any]]
) -> list[tuple[int, str | None, str, str]]:
    """(index, event_id, field, reason) of every event a key bound to `store_id` may not
    write; empty when it may write them all."""
    problems = []
    known: dict[str, Person | None] = {}
    for i, event in enumerate(events):
        event_id = event.get(c.EVENT_ID)
        key = str(event_id) if event_id is not None else None
        if event.get(c.CHANNEL) != c.Channel.STORE.value:
            problems.append((i, key, c.CHANNEL, "a store's key writes only 'store' events"))
        elif event.get(c.STORE_ID) != store_id:
            problems.append((i, key, c.STORE_ID, f"this key writes only for store '{store_id}'"))
        customer = event.get(c.CUSTOMER_ID)
        person = None
        if isinstance(customer, str) and customer.strip():
            if customer not in known:
                known[customer] = find_person(conn, customer_id=customer.strip())
            person = known[customer]
            if person is None:
                problems.append((i, key, c.CUSTOMER_ID, "no customer has this id"))
        if event.get(c.TYPE) not in c.OFFER_EVENT_TYPES:
            continue
        offer_id = event.get(c.OFFER_ID)
        if shelf.offer(offer_id) is None:
            problems.append((i, key, c.OFFER_ID, "no offer has this id"))
        elif person is not None and not _was_offered(conn, person.person_id, str(offer_id)):
            problems.append((i, key, c.OFFER_ID, "this offer was never made to this customer"))
    return problems


def _was_offered(conn: Connection, person_id: str, offer_id: str) -> bool:
    """Whether a next-best-offer decision ever put this offer to this person."""
    probe = select(decisions.c["decision_id"]).where(
        decisions.c[c.PERSON_ID] == person_id, decisions.c[c.OFFER_ID] == offer_id
    )
    return conn.execute(probe.limit(1)).first() is not None
