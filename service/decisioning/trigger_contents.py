"""What an abandoned-cart trigger carries: the cart lines still in stock online, items
often bought with them, the customer's churn band and an incentive that depends on it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from features import columns as c
from service.churn_scoring import churn_now_each
from service.decisioning.offers import offer_fields, offers_now
from service.people import persons_by_id
from service.serving import ModelUnavailable, Served
from service.settings import Settings
from service.shelf import Item, Shelf

#: Complementary items a trigger carries.
COMPLEMENTS = 3


def contents(
    engine: Engine,
    served: Served,
    shelf: Shelf,
    settings: Settings,
    channel: str,
    page: pd.DataFrame,
    now: datetime,
) -> list[dict[str, object]]:
    """What each trigger carries: cart items in stock, complements, churn band, incentive."""
    if page.empty:
        return []
    catalogue = shelf.items()
    online = shelf.stock(c.ONLINE)
    tracked = bool(online)
    bands = _bands(engine, served, page[c.PERSON_ID].tolist(), now, settings.answer_max_age_hours)
    book = offers_now(shelf.offers(), channel, now)
    bodies = []
    for row in page.to_dict("records"):
        lines = [(str(i), int(q)) for i, q in row["lines"] if not tracked or online.get(i, 0) > 0]
        if not lines:
            continue  # nothing left to sell them
        items = [
            {
                "item_id": i,
                "name": catalogue[i].name if i in catalogue else i,
                "quantity": int(q),
                "in_stock": online.get(i, 0) if tracked else None,
            }
            for i, q in lines
        ]
        cart_items = [i for i, _ in lines]
        band = bands.get(str(row[c.PERSON_ID]))
        bodies.append(
            {
                "trigger_id": str(row["trigger_id"]),
                "cart_id": str(row["cart_id"]),
                "person_id": str(row[c.PERSON_ID]),
                "customer_id": str(row[c.CUSTOMER_ID]),
                "channel": channel,
                "abandoned_at": pd.Timestamp(row["last_change"]).to_pydatetime(),
                "due_at": pd.Timestamp(row["due_at"]).to_pydatetime(),
                "items": items,
                "recommendations": _complements(served, shelf, cart_items, online, tracked),
                "churn_band": band,
                "incentive": _incentive(book, band, cart_items, catalogue, settings),
            }
        )
    return bodies


def _bands(
    engine: Engine, served: Served, ids: list[str], now: datetime, max_age_hours: float
) -> dict[str, str]:
    """Each person's churn band as `GET …/churn` gives it (batch answer or day rows)."""
    if served.churn is None:
        return {}
    try:
        with engine.connect() as conn:
            persons = persons_by_id(conn, ids)
            answers = churn_now_each(conn, served, persons, now, max_age_hours)
    except ModelUnavailable:
        return {}
    return {p: a.band for p, a in answers.items()}


def _complements(
    served: Served, shelf: Shelf, cart: list[str], online: dict[str, int], tracked: bool
) -> list[dict[str, str]]:
    """Items most often chosen with the cart's items, in stock, best first."""
    model = served.recommender
    if model is None or served.neighbours is None:
        return []
    positions = model.items_.positions(cart, missing="skip")
    positions = positions[positions >= 0]
    if len(positions) == 0:
        return []
    near = served.neighbours[positions].T.ravel()  # by closeness, then by cart line
    near = near[near >= 0]
    _, first = np.unique(near, return_index=True)
    ordered = near[np.sort(first)]
    catalogue = shelf.items()
    out = []
    for pos in ordered.tolist():
        item_id = str(model.items_.ids[pos])
        if item_id in cart or (tracked and online.get(item_id, 0) <= 0):
            continue
        known = catalogue.get(item_id)
        out.append(
            {
                "item_id": item_id,
                "name": known.name if known else item_id,
                "reason": "often bought with what is in the cart",
            }
        )
        if len(out) == COMPLEMENTS:
            break
    return out


def _incentive(
    book: pd.DataFrame,
    band: str | None,
    cart: list[str],
    catalogue: Mapping[str, Item],
    settings: Settings,
) -> dict[str, object] | None:
    """Low risk: none (they come back anyway). Medium: the best offer on what is in the
    cart (its items or their categories). In a retention band: a retention incentive,
    else as medium."""
    if band is None or band == "low" or book.empty:
        return None
    categories = {getattr(catalogue.get(i), "category", None) for i in cart}
    on_cart = book[
        book[c.ITEM_ID].isin(cart) | (book[c.ITEM_ID].isna() & book[c.CATEGORY].isin(categories))
    ]
    choices = [on_cart]
    if band in settings.retention_bands:
        choices.insert(0, book[book[c.KIND] == "retention"])
    for choice in choices:
        if len(choice):
            top = choice.sort_values([c.VALUE, c.OFFER_ID], ascending=[False, True]).iloc[0]
            return offer_fields(top.to_dict())
    return None
