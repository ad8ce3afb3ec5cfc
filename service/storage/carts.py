"""Online cart state: per id, what it last bought of each item and the cart moves since.

The same rule as `features.cart.open_cart` (tests hold the two equal): per item, the
units still in a person's cart are those added after the item's last purchase in any
channel under any of their ids, less those removed since. Written with the events that
change it (`apply`, newly stored events only), rebuilt from the event log (`rebuild`),
read per person from a few rows (`open_lines`): never the person's whole history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, literal, or_, select

from features import columns as c
from service.storage.engine import fetch_all, greatest_least, insert_into, run_many
from service.storage.ids import ID_COLUMNS, by_kind, ids_of, of_ids, of_kind, read_ids
from service.storage.tables import bought, cart_moves, events, identities

_SIGN = {c.EventType.ADD_TO_CART.value: 1.0, c.EventType.REMOVE_FROM_CART.value: -1.0}


@dataclass(frozen=True)
class Line:
    """One open cart line: units, the latest add (and its channel), the first add since
    the item's last purchase (microseconds, UTC)."""

    item_id: str
    quantity: int
    added_at: int
    first_added: int
    channel: str


def apply(conn: Connection, stored: Iterable[Mapping[str, Any]]) -> None:
    """Fold newly stored events (times in microseconds) into the cart state, inside the
    caller's transaction."""
    rows = [r for r in stored if r.get(c.ITEM_ID) is not None]
    purchases: dict[tuple[str, str, str], int] = {}
    for row in rows:
        if row[c.TYPE] == c.EventType.PURCHASE:
            for kind, value in ids_of(row):
                key = (kind, value, row[c.ITEM_ID])
                purchases[key] = max(purchases.get(key, row[c.TS]), row[c.TS])
    if purchases:
        run_many(conn, _upsert_bought, [
            {c.ID_TYPE: k, c.ID_VALUE: v, c.ITEM_ID: i, "last_ts": ts}
            for (k, v, i), ts in sorted(purchases.items())
        ])  # fmt: skip
    moves = [
        (kind, value, row) for row in rows if row[c.TYPE] in _SIGN for kind, value in ids_of(row)
    ]
    if moves:
        keys = sorted({(k, v, row[c.ITEM_ID]) for k, v, row in moves})
        last = dict(_bought(conn, keys))
        new = [
            {c.ID_TYPE: k, c.ID_VALUE: v, c.ITEM_ID: row[c.ITEM_ID], c.EVENT_ID: row[c.EVENT_ID],
             c.TS: row[c.TS], "units": _SIGN[row[c.TYPE]] * float(row[c.QUANTITY] or 1),
             c.CHANNEL: row[c.CHANNEL]}
            for k, v, row in moves
            if row[c.TS] > last.get((k, v, row[c.ITEM_ID]), -(2**62))
        ]  # fmt: skip
        if new:
            run_many(conn, _insert_moves, new)
    if purchases:  # a purchase closes the item's line: its moves up to then are gone
        run_many(conn, _delete_bought_moves, [
            {"kind": k, "value": v, "item": i, "until": ts}
            for (k, v, i), ts in sorted(purchases.items())
        ])  # fmt: skip


def _insert_moves(conn: Connection) -> Any:
    return insert_into(conn, cart_moves)


def _delete_bought_moves(conn: Connection) -> Any:
    """Delete an id's moves of an item at or before a purchase of it."""
    move = cart_moves.c
    return delete(cart_moves).where(
        move[c.ID_TYPE] == bindparam("kind"),
        move[c.ID_VALUE] == bindparam("value"),
        move[c.ITEM_ID] == bindparam("item"),
        move[c.TS] <= bindparam("until"),
    )


def _upsert_bought(conn: Connection) -> Any:
    insert = insert_into(conn, bought)
    greatest, _ = greatest_least(conn)
    return insert.on_conflict_do_update(
        index_elements=[c.ID_TYPE, c.ID_VALUE, c.ITEM_ID],
        set_={"last_ts": greatest(bought.c.last_ts, insert.excluded.last_ts)},
    )


