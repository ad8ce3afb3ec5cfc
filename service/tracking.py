"""Segment-spec messages as Omni events: the mapping of the tracking API (version 1).

A web site or an app already sending through Segment, RudderStack or a compatible SDK
points it at Omni; each message becomes zero, one or several Omni events (one per product
of a multi-product event), with ids derived from its `messageId`, so that a retried batch
is stored once. The README's "Sending events from Segment or RudderStack" is the table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, select

from features import columns as c
from features.schema import TABLES
from features.validation import validate
from service.storage.codec import moment
from service.storage.tables import customers
from service.storage.writer import write_batch

VERSION = 1
#: Segment's limits: a message, a whole batch (bytes of JSON).
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
T = c.EventType
#: `track` event names -> the Omni event type each product becomes.
TRACKED: dict[str, T] = {
    "Product Viewed": T.VIEW,
    "Product Clicked": T.VIEW,
    "Product Added": T.ADD_TO_CART,
    "Product Removed": T.REMOVE_FROM_CART,
    "Product Added to Wishlist": T.WISHLIST,
    "Product Removed from Wishlist": T.WISHLIST_REMOVE,
    "Products Searched": T.SEARCH,
    "Order Completed": T.PURCHASE,
    "Order Refunded": T.RETURN,
}


class BadMessage(ValueError):
    """A message Omni cannot read (no type, no id of the person, too large)."""


@dataclass(frozen=True)
class Mapped:
    """What one message becomes."""

    events: list[dict[str, Any]] = field(default_factory=list)
    #: Customer record fields to update (identify traits), with its customer_id.
    traits: dict[str, Any] | None = None
    #: The message's name when no mapping takes it (it is then one `custom` event).
    unmapped: str | None = None


def to_omni(message: Mapping[str, Any], received: datetime) -> Mapped:
    """The Omni events (and customer traits) of one Segment message. Raises `BadMessage`."""
    kind = str(message.get("type") or "")
    user = _text(message.get("userId"))
    anonymous = _text(message.get("anonymousId"))
    if kind == "alias":
        anonymous = _text(message.get("previousId")) or anonymous
    if user is None and anonymous is None:
        raise BadMessage(f"{kind or 'a message'} without userId or anonymousId")
    ts = message.get("timestamp") or message.get("originalTimestamp") or received.isoformat()
    base = {c.TS: str(ts), c.CUSTOMER_ID: user, c.ANONYMOUS_ID: anonymous, **_channel(message)}
    key = _message_key(message)
    if kind in ("identify", "alias"):
        if user is None or anonymous is None:
            traits = _traits(message, user) if kind == "identify" and user else None
            return Mapped([], traits)
        event = {**base, c.EVENT_ID: key, c.TYPE: T.IDENTIFY.value}
        return Mapped([event], _traits(message, user) if kind == "identify" else None)
    properties = message.get("properties") or {}
    if not isinstance(properties, Mapping):
        raise BadMessage("properties must be an object")
    if kind in ("page", "screen"):
        item = _text(properties.get("product_id")) or _text(properties.get("sku"))
        if item is None:
            return _custom(base, key, f"{kind} {message.get('name') or ''}".strip(), None)
        return Mapped([{**base, c.EVENT_ID: key, c.TYPE: T.VIEW.value, c.ITEM_ID: item}])
    if kind != "track":
        return _custom(base, key, kind or "untyped", _text(properties.get("product_id")))
    name = str(message.get("event") or "")
    omni = TRACKED.get(name)
    if omni is None:
        return _custom(base, key, name or "track", _text(properties.get("product_id")))
    if omni is T.SEARCH:
        return Mapped([{**base, c.EVENT_ID: key, c.TYPE: omni.value}])
    products = properties.get("products")
    lines = products if isinstance(products, list) and products else [properties]
    if omni is T.RETURN and not isinstance(products, list):
        return Mapped()
    order = _text(properties.get("order_id"))
    events = []
    for i, line in enumerate(lines):
        if not isinstance(line, Mapping):
            raise BadMessage(f"products[{i}] must be an object")
        events.append(
            {
                **base,
                c.EVENT_ID: key if len(lines) == 1 else f"{key}:{i}",
                c.TYPE: omni.value,
                c.ITEM_ID: _text(line.get("product_id")) or _text(line.get("sku")),
                c.QUANTITY: line.get("quantity", 1 if omni is not T.VIEW else None),
                c.PRICE: line.get("price"),
                c.ORDER_ID: order,
            }
        )
    return Mapped(events)


def _custom(base: dict[str, Any], key: str, name: str, item: str | None) -> Mapped:
    """A message no mapping takes, kept as a `custom` event under its own name."""
    event = {**base, c.EVENT_ID: key, c.TYPE: T.CUSTOM.value, c.EVENT_NAME: name[:128]}
    return Mapped([{**event, c.ITEM_ID: item}], unmapped=name)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value).strip()


def _message_key(message: Mapping[str, Any]) -> str:
    """`seg:<messageId>`; a message without one gets a digest of its content, so that a
    retry of it is still recognised."""
    found = _text(message.get("messageId"))
    if found is None:
        blob = json.dumps(message, sort_keys=True, default=str).encode()
        found = hashlib.sha256(blob).hexdigest()[:32]
    return f"seg:{found}"[:120]


def _channel(message: Mapping[str, Any]) -> dict[str, Any]:
    """The Omni channel: a `store_id` property makes it the store; an app or a device in
    the context (or channel "mobile") the app; else the web."""
    properties = message.get("properties") or {}
    store = _text(properties.get("store_id")) if isinstance(properties, Mapping) else None
    if store is not None:
        return {c.CHANNEL: c.Channel.STORE.value, c.STORE_ID: store}
    context = message.get("context") or {}
    mobile = isinstance(context, Mapping) and (
        context.get("channel") == "mobile" or "app" in context or "device" in context
    )
    return {c.CHANNEL: (c.Channel.APP if mobile else c.Channel.WEB).value}


def _traits(message: Mapping[str, Any], user: str) -> dict[str, Any] | None:
    traits = message.get("traits") or (message.get("context") or {}).get("traits") or {}
    if not isinstance(traits, Mapping):
        raise BadMessage("traits must be an object")
    wanted = {
        c.EMAIL: traits.get("email"),
        c.NAME: traits.get("name"),
        c.CONSENT_EMAIL: traits.get("consent_email"),
        c.CONSENT_SMS: traits.get("consent_sms"),
        c.CONSENT_PUSH: traits.get("consent_push"),
    }
    found = {k: v for k, v in wanted.items() if v is not None}
    return {c.CUSTOMER_ID: user, **found} if found else None


def save_traits(conn: Connection, traits: list[dict[str, Any]]) -> int:
    """Update the customer records of identify traits in the caller's transaction: each
    trait given replaces that field, the others keep their values (a new customer gets
    the schema's defaults). Raises `BatchRejected` naming a bad value. Returns how many
    records were written."""
    if not traits:
        return 0
    merged: dict[str, dict[str, Any]] = {}
    for t in traits:
        merged.setdefault(str(t[c.CUSTOMER_ID]), {}).update(t)
    ids = sorted(merged)
    rows = conn.execute(select(customers).where(customers.c[c.CUSTOMER_ID].in_(ids))).mappings()
    stored = {str(r[c.CUSTOMER_ID]): dict(r) for r in rows}
    records = []
    for cid in ids:
        record = {k: v for k, v in stored.get(cid, {}).items() if v is not None}
        if c.CREATED_AT in record:
            record[c.CREATED_AT] = moment(int(record[c.CREATED_AT]))
        records.append({**record, **merged[cid]})
    schema = TABLES["customers"]
    return write_batch(conn, schema, validate(pd.DataFrame(records), schema)).stored
