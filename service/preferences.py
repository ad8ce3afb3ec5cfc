"""What a person prefers, from their online state: favourite categories and brands (their
share of the person's decayed interest), the channel they buy in, their usual store.

Read from a few rows (the interest and store weights per item and store, the purchase day
rows of the last year), never their events; said in words a store associate can use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from features import columns as c
from service.people import Person
from service.shelf import Shelf
from service.storage import churn_days, interests, kind_weights
from service.storage.codec import DAY, micros

#: Shares below this are not a preference.
MIN_SHARE = 0.15
#: How many favourites of each kind are named.
TOP = 3
#: The window of "the channel they buy in", in days.
CHANNEL_DAYS = 365
#: How a sentence says where something happened ("buys in store", "… by phone").
SAID = {
    c.Channel.WEB.value: "on the web",
    c.Channel.APP.value: "in the app",
    c.Channel.STORE.value: "in store",
    c.Channel.EMAIL.value: "by e-mail",
    c.Channel.CALL_CENTER.value: "by phone",
    c.Channel.SOCIAL.value: "on social media",
}


@dataclass(frozen=True)
class Share:
    name: str
    share: float


@dataclass(frozen=True)
class Preferences:
    categories: list[Share]
    brands: list[Share]
    #: Share of purchase days in each channel over the last year.
    channels: list[Share]
    #: Share of the person's store activity per store (by store id).
    stores: list[Share]
    in_words: list[str]


def preferences(
    conn: Connection,
    shelf: Shelf,
    person: Person,
    now: datetime,
    purchases: churn_days.PurchaseTotals | None = None,
) -> Preferences:
    """The person's preferences now; `purchases`: their purchase totals, when the caller
    has read them with days from `channels_since(now)` (else counted here)."""
    at = micros(now)
    ids = (person.customer_ids, person.anonymous_ids)
    by_category, by_brand = kind_weights.of_person(conn, *ids)
    per_store = interests.store_weights_of(conn, *ids, at)
    if purchases is not None and purchases.days_from == channels_since(now):
        bought = purchases.days
    else:
        bought = churn_days.per_channel(
            conn, *ids, [c.EventType.PURCHASE.value], channels_since(now)
        )
    channels = _shares({ch: float(days) for ch, days in bought.items()})
    stores = _shares({s: w for s, w in per_store.items() if w > 0})
    categories, brands = _shares(by_category), _shares(by_brand)
    places = shelf.places()
    words = []
    if categories:
        words.append("mostly " + _and([f"{s.name} ({_pct(s.share)})" for s in categories]))
    if brands:
        words.append("favourite brand " + _and([f"{s.name} ({_pct(s.share)})" for s in brands]))
    if channels:
        top = channels[0]
        words.append(
            f"buys {SAID.get(top.name, top.name)}"
            + (" only" if top.share == 1 else f" {_pct(top.share)} of the time")
        )
    if stores:
        place = places.get(stores[0].name)
        words.append(f"usual store {place.name if place and place.name else stores[0].name}")
    return Preferences(categories, brands, channels, stores, words)


def channels_since(now: datetime) -> int:
    """The first day (days since 1970) of the purchases the channel shares count."""
    return micros(now) // DAY - CHANNEL_DAYS


def _shares(weights: dict[str, float]) -> list[Share]:
    """The top shares of a total, largest first (ties by name), those worth naming."""
    total = sum(weights.values())
    if total <= 0:
        return []
    ranked = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Share(k, round(v / total, 3)) for k, v in ranked[:TOP] if v / total >= MIN_SHARE]


def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