def _bought(
    conn: Connection, keys: list[tuple[str, str, str]]
) -> list[tuple[tuple[str, str, str], int]]:
    """The last purchase time of these (id kind, id, item) keys that have one; read by
    primary-key prefix per kind of id (row-value IN lists are scanned by SQLite)."""
    wanted = set(keys)
    out: list[tuple[tuple[str, str, str], int]] = []
    for kind in {k for k, _, _ in keys}:
        values = sorted({v for k, v, _ in keys if k == kind})
        items = sorted({i for k, _, i in keys if k == kind})
        found = fetch_all(conn, _BOUGHT_OF, {"kind": kind, "ids": values, "items": items})
        out.extend(
            ((kind, str(v), str(i)), int(ts)) for v, i, ts in found if (kind, v, i) in wanted
        )
    return out


def last_bought(
    conn: Connection,
    customer_ids: Iterable[str],
    anonymous_ids: Iterable[str],
    items: Iterable[str] | None = None,
) -> dict[str, int]:
    """When the person with these ids last bought each item they ever bought (of `items`
    only, when given), by item (microseconds): a row per item and id, never their events."""
    found: dict[str, int] = {}
    if items is None:
        rows = read_ids(conn, _BOUGHT, customer_ids, anonymous_ids)
    else:
        rows = read_ids(conn, _BOUGHT_ITEMS, customer_ids, anonymous_ids, items=sorted(items))
    for item, ts in rows:
        found[str(item)] = max(int(ts), found.get(str(item), int(ts)))
    return found


_BOUGHT = select(bought.c[c.ITEM_ID], bought.c.last_ts).where(of_ids(bought))
_BOUGHT_ITEMS = _BOUGHT.where(bought.c[c.ITEM_ID].in_(bindparam("items", expanding=True)))
_BOUGHT_OF = select(bought.c[c.ID_VALUE], bought.c[c.ITEM_ID], bought.c.last_ts).where(
    *of_kind(bought), bought.c[c.ITEM_ID].in_(bindparam("items", expanding=True))
)


def last_bought_by_person(conn: Connection) -> list[tuple[str, str, int]]:
    """(person_id, item_id, last_ts) for every known person and item they bought: what
    `last_bought` says of each person, in one read (a batch deciding for many persons)."""
    rows = conn.execute(
        select(identities.c[c.PERSON_ID], bought.c[c.ITEM_ID], func.max(bought.c.last_ts))
        .join(
            identities,
            (identities.c[c.ID_TYPE] == bought.c[c.ID_TYPE])
            & (identities.c[c.ID_VALUE] == bought.c[c.ID_VALUE]),
        )
        .group_by(identities.c[c.PERSON_ID], bought.c[c.ITEM_ID])
    ).all()
    return [(str(p), str(i), int(ts)) for p, i, ts in rows]


