"""A customer's churn score, their 360 profile, their data on request, and erasure."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status

from service.access import person_export
from service.auth import Caller, require
from service.churn_scoring import ChurnAnswer, churn_now, churn_now_each
from service.deps import (
    ConnDep,
    CustomerDep,
    CustomerIdPath,
    NowDep,
    ServedDep,
    SettingsDep,
    ShelfDep,
    id_query,
    off_loop,
    person_or_404,
)
from service.erasure import erase
from service.people import Person, find_person
from service.profiles import build_profile
from service.schemas import (
    BODY_ERRORS,
    KEY_ERRORS,
    ChurnRequest,
    ChurnScore,
    ChurnScores,
    Erased,
    PersonExport,
    Problem,
    Profile,
)
from service.storage.engine import for_reads

router = APIRouter(prefix="/v1", tags=["customers"], responses=KEY_ERRORS)
NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": Problem, "description": "No customer has this id."}
}
#: Recent activity shown in a profile.
RECENT = 20


@router.get("/customers/{customer_id}/churn", response_model=ChurnScore, responses=NOT_FOUND)
async def customer_churn(
    customer_id: CustomerIdPath,
    _: Annotated[Caller, Depends(require("churn:read"))],
    served: ServedDep,
    now: NowDep,
    settings: SettingsDep,
    request: Request,
) -> ChurnScore:
    """Probability of no purchase in any channel within the model's horizon (90 days
    unless trained otherwise: `horizon_days` in the answer), band, and reasons."""

    def answer() -> ChurnAnswer:  # every read in one trip to the thread pool
        with for_reads(request.app.state.engine).connect() as conn:
            person = person_or_404(conn, customer_id)
            return churn_now(conn, served, person, now, settings.answer_max_age_hours)

    return ChurnScore(customer_id=customer_id, **vars(await off_loop(request, answer)))


@router.post("/churn/scores", response_model=ChurnScores, responses=BODY_ERRORS)
def churn_scores(
    body: ChurnRequest,
    _: Annotated[Caller, Depends(require("churn:read"))],
    served: ServedDep,
    conn: ConnDep,
    now: NowDep,
    settings: SettingsDep,
) -> ChurnScores:
    """Churn for up to 1,000 customers at once, each the answer `GET …/churn` gives;
    unknown ids are listed, not an error."""
    served.need_churn()
    found: dict[str, Person] = {}
    unknown = []
    for customer_id in dict.fromkeys(body.customer_ids):
        person = find_person(conn, customer_id=customer_id)
        if person is None:
            unknown.append(customer_id)
        else:
            found[customer_id] = person
    persons = list({p.person_id: p for p in found.values()}.values())
    answers = churn_now_each(conn, served, persons, now, settings.answer_max_age_hours)
    scores = [
        ChurnScore(customer_id=customer_id, **vars(answers[person.person_id]))
        for customer_id, person in found.items()
    ]
    return ChurnScores(scores=scores, unknown=unknown)


@router.get("/customers/{customer_id}/profile", response_model=Profile, responses=NOT_FOUND)
async def profile(
    customer_id: CustomerIdPath,
    who: Annotated[Caller, Depends(require("profile:read"))],
    served: ServedDep,
    shelf: ShelfDep,
    now: NowDep,
    settings: SettingsDep,
    request: Request,
    store_id: Annotated[
        str | None,
        id_query(
            "Say how many of each wished item are on this store's shelf (default: a "
            "store key's own store)."
        ),
    ] = None,
) -> Profile:
    """The 360 view: identities, channels, recent activity everywhere, open cart,
    wish-list, churn."""
    store = store_id or who.store_id

    def answer() -> Profile:  # every read in one trip to the thread pool
        with for_reads(request.app.state.engine).connect() as conn:
            person = person_or_404(conn, customer_id)
            if store is not None and not shelf.store_exists(store):
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, f"store_id: no store has the id '{store}'"
                )
            return build_profile(conn, served, shelf, customer_id, person, now, settings, store)

    return await off_loop(request, answer)


@router.get("/customers/{customer_id}/export", response_model=PersonExport, responses=NOT_FOUND)
def export_customer(
    customer_id: CustomerIdPath,
    _: Annotated[Caller, Depends(require("admin"))],
    person: CustomerDep,
    conn: ConnDep,
    now: NowDep,
) -> PersonExport:
    """Everything Omni holds about the customer's stitched person (the right of access):
    customer records and consents, identities, every event, the state derived from them,
    stored scores, decisions, contacts and triggers."""
    return PersonExport.model_validate(person_export(conn, person, now))


@router.delete("/customers/{customer_id}", response_model=Erased, responses=NOT_FOUND)
def erase_customer(
    customer_id: CustomerIdPath,
    _: Annotated[Caller, Depends(require("admin"))],
    person: CustomerDep,
    shelf: ShelfDep,
    now: NowDep,
    request: Request,
) -> Erased:
    """Erase the customer: every event, identity and customer record of the stitched
    person. Later training no longer sees them; the served model stops using what it
    learned about them at once."""
    deleted = erase(request.app.state.engine, person, now)
    return Erased(
        customer_id=customer_id,
        events_deleted=deleted,
        ids=[*person.customer_ids, *person.anonymous_ids],
    )
