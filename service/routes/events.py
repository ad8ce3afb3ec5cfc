"""POST /v1/events: the same validation as file ingest, stored once, all or nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import JSONResponse

from features.validation import BatchRejected
from service.auth import Caller, require
from service.deps import off_loop
from service.json_body import FastJSONRoute
from service.schemas import (
    BODY_ERRORS,
    KEY_ERRORS,
    EventBatch,
    EventsAccepted,
    Invalid,
    Problem,
    Rejection,
)
from service.store_keys import store_key_problems

router = APIRouter(prefix="/v1", tags=["events"], responses=KEY_ERRORS, route_class=FastJSONRoute)


@router.post(
    "/events",
    response_model=EventsAccepted,
    responses={
        403: {
            "model": EventsAccepted | Problem,
            "description": "The key lacks the scope (detail), or a store's key sent what it"
            " may not (each event listed; nothing stored).",
        },
        422: {
            "model": EventsAccepted | Invalid,
            "description": "Bad events, each listed (nothing stored); or a body that is not "
            "a batch of events at all (detail).",
        },
        **BODY_ERRORS,
    },
)
async def post_events(
    batch: EventBatch, request: Request, who: Annotated[Caller, Depends(require("events:write"))]
) -> EventsAccepted | JSONResponse:
    """Store a batch of up to 1,000 events; re-sent events (same event_id) count once.

    Every event is checked before anything is written: with any problem the answer is 422
    listing each one (index, field, reason) and nothing of the batch is stored. The write
    is committed before the answer. A store's key (a tablet's) writes only `store` events
    of its store, about known customers, answering offers that exist: else 403, listed.
    """
    metrics = request.app.state.metrics
    if not batch.events:
        return EventsAccepted(accepted=0, duplicates=0, rejected=[])
    if who.store_id is not None:  # a tablet's key: its own store's events only
        refused = await off_loop(request, _refused, batch, request, who.store_id)
        if refused is not None:
            return refused
    try:
        # Written with the batches of other requests that arrive meanwhile, in one
        # transaction (service.group_commit); the answer is this batch's own.
        applied = await request.app.state.intake.submit(batch.events)
    except BatchRejected as rejected:
        body = EventsAccepted(
            accepted=0,
            duplicates=0,
            rejected=[
                Rejection(
                    index=int(e.index) if e.index is not None else -1,
                    event_id=str(e.key) if e.key else None,
                    field=e.field,
                    error=e.message,
                )
                for e in rejected.errors
            ],
        )
        metrics.events.labels("rejected").inc(len(batch.events))
        return JSONResponse(body.model_dump(), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    metrics.events.labels("accepted").inc(applied.stored)
    metrics.events.labels("duplicate").inc(applied.duplicates)
    metrics.events.labels("erased").inc(applied.erased)
    return EventsAccepted(
        accepted=applied.stored,
        duplicates=applied.duplicates,
        erased=applied.erased,
        rejected=[],
    )


def _refused(batch: EventBatch, request: Request, store_id: str) -> JSONResponse | None:
    """A store key's batch listing what it may not send (403), or None when it may."""
    with request.app.state.engine.connect() as conn:
        problems = store_key_problems(conn, request.app.state.shelf, store_id, batch.events)
    if not problems:
        return None
    body = EventsAccepted(
        accepted=0,
        duplicates=0,
        rejected=[Rejection(index=i, event_id=k, field=f, error=e) for i, k, f, e in problems],
    )
    return JSONResponse(body.model_dump(), status_code=status.HTTP_403_FORBIDDEN)
