"""API keys and scopes: 401 without a known key, 403 outside the key's scopes or store."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from service.limits import client_of

HEADER = "X-API-Key"
_key_header = APIKeyHeader(name=HEADER, auto_error=False, description="An Omni API key")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's name (logged instead of the key), scopes, bound store."""

    name: str
    scopes: frozenset[str]
    store_id: str | None


async def caller(
    request: Request, key: Annotated[str | None, Security(_key_header)] = None
) -> Caller:
    """The caller behind the request's API key; 401 when it has none or an unknown one,
    429 (whatever the key) for a client that sent too many unknown keys in the last minute."""
    if not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"an API key is required in the {HEADER} header",
            headers={"WWW-Authenticate": HEADER},
        )
    return caller_of_key(request, key)


def caller_of_key(request: Request, key: str) -> Caller:
    """The caller behind `key`, however it came (header, HTTP basic user); 401 for an
    unknown key, 429 for a client that sent too many unknown keys in the last minute."""
    failures = request.app.state.failures
    client = client_of(request)
    # Checked before the key: a guesser over the limit learns nothing, right or wrong.
    wait = failures.retry_after(client)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many unknown API keys from this client: try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    spec = request.app.state.settings.api_keys.get(key)
    if spec is None:
        failures.failed(client)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown API key", headers={"WWW-Authenticate": HEADER}
        )
    return Caller(spec.name, frozenset(spec.scopes), spec.store_id)


def require(scope: str) -> Callable[[Caller], Coroutine[Any, Any, Caller]]:
    """A dependency that lets the request through only with `scope`; 403 otherwise."""

    async def check(who: Annotated[Caller, Depends(caller)]) -> Caller:
        if scope not in who.scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"the key '{who.name}' lacks the scope '{scope}'"
            )
        return who

    return check


def store_for(who: Caller, store_id: str | None) -> str | None:
    """The store a request may see: a store-bound key sees its own store only."""
    if who.store_id is None:
        return store_id
    if store_id is not None and store_id != who.store_id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"the key '{who.name}' serves store '{who.store_id}', not '{store_id}'",
        )
    return who.store_id
