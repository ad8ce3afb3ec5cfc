"""Limits on what a request may send: a body over `settings.max_body_bytes` is refused
with 413 before any of it is parsed (by its Content-Length, or as it streams in), a
refusal never echoes the input back, and a client guessing keys is slowed (429)."""

from __future__ import annotations

import collections
import contextlib
import json
import math
import threading
import time
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware: 413 for a request body over `limit` bytes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            # Over the limit as it streams in: answer 413 now, and tell the app the
            # client left (what it then tries to send is dropped).
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def sending(message: Message) -> None:
            if not refused:
                await send(message)

        with contextlib.suppress(ClientDisconnect):
            await self.app(scope, counted, sending)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"detail": f"the request body is over the limit of {self.limit:,} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())],
            }
        )  # fmt: skip
        await send({"type": "http.response.body", "body": body})


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 for a request that does not fit its model, without the input that
    was sent (a refused 1,000-event batch is not sent back to its sender)."""
    assert isinstance(exc, RequestValidationError)
    problems: list[dict[str, Any]] = [
        {k: v for k, v in error.items() if k not in ("input", "ctx", "url")}
        for error in exc.errors()
    ]
    return JSONResponse({"detail": jsonable_encoder(problems)}, status_code=422)


class FailureLimit:
    """Failed sign-ins and unknown keys per client address, over a sliding minute: past
    `per_minute`, the client is refused (429) until its oldest failure is a minute old.
    Successful requests are never counted or slowed."""

    WINDOW = 60.0

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._failures: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int | None:
        """Seconds until `client` may try again, or None when it may now."""
        now = time.monotonic()
        with self._lock:
            seen = self._failures.get(client)
            if seen is None:
                return None
            while seen and seen[0] <= now - self.WINDOW:
                seen.popleft()
            if not seen:
                del self._failures[client]
                return None
            if len(seen) < self.per_minute:
                return None
            return max(1, math.ceil(seen[0] + self.WINDOW - now))

    def failed(self, client: str) -> None:
        with self._lock:
            if len(self._failures) > 100_000:  # a flood of addresses: forget the oldest
                self._failures.pop(next(iter(self._failures)))
            self._failures.setdefault(client, collections.deque()).append(time.monotonic())


def client_of(request: Request) -> str:
    """The client's address (behind a proxy: run uvicorn with --proxy-headers)."""
    return request.client.host if request.client else "unknown"
