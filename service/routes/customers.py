"""A customer's churn score, their 360 profile, and erasure."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Depends, Request
from sqlalchemy import Connection, select

from features import columns as c
from features.cart import open_cart
from service.auth import Caller, require
from service.churn_scoring import churn_of
from service.deps import ConnDep, CustomerDep, NowDep, ServedDep, ShelfDep
from service.people import Person, erase, find_person, person_events
from service.schemas import (
    Activity,
    CartLine,
    ChurnRequest,
    ChurnScore,
    ChurnScores,
    Erased,
    Profile,
)
from service.serving import ModelUnavailable, Served
from service.shelf import Item
from service.storage.tables import customers

router = APIRouter(prefix="/v1", tags=["customers"])
NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"description": "No customer has this id."}}
#: Recent activity shown in a profile.
RECENT = 20


def _score(served: Served, customer_id: str, events: pd.DataFrame, now: datetime) -> ChurnScore:
    answer = churn_of(served, events, now)
    return ChurnScore(customer_id=customer_id, **vars(answer))


@router.get("/customers/{customer_id}/churn", response_model=ChurnScore, responses=NOT_FOUND)
def customer_churn(
    customer_id: str,
    person: CustomerDep,
    _: Annotated[Caller, Depends(require("churn:read"))],
    served: ServedDep,
    conn: ConnDep,
    now: NowDep,
) -> ChurnScore:
    """Probability of no purchase in any channel in the next 90 days, band, and reasons."""
    return _score(served, customer_id, person_events(conn, person), now)


@router.post("/churn/scores", response_model=ChurnScores)
def churn_scores(
    body: ChurnRequest,
    _: Annotated[Caller, Depends(require("churn:read"))],
    served: ServedDep,
    conn: ConnDep,
    now: NowDep,
) -> ChurnScores:
    """Churn for up to 1,000 customers at once; unknown ids are listed, not an error."""
    served.need_churn()
    scores, unknown = [], []
    for customer_id in dict.fromkeys(body.customer_ids):
        person = find_person(conn, customer_id=customer_id)
        if person is None:
            unknown.append(customer_id)
            continue
        scores.append(_score(served, customer_id, person_events(conn, person), now))
    return ChurnScores(scores=scores, unknown=unknown)


@router.get("/customers/{customer_id}/profile", response_model=Profile, responses=NOT_FOUND)
def profile(
    customer_id: str,
    person: CustomerDep,
    _: Annotated[Caller, Depends(require("profile:read"))],
    served: ServedDep,
    shelf: ShelfDep,
    conn: ConnDep,
    now: NowDep,
) -> Profile:
    """The 360 view: identities, channels, recent activity everywhere, open cart, churn."""
    events = person_events(conn, person)
    record = _record(conn, person)
    catalogue = shelf.items()
    shown = events[events[c.TYPE].isin([c.EventType.VIEW, c.EventType.PURCHASE,
                                        c.EventType.ADD_TO_CART, c.EventType.RETURN,
                                        c.EventType.OFFER_ACCEPTED])]  # fmt: skip
    recent = [
        Activity(
            ts=row[c.TS].to_pydatetime(),
            channel=row[c.CHANNEL],
            type=row[c.TYPE],
            item_id=row[c.ITEM_ID],
            name=_name(catalogue, row[c.ITEM_ID]),
            store_id=row[c.STORE_ID],
        )
        for _, row in shown.tail(RECENT).iloc[::-1].iterrows()
    ]
    cart = [
        CartLine(
            item_id=row[c.ITEM_ID],
            name=_name(catalogue, row[c.ITEM_ID]) or row[c.ITEM_ID],
            quantity=int(row[c.QUANTITY]),
            added_at=row["added_at"].to_pydatetime(),
            channel=row[c.CHANNEL],
        )
        for _, row in open_cart(events, as_of=pd.Timestamp(now)).iterrows()
    ]
    try:
        churn = _score(served, customer_id, events, now)
    except ModelUnavailable:
        churn = None
    return Profile(
        customer_id=customer_id,
        person_id=person.person_id,
        name=_text(record.get(c.NAME)),
        customer_ids=list(person.customer_ids),
        anonymous_ids=list(person.anonymous_ids),
        home_store_id=_text(record.get(c.HOME_STORE_ID)),
        consent={
            "email": bool(record.get(c.CONSENT_EMAIL, False)),
            "sms": bool(record.get(c.CONSENT_SMS, False)),
            "push": bool(record.get(c.CONSENT_PUSH, False)),
        },
        channels=sorted(events[c.CHANNEL].dropna().unique().tolist()),
        recent=recent,
        cart=cart,
        churn=churn,
    )


@router.delete("/customers/{customer_id}", response_model=Erased, responses=NOT_FOUND)
def erase_customer(
    customer_id: str,
    person: CustomerDep,
    _: Annotated[Caller, Depends(require("admin"))],
    shelf: ShelfDep,
    request: Request,
) -> Erased:
    """Erase the customer: every event, identity and customer record of the stitched
    person. Later training no longer sees them; the served model stops using what it
    learned about them at once."""
    deleted = erase(request.app.state.engine, person)
    shelf.forget()
    return Erased(
        customer_id=customer_id,
        events_deleted=deleted,
        ids=[*person.customer_ids, *person.anonymous_ids],
    )


def _record(conn: Connection, person: Person) -> dict[str, object]:
    """The customer record of the person (the first of their customer ids that has one)."""
    rows = (
        conn.execute(select(customers).where(customers.c[c.CUSTOMER_ID].in_(person.customer_ids)))
        .mappings()
        .all()
    )
    return dict(rows[0]) if rows else {}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _name(catalogue: dict[str, Item], item_id: str | None) -> str | None:
    known = catalogue.get(item_id) if item_id else None
    return known.name if known else None
