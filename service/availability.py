"""Where an item is: the quantity in every store and online, nearest store first.

Read from the shelf's cached stock (one dictionary per store) and the stores table (where
each store is: coordinates, else a region), so that a store associate with the item in
hand can say "3 at Omni Turin, 12 online" instead of "see the website".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from features import columns as c
from service.shelf import Place, Shelf

#: Mean Earth radius, km.
EARTH_KM = 6371.0


@dataclass(frozen=True)
class Stocked:
    store_id: str
    name: str
    city: str | None
    quantity: int
    #: From the store asked near (None: no coordinates on one side).
    distance_km: float | None


@dataclass(frozen=True)
class Availability:
    item_id: str
    name: str
    near_store_id: str | None
    #: The quantity on the shelf of the store asked near (None: no store given).
    here: int | None
    #: Every store, nearest first (then by name); those not stocking it with 0.
    stores: list[Stocked]
    online: int


def distance_km(a: Place, b: Place) -> float | None:
    """Great-circle distance between two stores (None without both coordinates)."""
    if a.latitude is None or a.longitude is None or b.latitude is None or b.longitude is None:
        return None
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_KM * math.asin(math.sqrt(min(1.0, h)))


def availability(shelf: Shelf, item_id: str, near_store: str | None) -> Availability:
    """The item's stock everywhere. Stores are ordered nearest to `near_store` first: by
    distance where both have coordinates, then those in its region, then the rest; the
    store itself first. Raises KeyError for an unknown item or store."""
    item = shelf.items()[item_id]
    places = shelf.places()
    near = places[near_store] if near_store is not None else None

    def order(place: Place) -> tuple[int, float, str]:
        name = place.name or place.store_id
        if near is None:
            return (2, 0.0, name)
        if place.store_id == near.store_id:
            return (0, 0.0, name)
        km = distance_km(near, place)
        if km is not None:
            return (1, km, name)
        same_region = near.region is not None and place.region == near.region
        return (2 if same_region else 3, 0.0, name)

    listed = [
        Stocked(
            store_id=place.store_id,
            name=place.name or place.store_id,
            city=place.city,
            quantity=shelf.stock(place.store_id).get(item_id, 0),
            distance_km=None if near is None else _rounded(distance_km(near, place)),
        )
        for place in sorted(places.values(), key=order)
    ]
    here = None if near is None else shelf.stock(near.store_id).get(item_id, 0)
    return Availability(
        item_id=item_id,
        name=item.name,
        near_store_id=near_store,
        here=here,
        stores=listed,
        online=shelf.stock(c.ONLINE).get(item_id, 0),
    )


def _rounded(km: float | None) -> float | None:
    return None if km is None else round(km, 1)


def in_words(found: Availability, *, stores: int = 2) -> str:
    """Where else the item is, in a line an associate reads out: "3 at Omni Turin (210 km),
    12 online: order for pickup here"; "" when it is nowhere."""
    elsewhere = [s for s in found.stores if s.quantity > 0 and s.store_id != found.near_store_id]
    parts = [
        f"{s.quantity} at {s.name}" + (f" ({s.distance_km:.0f} km)" if s.distance_km else "")
        for s in elsewhere[:stores]
    ]
    if found.online > 0:
        pickup = ": order for pickup here" if found.near_store_id else ": order online"
        parts.append(f"{found.online} online{pickup}")
    return ", ".join(parts)
