"""The open cart: what a person added to a cart, in any channel, and has not bought or removed.

A pure function of a person's events before `as_of`. Per item, the units still in the
cart are those added after the item's last purchase, less those removed since; an item
bought in any channel (online, app or a store till) leaves the cart.
"""

from __future__ import annotations

import pandas as pd

from features import columns as c

CART_COLUMNS = [c.PERSON_ID, c.ITEM_ID, c.QUANTITY, "added_at", c.CHANNEL]


def open_cart(events: pd.DataFrame, *, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per (person_id, item_id) still in a cart: units, last added, its channel."""
    return _open_lines(events, as_of)[CART_COLUMNS]


def _open_lines(events: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """`open_cart` plus each line's first add since the item's last purchase."""
    ev = events[(events[c.TS] < as_of) & events[c.PERSON_ID].notna() & events[c.ITEM_ID].notna()]
    kinds = (c.EventType.ADD_TO_CART, c.EventType.REMOVE_FROM_CART, c.EventType.PURCHASE)
    ev = ev[ev[c.TYPE].isin(kinds)]
    if ev.empty:
        return pd.DataFrame(columns=[*CART_COLUMNS, "first_added"])
    keys = [c.PERSON_ID, c.ITEM_ID]
    bought = ev[ev[c.TYPE] == c.EventType.PURCHASE].groupby(keys)[c.TS].max().rename("bought")
    ev = ev.join(bought, on=keys)
    after = ev[ev["bought"].isna() | (ev[c.TS] > ev["bought"])]
    units = after[c.QUANTITY].astype("Float64").fillna(1.0).astype(float)
    sign = (after[c.TYPE] == c.EventType.ADD_TO_CART).astype(float) - (
        after[c.TYPE] == c.EventType.REMOVE_FROM_CART
    ).astype(float)
    # Stable: adds at the same time keep the order they came in (ts, then event_id).
    after = after.assign(units=units * sign).sort_values(c.TS, kind="stable")
    adds = after[after[c.TYPE] == c.EventType.ADD_TO_CART]
    cart = after.groupby(keys)["units"].sum().clip(lower=0).rename(c.QUANTITY).to_frame()
    last_add = adds.groupby(keys).agg(
        added_at=(c.TS, "max"), first_added=(c.TS, "min"), channel=(c.CHANNEL, "last")
    )
    cart = cart.join(last_add, how="inner")
    cart = cart[cart[c.QUANTITY] > 0].reset_index()
    cart[c.QUANTITY] = cart[c.QUANTITY].round().astype(int)
    return cart.sort_values("added_at", ascending=False).reset_index(drop=True)


CARTS_COLUMNS = [c.PERSON_ID, "opened_at", "last_change", c.CHANNEL, "lines"]


def cart_summary(events: pd.DataFrame, *, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per person with an open cart before `as_of`: when the cart was opened (the
    earliest add still in it after the item's last purchase), its last change (the latest
    add or removal of anything), the channel of that change, and its lines as a list of
    (item_id, quantity) pairs, most recently added first.

    A cart is one episode: lines added later join it (same `opened_at`) until everything in
    it is bought or removed.
    """
    cart = _open_lines(events, as_of)
    if cart.empty:
        return pd.DataFrame(columns=CARTS_COLUMNS)
    ev = events[(events[c.TS] < as_of) & events[c.PERSON_ID].isin(cart[c.PERSON_ID].unique())]
    changes = ev[ev[c.TYPE].isin((c.EventType.ADD_TO_CART, c.EventType.REMOVE_FROM_CART))]
    changes = changes.sort_values(c.TS)
    last = changes.groupby(c.PERSON_ID).agg(last_change=(c.TS, "max"), channel=(c.CHANNEL, "last"))
    pairs = list(zip(cart[c.ITEM_ID], cart[c.QUANTITY].astype(int), strict=True))
    lines = pd.Series(pairs, index=cart.index).groupby(cart[c.PERSON_ID], sort=False).agg(list)
    lines = lines.rename("lines")
    summary = (
        cart.groupby(c.PERSON_ID)["first_added"]
        .min()
        .rename("opened_at")
        .to_frame()
        .join(last)
        .join(lines)
        .reset_index()
    )
    return summary[CARTS_COLUMNS]
