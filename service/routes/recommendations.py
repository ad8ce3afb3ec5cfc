"""Recommendations for a customer or an anonymous visitor, and similar items."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from features.columns import Channel
from service.auth import Caller, require
from service.deps import (
    ConnDep,
    CustomerIdPath,
    NowDep,
    ServedDep,
    ShelfDep,
    id_query,
    off_loop,
    store_of,
)
from service.experiments.arms import ArmModels, ListLog
from service.experiments.assignment import assign
from service.people import Person, find_person
from service.recommending import Answer, Ask, recommend, similar
from service.schemas import (
    KEY_ERRORS,
    NO_STORE,
    Problem,
    Recommendation,
    Recommendations,
    SimilarItem,
    SimilarItems,
)
from service.serving import Served
from service.shelf import Shelf
from service.storage.engine import for_reads
from service.storage.exposures import RECOMMENDATIONS, Exposure, list_id

router = APIRouter(prefix="/v1", tags=["recommendations"], responses=KEY_ERRORS)
Recommender = Annotated[Caller, Depends(require("recommend"))]
K = Annotated[int, Query(ge=1, le=100, description="How many items.")]
StoreId = Annotated[
    str | None, id_query("Only items in stock in this store (a tablet's own store).")
]
Category = Annotated[str | None, id_query("Only this category.")]
ChannelQuery = Annotated[
    Channel | None,
    Query(
        description="The channel showing the list (recorded with its served_id; default: "
        "store when store_id is given, else web)."
    ),
]


def _ask(
    who: Caller,
    shelf: Shelf,
    k: int,
    store_id: str | None,
    category: str | None,
    include_purchased: bool,
) -> Ask:
    store = store_of(who, shelf, store_id)
    return Ask(k=k, store_id=store, category=category, include_purchased=include_purchased)


def _body(answer: Answer, ask: Ask, shown: Shown, **who: str | None) -> Recommendations:
    return Recommendations(
        **who,
        items=[Recommendation(**vars(s)) for s in answer.items],
        cold_start=answer.cold_start,
        basis=answer.basis,
        model_version=answer.model_version,
        store_id=ask.store_id,
        served_id=shown.served_id,
        experiments=shown.arms,
    )


class Shown:
    """Which arm's models answer a person, and the list's served id (recorded once a day
    in the exposures ledger)."""

    def __init__(
        self,
        request: Request,
        main: Served,
        person: tuple[str, str | None],
        channel: Channel | None,
        store_id: str | None,
    ) -> None:
        state = request.app.state
        person_id, customer_id = person
        now = state.settings.now()
        assignment = assign(person_id, state.settings, now)
        arm_models: ArmModels = state.arm_models
        self.served = arm_models.served_for(main, assignment)
        self.arms = assignment.labels
        showing = channel_of(channel, store_id)
        self.served_id = list_id(person_id, showing, now, self.arms)
        self._exposure = Exposure(
            self.served_id, person_id, customer_id, RECOMMENDATIONS, showing, self.arms,
            store_id, served_at=now,
        )  # fmt: skip
        self._log: ListLog = state.list_log

    def record(self, answer: Answer) -> None:
        """Queue the list's exposure (written in the background: a read never waits)."""
        if answer.items:
            self._log.record(replace(self._exposure, ref=answer.model_version))


def channel_of(channel: Channel | None, store_id: str | None) -> str:
    """The channel showing a list: as asked, else the store when a store asks, else web."""
    if channel is not None:
        return channel.value
    return Channel.STORE.value if store_id else Channel.WEB.value


@router.get(
    "/customers/{customer_id}/recommendations", response_model=Recommendations, responses=NO_STORE
)
async def customer_recommendations(
    customer_id: CustomerIdPath,
    who: Recommender,
    served: ServedDep,
    shelf: ShelfDep,
    request: Request,
    now: NowDep,
    k: K = 10,
    store_id: StoreId = None,
    category: Category = None,
    include_purchased: Annotated[
        bool, Query(description="Keep items bought in the last 30 days.")
    ] = False,
    channel: ChannelQuery = None,
) -> Recommendations:
    """The customer's top items now, each with a short reason.

    Events posted since the model was trained are folded in on the next request. An
    unknown customer gets a cold-start answer (flagged), never an error.
    """
    ask = _ask(who, shelf, k, store_id, category, include_purchased)

    # Every read in one trip to the thread pool: a slow read never stalls the event loop,
    # and the common case (nothing new: a few rows) pays for one thread hand-off only.
    def answer() -> tuple[Answer, Shown]:
        with for_reads(request.app.state.engine).connect() as conn:
            person = find_person(conn, customer_id=customer_id)
            who = (person.person_id if person else customer_id, customer_id)
            shown = Shown(request, served, who, channel, ask.store_id)
            found = recommend(shown.served, shelf, conn, person, ask, now)
        shown.record(found)
        return found, shown

    found, shown = await off_loop(request, answer)
    return _body(found, ask, shown, customer_id=customer_id)


@router.get("/recommendations", response_model=Recommendations, responses=NO_STORE)
def anonymous_recommendations(
    anonymous_id: Annotated[str, id_query("A device or cookie id.")],
    who: Recommender,
    served: ServedDep,
    shelf: ShelfDep,
    conn: ConnDep,
    now: NowDep,
    request: Request,
    k: K = 10,
    store_id: StoreId = None,
    category: Category = None,
    channel: ChannelQuery = None,
) -> Recommendations:
    """For a visitor known only by an anonymous id: their recent views folded in when
    there are any (or their customer's history, once stitched), else best sellers."""
    ask = _ask(who, shelf, k, store_id, category, False)
    person = find_person(conn, anonymous_id=anonymous_id) or Person(
        anonymous_id, (), (anonymous_id,)
    )
    shown = Shown(request, served, (person.person_id, None), channel, ask.store_id)
    answer = recommend(shown.served, shelf, conn, person, ask, now)
    shown.record(answer)
    return _body(answer, ask, shown, anonymous_id=anonymous_id)


@router.get(
    "/items/{item_id}/similar",
    response_model=SimilarItems,
    responses={404: {"model": Problem, "description": "No such item (or store)."}},
)
def similar_items(
    item_id: str,
    who: Recommender,
    served: ServedDep,
    shelf: ShelfDep,
    k: K = 10,
    store_id: StoreId = None,
) -> SimilarItems:
    """Items most often chosen by the customers who chose this one; with `store_id`, only
    those in stock there."""
    store = _ask(who, shelf, k, store_id, None, True).store_id
    found = similar(served, shelf, item_id, k, store)
    if found is None:
        if item_id in shelf.items():
            return SimilarItems(
                item_id=item_id, items=[], reason="nobody has bought it yet", model_version=None
            )
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no item has the id '{item_id}'")
    items = [
        SimilarItem(
            item_id=s.item_id, name=s.name, category=s.category, score=s.score, in_stock=s.in_stock
        )
        for s in found
    ]
    return SimilarItems(
        item_id=item_id,
        items=items,
        reason="chosen by the same customers",
        model_version=served.recommender_version,
    )
