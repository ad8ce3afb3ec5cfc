"""Where an item is in stock: every store and online, nearest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status

from service.auth import Caller, require
from service.availability import availability, in_words
from service.deps import ShelfDep, id_query
from service.schemas import KEY_ERRORS, ItemAvailability, Problem, StoreStock

router = APIRouter(prefix="/v1", tags=["items"], responses=KEY_ERRORS)
NearStore = Annotated[
    str | None,
    id_query("Order the stores nearest to this one first (default: a store key's own store)."),
]


@router.get(
    "/items/{item_id}/availability",
    response_model=ItemAvailability,
    responses={404: {"model": Problem, "description": "No such item (or store)."}},
)
def item_availability(
    item_id: Annotated[str, Path(min_length=1, max_length=256)],
    who: Annotated[Caller, Depends(require("recommend"))],
    shelf: ShelfDep,
    near_store: NearStore = None,
) -> ItemAvailability:
    """The quantity of the item in every store (nearest to `near_store` first: by
    distance where stores have coordinates, then the same region) and online, with a
    line an associate can read out when it is not on their shelf."""
    near = near_store or who.store_id
    if item_id not in shelf.items():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no item has the id '{item_id}'")
    if near is not None and near not in shelf.places():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"near_store: no store has the id '{near}'")
    found = availability(shelf, item_id, near)
    return ItemAvailability(
        item_id=found.item_id,
        name=found.name,
        near_store_id=found.near_store_id,
        here=found.here,
        online=found.online,
        stores=[StoreStock(**vars(s)) for s in found.stores],
        elsewhere=in_words(found),
    )
