"""What a route needs from the running service, as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Connection

from features.validation import CONTROL
from service.auth import Caller, store_for
from service.handoff import Handoff
from service.people import Person, find_person
from service.serving import ModelHolder, Served
from service.settings import Settings
from service.shelf import Shelf

T = TypeVar("T")


async def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


async def served(request: Request) -> Served:
    """The model snapshot this request uses from start to end (a reload cannot change it)."""
    holder: ModelHolder = request.app.state.holder
    return holder.current


async def shelf(request: Request) -> Shelf:
    value: Shelf = request.app.state.shelf
    return value


def connection(request: Request) -> Iterator[Connection]:
    with request.app.state.engine.connect() as conn:
        yield conn


async def now(request: Request) -> datetime:
    settings: Settings = request.app.state.settings
    return settings.now()


def store_of(who: Caller, shelf: Shelf, store_id: str | None) -> str | None:
    """The store a request is about (a store-bound key's own store); 403 for another
    store, 404 for a store nobody knows."""
    store = store_for(who, store_id)
    if store is not None and not shelf.store_exists(store):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"store_id: no store has the id '{store}'")
    return store


def refuse(where: str, name: str, message: str) -> RequestValidationError:
    """A 422 for one parameter, in the body every other 422 has (`detail`: a list of
    problems with `loc`, `msg` and `type`)."""
    return RequestValidationError([{"type": "value_error", "loc": (where, name), "msg": message}])


#: An id in a query (a store, an anonymous visitor, a category): as the event schema
#: allows ids, 1 to 256 characters without a control character.
ID_PATTERN = f"^[^{CONTROL.removeprefix('[').removesuffix(']')}]+$"


def id_query(description: str) -> Any:
    return Query(min_length=1, max_length=256, pattern=ID_PATTERN, description=description)


#: A customer id in a path, as the event schema allows it: 256 characters at most, no
#: control character (a NUL would reach the database).
CustomerIdPath = Annotated[
    str,
    Path(max_length=256, pattern=ID_PATTERN, description="A customer id."),
]


def person_or_404(conn: Connection, customer_id: str) -> Person:
    """The stitched person behind a customer id; 404 when nobody has it."""
    person = find_person(conn, customer_id=customer_id)
    if person is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer has the id '{customer_id}'")
    return person


def customer(
    customer_id: CustomerIdPath, conn: Annotated[Connection, Depends(connection)]
) -> Person:
    """The stitched person behind the path's customer id; 404 when nobody has it."""
    return person_or_404(conn, customer_id)


ServedDep = Annotated[Served, Depends(served)]
ShelfDep = Annotated[Shelf, Depends(shelf)]
ConnDep = Annotated[Connection, Depends(connection)]
NowDep = Annotated[datetime, Depends(now)]
CustomerDep = Annotated[Person, Depends(customer)]
SettingsDep = Annotated[Settings, Depends(settings)]


async def off_loop(request: Request, work: Callable[..., T], *args: Any) -> T:
    """`work(*args)` in the service's request threads, off the event loop
    (`service.handoff`): what a route runs that reads or writes the database."""
    handoff: Handoff = request.app.state.handoff
    return await handoff.run(work, *args)
