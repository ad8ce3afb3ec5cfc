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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, delete, select, update

from features import columns as c
from features.cart import cart_summary
from service.decisioning import contact_policy as policy
from service.decisioning.trigger_contents import contents
from service.experiments.assignment import assign_all, held_out
from service.experiments.assignment import quiet as quiet_experiments
from service.serving import Served
from service.settings import Settings
from service.shelf import Shelf
from service.storage import exposures
from service.storage.codec import micros, moment, to_micros
from service.storage.engine import insert_into
from service.storage.exposures import TRIGGER
from service.storage.reader import recent_events
from service.storage.tables import contacts, triggers

CART_TYPES = (c.EventType.ADD_TO_CART, c.EventType.REMOVE_FROM_CART, c.EventType.PURCHASE)
HANDED, SENT, FAILED = "handed", "sent", "failed"
#: Due to a held-out person: recorded, never handed out.
HELD = "held"


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
    #: Triggers were held back for persons in their quiet hours: the earliest end.
    quiet_until: datetime | None = None


def due(engine: Engine, settings: Settings, channel: str, as_of: datetime) -> pd.DataFrame:
    """Abandoned carts due in `channel` at `as_of`, not yet handed out there, of persons
    who consent to it; oldest due first. Columns: trigger_id, cart_id, person_id,
    customer_id, last_change, due_at, lines."""
    default = settings.cart_windows_minutes.get(channel, 24 * 60)
    oldest = as_of - timedelta(days=settings.cart_max_age_days)
    events = recent_events(engine, since=oldest, until=as_of, types=CART_TYPES)
    events = events[events[c.PERSON_ID].notna()]
    carts = cart_summary(events, as_of=pd.Timestamp(as_of))
    minutes = pd.Series(default, index=carts.index, dtype="int64")
    # An experiment arm may set its own window.
    if not quiet_experiments(settings, as_of) and len(carts):
        people = carts[c.PERSON_ID].astype(str)
        arms = assign_all(people.unique().tolist(), settings, as_of)
        minutes = people.map(lambda p: arms[p].cart_window(channel, default)).astype("int64")
    window = pd.to_timedelta(minutes, unit="min")
    carts = carts[carts["last_change"] + window <= pd.Timestamp(as_of)]
    window = window[carts.index]
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
    if policy.silenced(settings, channel):
        return Pull([], cursor)
    found = due(engine, settings, channel, as_of)
    if after is not None:
        due_at = to_micros(found["due_at"]).astype(int)
        position = list(zip(due_at, found["trigger_id"], strict=True))
        found = found[[p > after for p in position]]
    with engine.connect() as conn:
        people = found[c.PERSON_ID].tolist()
        # In their own night: held back, due again when their quiet hours end.
        quiet = policy.quiet_now(conn, settings, channel, now, people)
        blocked = policy.over_cap(conn, settings, channel, now, people)
    found = found[~found[c.PERSON_ID].isin(blocked) & ~found[c.PERSON_ID].isin(quiet)]
    wakes = min(quiet.values()) if quiet else None
    assigned = (
        {}
        if quiet_experiments(settings, now)
        else assign_all(found[c.PERSON_ID].astype(str).unique().tolist(), settings, now)
    )
    held_by = held_out(assigned, TRIGGER)
    held = found[found[c.PERSON_ID].isin(held_by)]
    found = found[~found[c.PERSON_ID].isin(held_by)]
    page = found if limit is None else found.head(limit)
    bodies = contents(engine, served, shelf, settings, channel, page, now)
    labels = {p: a.labels for p, a in assigned.items()}
    for body in bodies:
        person = str(body["person_id"])
        body["served_id"] = body["trigger_id"]
        body["experiments"] = labels.get(person, {})
        if person in assigned and not assigned[person].incentive:
            body["incentive"] = None
    handed = []
    with engine.begin() as conn:
        policy.take_turn(conn, "contacts")
        # Checked again in this turn: a pull running alongside may have spent them.
        taken = _handed(conn, [*page["trigger_id"], *held["trigger_id"]])
        full = policy.over_cap(conn, settings, channel, now, page[c.PERSON_ID].tolist())
        for body in bodies:
            if body["trigger_id"] in taken or body["person_id"] in full:
                continue
            _store(conn, body, now)
            handed.append(body)
        _hold(conn, held[~held["trigger_id"].isin(taken)], channel, held_by, labels, now)
        exposures.record(conn, _exposures(handed, channel, labels, {}), now)
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
    bodies_out = [{k: v for k, v in b.items() if k != "person_id"} for b in handed]
    return Pull(bodies_out, next_cursor, wakes)


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


def _store(conn: Connection, body: dict[str, object], now: datetime, status: str = "") -> None:
    """Record a trigger as handed out (again, after a failure), or as `status`."""
    row = {
        "trigger_id": body["trigger_id"],
        "cart_id": body["cart_id"],
        c.PERSON_ID: body["person_id"],
        c.CUSTOMER_ID: body["customer_id"],
        c.CHANNEL: body["channel"],
        "due_at": micros(body["due_at"]),  # type: ignore[arg-type]
        "handed_at": micros(now),
        "status": status or HANDED,
        "acked_at": None,
        "payload": json.dumps(body, default=str),
    }
    ins = insert_into(conn, triggers)
    again = {k: ins.excluded[k] for k in ("handed_at", "status", "acked_at", "payload")}
    conn.execute(ins.values(row).on_conflict_do_update(index_elements=["trigger_id"], set_=again))


def _hold(
    conn: Connection,
    held: pd.DataFrame,
    channel: str,
    held_by: dict[str, str],
    labels: dict[str, dict[str, str]],
    now: datetime,
) -> None:
    """Record the triggers of held-out persons as held (never handed out, not counted
    against the caps) and their exposures, at the moment they would have been sent."""
    for row in held.to_dict("records"):
        person = str(row[c.PERSON_ID])
        body = {
            "trigger_id": row["trigger_id"],
            "cart_id": row["cart_id"],
            "person_id": person,
            "customer_id": row[c.CUSTOMER_ID],
            "channel": channel,
            "due_at": row["due_at"].to_pydatetime(),
        }
        _store(conn, body, now, status=HELD)
    exposures.record(conn, _exposures(held.to_dict("records"), channel, labels, held_by), now)


def _exposures(
    made: Iterable[Mapping[Any, Any]],
    channel: str,
    labels: Mapping[str, Mapping[str, str]],
    held_by: Mapping[str, str],
) -> list[exposures.Exposure]:
    """The exposures of triggers (handed out, or held back for the persons in `held_by`):
    each one's served id is its trigger id."""
    rows = []
    for t in made:
        person = str(t[c.PERSON_ID])
        rows.append(
            exposures.Exposure(
                str(t["trigger_id"]),
                person,
                str(t[c.CUSTOMER_ID]),
                TRIGGER,
                channel,
                labels.get(person, {}),
                ref=str(t["trigger_id"]),
                held_by=held_by.get(person),
            )
        )
    return rows


def _handed(conn: Connection, ids: list[str]) -> set[str]:
    """Of `ids`, the triggers handed out (or held back) and not failed."""
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
    token = {
        "as_of": micros(as_of),
        "due": micros(last["due_at"].to_pydatetime()),
        "id": last["trigger_id"],
    }
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[datetime, tuple[int, str]]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        token = json.loads(raw)
        return moment(int(token["as_of"])), (int(token["due"]), str(token["id"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise BadCursor("cursor: not a cursor this service gave out") from exc
