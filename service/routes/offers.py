"""The next-best offer: one decision per customer, the same in every channel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from features import columns as c
from service.auth import Caller, require
from service.decisioning.contact_policy import OUTBOUND
from service.decisioning.nbo import HeldOut, NoConsent, OfferAsk, next_best_offer, where_for
from service.decisioning.schemas import NextBestOffer, Offer
from service.deps import (
    CustomerIdPath,
    NowDep,
    ServedDep,
    SettingsDep,
    ShelfDep,
    id_query,
    off_loop,
    person_or_404,
    refuse,
    store_of,
)
from service.schemas import KEY_ERRORS, Problem
from service.serving import Served
from service.settings import Settings
from service.shelf import Shelf
from service.storage import cases
from service.storage.engine import for_reads

router = APIRouter(prefix="/v1", tags=["offers"], responses=KEY_ERRORS)
#: Where an offer can be made: the event channels, plus push and sms messages.
CHANNELS = (*[ch.value for ch in c.Channel], *[o for o in OUTBOUND if o not in set(c.Channel)])


@router.get(
    "/customers/{customer_id}/next-best-offer",
    response_model=NextBestOffer,
    responses={404: {"model": Problem, "description": "No customer (or store) has this id."}},
)
async def customer_next_best_offer(
    customer_id: CustomerIdPath,
    who: Annotated[Caller, Depends(require("recommend"))],
    served: ServedDep,
    shelf: ShelfDep,
    settings: SettingsDep,
    request: Request,
    now: NowDep,
    channel: Annotated[
        str,
        Query(description="Where the offer is to be made.", json_schema_extra={"enum": CHANNELS}),
    ],
    store_id: Annotated[str | None, id_query("The store asking (a tablet's own store).")] = None,
) -> NextBestOffer:
    """The one offer worth most to make this customer now, with its reason.

    Every channel asking while the decision stands gets the same offer and `decision_id`;
    after the customer accepts or declines it (`offer_accepted` / `offer_declined`
    events), when it expires, or when it is no longer open to them where they are asked
    (out of stock in the store, consent withdrawn), a new decision is made and recorded.
    When no offer is open to them, asking again gives the same empty answer until an
    event of theirs arrives or `no_offer_seconds` pass.
    """
    # Every read and write in one trip to the thread pool: a standing decision is a few
    # indexed rows; deciding anew reads the person's online state, churn and suggestions.
    return await off_loop(
        request, _decide, customer_id, who, served, shelf, settings, request, now, channel, store_id
    )


def _decide(
    customer_id: str,
    who: Caller,
    served: Served,
    shelf: Shelf,
    settings: Settings,
    request: Request,
    now: datetime,
    channel: str,
    store_id: str | None,
) -> NextBestOffer:
    if channel not in CHANNELS:
        raise refuse("query", "channel", f"must be one of {', '.join(CHANNELS)}, not '{channel}'")
    store = store_of(who, shelf, store_id)
    if channel == c.Channel.STORE and store is None:
        raise refuse("query", "store_id", "a store asking must say which")
    engine = request.app.state.engine
    reads = for_reads(engine)
    with reads.connect() as conn:
        person = person_or_404(conn, customer_id)
    ask = OfferAsk(person, customer_id, where_for(shelf, channel, store), store, now)
    arms: dict[str, str] = {}
    held_out = False
    try:
        offered = next_best_offer(engine, served, shelf, settings, ask)
    except NoConsent as refused:
        offered, why_not = None, str(refused)
    except HeldOut as held:
        offered, why_not, arms, held_out = None, str(held), held.arms, True
    else:
        why_not = "no offer is open to this customer here now"
        if offered is None and settings.hold_offers_during_complaint:
            with reads.connect() as conn:
                if cases.has_open_complaint(conn, person.customer_ids, person.anonymous_ids):
                    why_not = "sales offers are held while a complaint of theirs is open"
    if offered is None:
        return NextBestOffer(
            customer_id=customer_id,
            channel=channel,
            decision_id=None,
            offer=None,
            reason=why_not,
            experiments=arms,
            held_out=held_out,
        )
    return NextBestOffer(
        customer_id=customer_id,
        channel=channel,
        decision_id=offered.decision_id,
        offer=Offer.model_validate(offered.offer),
        probability=offered.probability,
        expected_value=offered.expected_value,
        reason=offered.reason,
        decided_at=offered.decided_at,
        decided_in=offered.decided_in,
        valid_until=offered.valid_until,
        reused=offered.reused,
        probability_source=offered.source,
        served_id=offered.served_id,
        experiments=dict(offered.arms),
    )