def rebuild(conn: Connection) -> None:
    """Recompute the cart state of every id from the event log."""
    conn.execute(delete(cart_moves))
    conn.execute(delete(bought))
    for kind, column in ID_COLUMNS.items():
        ids = events.c[column]
        item, ts = events.c[c.ITEM_ID], events.c[c.TS]
        last = (
            select(ids.label("who"), item.label("item"), func.max(ts).label("ts"))
            .where(ids.is_not(None), item.is_not(None),
                   events.c[c.TYPE] == c.EventType.PURCHASE.value)
            .group_by(ids, item)
            .subquery()
        )  # fmt: skip
        conn.execute(
            bought.insert().from_select(
                [c.ID_TYPE, c.ID_VALUE, c.ITEM_ID, "last_ts"],
                select(literal(kind), last.c.who, last.c.item, last.c.ts),
            )
        )
        done = bought.alias("done")
        moves = (
            select(
                literal(kind), ids, events.c[c.ITEM_ID], events.c[c.EVENT_ID], events.c[c.TS],
                func.coalesce(events.c[c.QUANTITY], 1)
                * _sign_of(events.c[c.TYPE]),
                events.c[c.CHANNEL],
            )
            .select_from(events.outerjoin(done, and_(
                done.c[c.ID_TYPE] == kind, done.c[c.ID_VALUE] == ids,
                done.c[c.ITEM_ID] == events.c[c.ITEM_ID])))
            .where(ids.is_not(None), events.c[c.ITEM_ID].is_not(None),
                   events.c[c.TYPE].in_(list(_SIGN)),
                   or_(done.c.last_ts.is_(None), events.c[c.TS] > done.c.last_ts))
        )  # fmt: skip
        conn.execute(
            cart_moves.insert().from_select(
                [c.ID_TYPE, c.ID_VALUE, c.ITEM_ID, c.EVENT_ID, c.TS, "units", c.CHANNEL], moves
            )
        )


_ADDED = select(cart_moves.c[c.ITEM_ID]).where(
    of_ids(cart_moves),
    cart_moves.c[c.TS] >= bindparam("since"),
    cart_moves.c[c.TS] <= bindparam("until"),
    cart_moves.c.units > 0,
)
#: The items added to from `since` on, by their latest add, newest first (then by id): a
#: page of `n` from `skip` on.
_LATEST_ADDED = (
    select(cart_moves.c[c.ITEM_ID], func.max(cart_moves.c[c.TS]))
    .where(
        of_ids(cart_moves),
        cart_moves.c[c.TS] >= bindparam("since"),
        cart_moves.c[c.TS] <= bindparam("until"),
        cart_moves.c.units > 0,
    )
    .group_by(cart_moves.c[c.ITEM_ID])
    .order_by(func.max(cart_moves.c[c.TS]).desc(), cart_moves.c[c.ITEM_ID])
    .limit(bindparam("n"))
    .offset(bindparam("skip"))
)
_MOVE_COLUMNS = (
    cart_moves.c[c.ITEM_ID], cart_moves.c[c.EVENT_ID], cart_moves.c[c.TS], cart_moves.c.units,
    cart_moves.c[c.CHANNEL],
)  # fmt: skip
_MOVES = select(*_MOVE_COLUMNS).where(of_ids(cart_moves), cart_moves.c[c.TS] <= bindparam("until"))
#: The moves of a few items, read by the key (id, item): with no bound on the time in the
#: query (the caller drops the moves after `until`), SQLite cannot choose the (id, time)
#: index instead and walk every move the person has left.
_MOVES_OF = select(*_MOVE_COLUMNS).where(
    of_ids(cart_moves), cart_moves.c[c.ITEM_ID].in_(bindparam("items", expanding=True))
)


def _sign_of(kind: Any) -> Any:
    from sqlalchemy import case

    return case((kind == c.EventType.ADD_TO_CART.value, 1.0), else_=-1.0)


def open_lines(
    conn: Connection,
    customer_ids: Iterable[str],
    anonymous_ids: Iterable[str],
    *,
    until: int,
    since: int | None = None,
    most: int | None = None,
) -> list[Line]:
    """The open cart of the person with these ids from the moves up to `until` (inclusive),
    most recently added first (then by item id); with `since`, only the lines added to at
    or after it (read from the moves of those items alone, not from every line the person
    ever left); with `most`, only the `most` lines added to last, read from the moves of
    their items alone, a page of items at a time (what a page shows, however busy the
    person's cart).

    The state is the cart now: a stored purchase closes the item's line whatever its time,
    also one stamped after `until` (a till's clock ahead of the service's; the item is
    bought). `features.cart.open_cart(as_of=...)` is the rule as of a past moment, for
    training: it leaves out purchases after that moment."""
    customer_ids, anonymous_ids = list(customer_ids), list(anonymous_ids)
    if most is not None:
        return _latest_lines(conn, customer_ids, anonymous_ids, until, since, most)
    recent: list[str] | None = None
    if since is not None:
        added = read_ids(conn, _ADDED, customer_ids, anonymous_ids, since=since, until=until)
        recent = sorted({str(item) for (item,) in added})
        if not recent:
            return []
    rows = (
        read_ids(conn, _MOVES, customer_ids, anonymous_ids, until=until)
        if recent is None
        else _moves_of(conn, customer_ids, anonymous_ids, recent, until)
    )
    return _lines(conn, customer_ids, anonymous_ids, rows, since)


