"""Abandoned-cart triggers for outbound channels: pulled once, then acknowledged."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from service.auth import Caller, require
from service.decisioning.contact_policy import OUTBOUND, UnknownChannel
from service.decisioning.schemas import Ack, Acked, Trigger, Triggers
from service.decisioning.triggers import (
    AckConflict,
    BadCursor,
    UnknownTrigger,
    acknowledge,
    pull,
)
from service.deps import NowDep, ServedDep, SettingsDep, ShelfDep, refuse
from service.schemas import BODY_ERRORS, KEY_ERRORS, Problem

router = APIRouter(prefix="/v1/triggers", tags=["triggers"], responses=KEY_ERRORS)
Marketing = Annotated[Caller, Depends(require("marketing"))]


@router.get("/abandoned-carts", response_model=Triggers)
def abandoned_carts(
    _: Marketing,
    served: ServedDep,
    shelf: ShelfDep,
    settings: SettingsDep,
    request: Request,
    now: NowDep,
    channel: Annotated[
        str,
        Query(description="The outbound channel.", json_schema_extra={"enum": list(OUTBOUND)}),
    ],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="From the previous page.")] = None,
) -> Triggers:
    """Carts abandoned in any channel, due for a message in `channel` now.

    Each trigger is handed out once per cart and channel, and counts against the
    customer's contact caps from that moment. Carts bought in any channel (a store till
    included, also when its purchase arrives late), emptied, of customers without consent
    for the channel, or over their caps are left out, and so are customers in the
    channel's quiet hours in their own time zone (the customer's, else their home
    store's, else the setting): `quiet_until` says when the first of them wakes.
    """
    try:
        page = pull(
            request.app.state.engine,
            served,
            shelf,
            settings,
            channel,
            now,
            limit=limit,
            cursor=cursor,
        )
    except (UnknownChannel, BadCursor) as bad:
        field = "cursor" if isinstance(bad, BadCursor) else "channel"
        raise refuse("query", field, str(bad)) from bad
    return Triggers(
        triggers=[Trigger.model_validate(t) for t in page.triggers],
        next_cursor=page.next_cursor,
        quiet_until=page.quiet_until,
    )


@router.post(
    "/{trigger_id}/ack",
    response_model=Acked,
    responses={
        **BODY_ERRORS,
        404: {"model": Problem, "description": "No trigger has this id."},
        409: {"model": Problem, "description": "The trigger was acknowledged otherwise."},
    },
)
def ack(
    trigger_id: str, _: Marketing, request: Request, now: NowDep, body: Ack | None = None
) -> Acked:
    """Say whether the message went out. `failed` gives the contact back and the trigger
    is handed out again at the next pull."""
    outcome = (body or Ack()).outcome
    try:
        done = acknowledge(request.app.state.engine, trigger_id, outcome, now)
    except UnknownTrigger as missing:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(missing)) from missing
    except AckConflict as conflict:
        raise HTTPException(status.HTTP_409_CONFLICT, str(conflict)) from conflict
    return Acked.model_validate(done)
