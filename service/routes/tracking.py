"""The Segment-compatible tracking API: `/v1/batch`, `/v1/track`, `/v1/identify`,
`/v1/page`, `/v1/screen`, `/v1/alias`, as the Segment HTTP tracking API takes them.

The write key is the HTTP basic user (as every Segment and RudderStack SDK sends it) and
must be an Omni key with `events:write`. A batch is all or nothing: one message Omni
cannot read, one event that breaks a rule, and nothing is stored (400 naming the message
and the field). Errors come in Segment's shape (`success`, `code`, `message`).
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Request, Security, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import Connection

from features.validation import BatchRejected
from service.auth import caller_of_key
from service.deps import off_loop
from service.intake import accept_events
from service.schemas import Problem
from service.storage.writer import Applied
from service.tracking import MAX_BATCH_BYTES, MAX_MESSAGE_BYTES, BadMessage, save_traits, to_omni

router = APIRouter(prefix="/v1", tags=["tracking"])
_basic = HTTPBasic(auto_error=False, description="The write key as the user, no password")


class Tracked(BaseModel):
    success: bool = True
    accepted: int = Field(description="Omni events stored.")
    duplicates: int = Field(description="Events stored before (a retried batch).")
    unmapped: int = Field(
        description="Messages no mapping takes, stored as `custom` events under their name."
    )
    customers: int = Field(description="Customer records updated from identify traits.")


class Failed(BaseModel):
    """An error as the Segment API answers it (the SDKs read `code` and `message`)."""

    success: bool = False
    code: str
    message: str


_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 429: "rate_limited"}


class SegmentMessage(BaseModel):
    """A Segment message as the tracking API reads it (other fields are kept, unread)."""

    model_config = ConfigDict(extra="allow")
    type: Literal["track", "identify", "page", "screen", "alias", "group"] | None = None
    messageId: str | None = Field(None, max_length=100)
    userId: str | None = Field(None, max_length=256)
    anonymousId: str | None = Field(None, max_length=256)
    previousId: str | None = Field(None, max_length=256)
    event: str | None = Field(None, max_length=256)
    name: str | None = Field(None, max_length=256)
    timestamp: str | None = Field(None, max_length=64)
    originalTimestamp: str | None = Field(None, max_length=64)
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None


_MESSAGE = SegmentMessage.model_json_schema()
_MESSAGES = TypeAdapter(list[SegmentMessage])


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


BATCH_BODY = _body(
    {"type": "object", "required": ["batch"],
     "properties": {"batch": {"type": "array", "items": _MESSAGE}}}
)  # fmt: skip
MESSAGE_BODY = _body(_MESSAGE)
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Failed, "description": "Not a batch Omni can read, or a bad event."},
    401: {"model": Failed, "description": "No write key, or one Omni does not know."},
    403: {"model": Failed, "description": "The key may not write events here."},
    413: {"model": Problem, "description": "A body over the service's limit."},
    429: {"model": Failed, "description": "Too many unknown keys from this client."},
}


def _failed(code: int, message: str) -> JSONResponse:
    return JSONResponse(
        Failed(code=_CODES.get(code, "error"), message=message).model_dump(), status_code=code
    )


@router.post("/batch", response_model=Tracked, responses=RESPONSES, openapi_extra=BATCH_BODY)
async def batch(
    request: Request, basic: Annotated[HTTPBasicCredentials | None, Security(_basic)] = None
) -> Tracked | JSONResponse:
    """A batch of Segment messages (`{"batch": [...]}`), gzip or plain JSON."""
    return await _take(request, basic, None)


def _single(kind: str) -> Any:
    async def one(
        request: Request, basic: Annotated[HTTPBasicCredentials | None, Security(_basic)] = None
    ) -> Tracked | JSONResponse:
        return await _take(request, basic, kind)

    one.__doc__ = f"One Segment `{kind}` message."
    one.__name__ = kind
    return one


for _kind in ("track", "identify", "page", "screen", "alias"):
    router.post(
        f"/{_kind}", response_model=Tracked, responses=RESPONSES, openapi_extra=MESSAGE_BODY
    )(_single(_kind))


async def _take(
    request: Request, basic: HTTPBasicCredentials | None, kind: str | None
) -> Tracked | JSONResponse:
    if basic is None or not basic.username:
        return _failed(status.HTTP_401_UNAUTHORIZED, "a write key is required (HTTP basic user)")
    try:
        who = caller_of_key(request, basic.username)
    except HTTPException as refused:
        answer = _failed(refused.status_code, str(refused.detail))
        answer.headers.update(refused.headers or {})
        return answer
    if "events:write" not in who.scopes:
        return _failed(status.HTTP_403_FORBIDDEN, f"the key '{who.name}' lacks 'events:write'")
    if who.store_id is not None:
        return _failed(status.HTTP_403_FORBIDDEN, "a store's key cannot use the tracking API")
    raw = await request.body()
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            return _failed(status.HTTP_400_BAD_REQUEST, "the body is not valid gzip")
    if len(raw) > MAX_BATCH_BYTES:
        return _failed(status.HTTP_400_BAD_REQUEST, f"the batch is over {MAX_BATCH_BYTES} bytes")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _failed(status.HTTP_400_BAD_REQUEST, "the body is not JSON")
    if not isinstance(body, dict):
        return _failed(status.HTTP_400_BAD_REQUEST, "the body must be a JSON object")
    given = body.get("batch") if kind is None else [body]
    try:
        read = _MESSAGES.validate_python(given)
    except ValidationError as exc:
        problem = exc.errors()[0]
        loc = problem["loc"]
        if kind is None:
            where = "batch" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
        else:
            where = ".".join(str(p) for p in loc[1:]) or kind
        return _failed(status.HTTP_400_BAD_REQUEST, f"{where}: {problem['msg']}")
    messages = [m.model_dump(exclude_none=True) for m in read]
    if kind is not None:  # the path says what it is, whatever the body's `type`
        messages = [{**m, "type": kind} for m in messages]
    received = datetime.now(UTC)
    events: list[dict[str, Any]] = []
    traits: list[dict[str, Any]] = []
    unmapped: list[str] = []
    for i, message in enumerate(messages):
        where = f"batch[{i}]" if kind is None else kind
        if len(json.dumps(message, default=str).encode()) > MAX_MESSAGE_BYTES:
            return _failed(status.HTTP_400_BAD_REQUEST, f"{where}: over {MAX_MESSAGE_BYTES} bytes")
        try:
            mapped = to_omni(message, received)
        except BadMessage as exc:
            return _failed(status.HTTP_400_BAD_REQUEST, f"{where}: {exc}")
        events += mapped.events
        traits += [mapped.traits] if mapped.traits else []
        unmapped += [mapped.unmapped] if mapped.unmapped is not None else []
    settings = request.app.state.settings
    if unmapped and settings.tracking_unmapped == "refuse":
        names = ", ".join(sorted(set(unmapped)))
        return _failed(status.HTTP_400_BAD_REQUEST, f"messages no mapping takes: {names}")
    engine = request.app.state.engine

    def store() -> Tracked:
        updated = []  # customer records and events in one transaction: all or nothing

        def write_traits(conn: Connection) -> None:
            updated.append(save_traits(conn, traits))

        applied = accept_events(engine, events, also=write_traits if traits else None)
        return tracked(applied, sum(updated))

    def tracked(applied: Applied, customers: int) -> Tracked:
        return Tracked(
            accepted=applied.stored,
            duplicates=applied.duplicates,
            unmapped=len(unmapped),
            customers=customers,
        )

    try:
        if traits or not events:
            return await off_loop(request, store)
        # Events alone (a track, page or screen call, sent one by one as they happen):
        # written with the other event requests that arrive meanwhile (group_commit).
        return tracked(await request.app.state.intake.submit(events), 0)
    except BatchRejected as rejected:
        first = rejected.errors[0]
        return _failed(
            status.HTTP_400_BAD_REQUEST,
            f"event {first.key or first.index}: field '{first.field}': {first.message}"
            + (f" (and {len(rejected.errors) - 1} more)" if len(rejected.errors) > 1 else ""),
        )