def _latest_lines(
    conn: Connection,
    customer_ids: list[str],
    anonymous_ids: list[str],
    until: int,
    since: int | None,
    most: int,
) -> list[Line]:
    """`open_lines` with `most`: the items are taken by their latest add, newest first, a
    page of `most` at a time, until `most` of them are open lines (an item added to and
    then removed, or bought, is no line) or none are left."""
    found: list[Line] = []
    params = {"since": -(2**62) if since is None else since, "until": until, "n": most}
    skip = 0
    while len(found) < most:
        page = [str(item) for item, _ in read_ids(
            conn, _LATEST_ADDED, customer_ids, anonymous_ids, skip=skip, **params
        )]  # fmt: skip
        if not page:
            break
        rows = _moves_of(conn, customer_ids, anonymous_ids, page, until)
        found.extend(_lines(conn, customer_ids, anonymous_ids, rows, since))
        if len(page) < most:
            break
        skip += most
    return sorted(found, key=_newest_first)[:most]


def _moves_of(
    conn: Connection,
    customer_ids: list[str],
    anonymous_ids: list[str],
    items: list[str],
    until: int,
) -> list[tuple[Any, ...]]:
    return [
        row
        for row in read_ids(conn, _MOVES_OF, customer_ids, anonymous_ids, items=items)
        if row[2] <= until
    ]


def _lines(
    conn: Connection,
    customer_ids: list[str],
    anonymous_ids: list[str],
    rows: list[tuple[Any, ...]],
    since: int | None,
) -> list[Line]:
    """The open lines the moves `rows` (of whole items) make."""
    if not rows:
        return []
    last_buy: dict[str, int] = {}
    groups = by_kind(customer_ids, anonymous_ids)
    several = sum(len(values) for _, values in groups) > 1
    if several:
        # An id keeps only the moves after its own last purchase of the item (`apply`,
        # `rebuild`): a person of one id needs no more; one of several drops the moves
        # of an id from before another id's last purchase.
        items = sorted({str(r[0]) for r in rows})
        keys = [(kind, v, i) for kind, values in groups for v in values for i in items]
        for (_, _, item), ts in _bought(conn, keys):
            last_buy[item] = max(last_buy.get(item, ts), ts)
    # Per item: units (a sum: any order), the first add, the latest add by (time, event
    # id) and its channel. An event kept under two ids of the person counts once.
    lines: dict[str, list[Any]] = {}
    seen: set[tuple[str, str]] = set()
    for item, event, ts, units, channel in rows:
        if several:
            if ts <= last_buy.get(item, -(2**62)) or (item, event) in seen:
                continue
            seen.add((item, event))
        line = lines.get(item)
        if line is None:
            line = lines[item] = [0.0, None, None, None]
        line[0] += units
        if units > 0:
            if line[1] is None or ts < line[1]:
                line[1] = ts
            if line[2] is None or (ts, event) > line[2]:
                line[2], line[3] = (ts, event), channel
    out = [
        Line(item, round(units), latest[0], first, channel)
        for item, (units, first, latest, channel) in lines.items()
        if first is not None and units > 0
    ]
    if since is not None:
        out = [line for line in out if line.added_at >= since]
    return sorted(out, key=_newest_first)


def _newest_first(line: Line) -> tuple[int, str]:
    return -line.added_at, line.item_id
