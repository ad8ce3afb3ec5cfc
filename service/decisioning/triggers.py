"""Abandoned-cart triggers: found from the cart events at pull time, handed out once.

A cart (features.cart.cart_summary: adds, removals and purchases of a person in every
channel) is abandoned for a channel when its last change is older than the channel's
window (settings.cart_windows_minutes) and younger than settings.cart_max_age_days.
Everything is read when the pull happens, so a store purchase that reaches Omni late,
with an earlier timestamp, still empties the cart before any message goes out.

A trigger is one cart in one channel (`trigger_id`). Handing it out records it in the
`triggers` table and a contact against the caps, in one turn of the contacts ledger; it
is never handed out again unless the sender acknowledges it as failed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from features import columns as c
from features.cart import cart_summary
from service.churn_scoring import churn_for_many
from service.decisioning import contact_policy as policy
from service.decisioning.offers import offer_fields, offers_now
from service.people import people_events, persons_by_id
from service.serving import ModelUnavailable, Served
from service.settings import Settings
from service.shelf import Item, Shelf
from service.storage.codec import micros, moment
from service.storage.engine import dialect_of
from service.storage.reader import recent_events
from service.storage.tables import contacts, triggers

CART_TYPES = (c.EventType.ADD_TO_CART, c.EventType.REMOVE_FROM_CART, c.EventType.PURCHASE)
#: Complementary items a trigger carries.
COMPLEMENTS = 3
HANDED, SENT, FAILED = "handed", "sent", "failed"


class BadCursor(ValueError):
    """A cursor this service did not give out."""


class UnknownTrigger(LookupError):
    """No trigger has this id."""


class AckConflict(ValueError):
    """An acknowledgement that contradicts an earlier one."""


@dataclass(frozen=True)
class Pull:
    """One page of triggers handed out, and where the next page starts."""

    triggers: list[dict[str, object]]
    next_cursor: str | None
    quiet_until: datetime | None = None


def due(engine: Engine, settings: Settings, channel: str, as_of: datetime) -> pd.DataFrame:
    """Abandoned carts due in `channel` at `as_of`, not yet handed out there, of persons
    who consent to it; oldest due first. Columns: trigger_id, cart_id, person_id,
    customer_id, last_change, due_at, lines."""
    window = timedelta(minutes=settings.cart_windows_minutes.get(channel, 24 * 60))
    oldest = as_of - timedelta(days=settings.cart_max_age_days)
    events = recent_events(engine, since=oldest, until=as_of, types=CART_TYPES)
    events = events[events[c.PERSON_ID].notna()]
    carts = cart_summary(events, as_of=pd.Timestamp(as_of))
    carts = carts[carts["last_change"] + window <= pd.Timestamp(as_of)]
    if carts.empty:
        return carts.assign(trigger_id=[], cart_id=[], customer_id=[], due_at=[])
    cart_ids = [
        _digest(p, micros(t.to_pydatetime()))
        for p, t in zip(carts[c.PERSON_ID], carts["opened_at"], strict=True)
    ]
    carts = carts.assign(
        cart_id=cart_ids,
        trigger_id=[_digest(cart, channel) for cart in cart_ids],
        due_at=carts["last_change"] + window,
    )
    with engine.connect() as conn:
        handed = _handed(conn, carts["trigger_id"].tolist())
        reachable = policy.consenting(conn, channel, carts[c.PERSON_ID].tolist())
    carts = carts[~carts["trigger_id"].isin(handed) & carts[c.PERSON_ID].isin(reachable.index)]
    carts = carts.assign(**{c.CUSTOMER_ID: carts[c.PERSON_ID].map(reachable)})
    return carts.sort_values(["due_at", "trigger_id"], ignore_index=True)


def pull(
    engine: Engine,
    served: Served,
    shelf: Shelf,
    settings: Settings,
    channel: str,
    now: datetime,
    *,
    limit: int | None,
    cursor: str | None = None,
) -> Pull:
    """Hand out up to `limit` due triggers (every one with None), recording each and its
    contact. A cursor continues the pull it came from: same instant, next page."""
    policy.outbound(channel)
    as_of, after = _read_cursor(cursor) if cursor else (now, None)
    quiet = policy.quiet_until(settings, channel, now)
    if quiet is not None or policy.silenced(settings, channel):
        return Pull([], cursor, quiet)
    found = due(engine, settings, channel, as_of)
    if after is not None:
        position = list(zip(found["due_at"].map(_micros_of), found["trigger_id"], strict=True))
        found = found[[p > after for p in position]]
    with engine.connect() as conn:
        blocked = policy.over_cap(conn, settings, channel, now, found[c.PERSON_ID].tolist())
    found = found[~found[c.PERSON_ID].isin(blocked)]
    page = found if limit is None else found.head(limit)
    bodies = _bodies(engine, served, shelf, settings, channel, page, now)
    handed = []
    with engine.begin() as conn:
        policy.take_turn(conn, "contacts")
        # Checked again in this turn: a pull running alongside may have spent them.
        taken = _handed(conn, page["trigger_id"].tolist())
        full = policy.over_cap(conn, settings, channel, now, page[c.PERSON_ID].tolist())
        for body in bodies:
            if body["trigger_id"] in taken or body["person_id"] in full:
                continue
            _store(conn, body, now)
            handed.append(body)
        policy.record(
            conn,
            [
                policy.Contact(
                    str(b["person_id"]),
                    str(b["customer_id"]),
                    channel,
                    "trigger",
                    str(b["trigger_id"]),
                )
                for b in handed
            ],
            now,
        )
    more = limit is not None and len(found) > limit and len(page) > 0
    last = page.iloc[-1] if len(page) else None
    next_cursor = _cursor(as_of, last) if more and last is not None else None
    return Pull([{k: v for k, v in b.items() if k != "person_id"} for b in handed], next_cursor)


def acknowledge(engine: Engine, trigger_id: str, outcome: str, now: datetime) -> dict[str, object]:
    """Mark a handed-out trigger sent, or failed (its contact no longer counts and the
    next pull hands it out again). Repeating an acknowledgement changes nothing; failed
    after sent (or sent after failed) raises `AckConflict`."""
    with engine.begin() as conn:
        policy.take_turn(conn, "contacts")
        row = conn.execute(
            select(triggers.c.status, triggers.c.acked_at).where(
                triggers.c.trigger_id == trigger_id
            )
        ).first()
        if row is None:
            raise UnknownTrigger(f"no trigger has the id '{trigger_id}'")
        status, acked_at = row
        if status == outcome:
            return {"trigger_id": trigger_id, "status": status, "acked_at": moment(acked_at)}
        if status != HANDED:
            raise AckConflict(f"trigger '{trigger_id}' was already acknowledged as {status}")
        conn.execute(
            update(triggers)
            .where(triggers.c.trigger_id == trigger_id)
            .values(status=outcome, acked_at=micros(now))
        )
        if outcome == FAILED:
            conn.execute(
                delete(contacts).where(
                    contacts.c.ref == trigger_id, contacts.c[c.KIND] == "trigger"
                )
            )
    return {"trigger_id": trigger_id, "status": outcome, "acked_at": now}


def _micros_of(value: pd.Timestamp) -> int:
    return micros(value.to_pydatetime())


def _bodies(
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
    bands = _bands(engine, served, page[c.PERSON_ID].tolist(), now)
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


def _bands(engine: Engine, served: Served, ids: list[str], now: datetime) -> dict[str, str]:
    if served.churn is None:
        return {}
    with engine.connect() as conn:
        persons = persons_by_id(conn, ids)
        events = people_events(conn, persons)
    try:
        answers = churn_for_many(served, events, [p.person_id for p in persons], now)
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


def _store(conn: Connection, body: dict[str, object], now: datetime) -> None:
    """Record a trigger as handed out (again, after a failure)."""
    row = {
        "trigger_id": body["trigger_id"],
        "cart_id": body["cart_id"],
        c.PERSON_ID: body["person_id"],
        c.CUSTOMER_ID: body["customer_id"],
        c.CHANNEL: body["channel"],
        "due_at": micros(body["due_at"]),  # type: ignore[arg-type]
        "handed_at": micros(now),
        "status": HANDED,
        "acked_at": None,
        "payload": json.dumps(body, default=str),
    }
    ins = (postgresql.insert if dialect_of(conn) == "postgresql" else sqlite.insert)(triggers)
    again = {k: ins.excluded[k] for k in ("handed_at", "status", "acked_at", "payload")}
    conn.execute(ins.values(row).on_conflict_do_update(index_elements=["trigger_id"], set_=again))


def _handed(conn: Connection, ids: list[str]) -> set[str]:
    """Of `ids`, the triggers handed out and not failed."""
    if not ids:
        return set()
    return set(
        conn.execute(
            select(triggers.c.trigger_id).where(
                triggers.c.trigger_id.in_(ids), triggers.c.status != FAILED
            )
        ).scalars()
    )


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:24]


def _cursor(as_of: datetime, last: pd.Series) -> str:
    token = {"as_of": micros(as_of), "due": _micros_of(last["due_at"]), "id": last["trigger_id"]}
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[datetime, tuple[int, str]]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        token = json.loads(raw)
        return moment(int(token["as_of"])), (int(token["due"]), str(token["id"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise BadCursor("cursor: not a cursor this service gave out") from exc
