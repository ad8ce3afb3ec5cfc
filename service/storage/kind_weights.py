"""Online state per id, category and brand: what a person's preferences are read from.

The weight of a (category, brand) of the catalogue is the sum of the id's positive item
weights (`interests`, scaled to the same epoch) over the items of that category and
brand: the profile's "mostly shoes, favourite brand X" read from a row per kind of item
the person touched, however many items that is. Kept with the item weights (`apply`,
given each touched item's weight before and after), rebuilt from them (`rebuild`, also
after a catalogue change, which `omni ingest` follows with a rebuild of the state).
`item_count` counts the positive items of a row; a row whose count falls to zero is
deleted, so the rows are exactly those the rebuild makes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    func,
    literal,
    select,
)

from features import columns as c
from service.storage.engine import fetch_all, insert_into, run_many
from service.storage.ids import of_ids, read_ids
from service.storage.tables import catalogue, interests, kind_weights

#: The brand column's value for an item without a brand (a key column is never NULL).
NO_BRAND = ""


def apply(conn: Connection, changed: Mapping[tuple[str, str, str], tuple[float, float]]) -> None:
    """Fold item weights that changed, {(id kind, id, item): (before, after)}, into the
    rows of their category and brand, inside the caller's transaction.

    The items' category and brand are read in one query; the changes are summed per row
    in Python, so each row is written once (on PostgreSQL, one statement for them all).
    An item not in the catalogue adds nothing, as in the rebuild's join."""
    items = sorted({item for _, _, item in changed})
    if not items:
        return
    kinds = {str(item): (str(category), str(brand))
             for item, category, brand in fetch_all(conn, _KINDS, {"items": items})}  # fmt: skip
    sums: dict[tuple[str, str, str, str], list[float]] = {}
    emptied: set[tuple[str, str]] = set()
    for (kind, value, item), (before, after) in changed.items():
        weight = max(after, 0.0) - max(before, 0.0)
        count = int(after > 0) - int(before > 0)
        if item not in kinds or (weight == 0.0 and count == 0):
            continue
        row = sums.setdefault((kind, value, *kinds[item]), [0.0, 0])
        row[0] += weight
        row[1] += count
        if count < 0:
            emptied.add((kind, value))
    if not sums:
        return
    run_many(conn, _upsert, [
        {c.ID_TYPE: kind, c.ID_VALUE: value, c.CATEGORY: category, c.BRAND: brand,
         "weight": weight, "item_count": int(count)}
        for (kind, value, category, brand), (weight, count) in sorted(sums.items())
    ])  # fmt: skip
    if emptied:
        emptied_ids = [{"kind": kind, "value": value} for kind, value in sorted(emptied)]
        run_many(conn, _delete_emptied, emptied_ids)


#: The category and brand (NO_BRAND: none) of some items of the catalogue.
_KINDS = select(
    catalogue.c[c.ITEM_ID], catalogue.c[c.CATEGORY], func.coalesce(catalogue.c[c.BRAND], NO_BRAND)
).where(catalogue.c[c.ITEM_ID].in_(bindparam("items", expanding=True)))


def _delete_emptied(conn: Connection) -> Any:
    """Delete an id's rows whose count of positive items fell to zero."""
    row = kind_weights.c
    return delete(kind_weights).where(
        row[c.ID_TYPE] == bindparam("kind"),
        row[c.ID_VALUE] == bindparam("value"),
        row.item_count <= 0,
    )


def _upsert(conn: Connection) -> Any:
    """Add a weight and a count to the row of a category and brand."""
    insert = insert_into(conn, kind_weights)
    old, new = kind_weights.c, insert.excluded
    return insert.on_conflict_do_update(
        index_elements=[c.ID_TYPE, c.ID_VALUE, c.CATEGORY, c.BRAND],
        set_={"weight": old.weight + new.weight, "item_count": old.item_count + new.item_count},
    )


def rebuild(conn: Connection) -> None:
    """Recompute every id's rows from its item weights and the catalogue, in SQL."""
    conn.execute(delete(kind_weights))
    item = catalogue.c
    brand = func.coalesce(item[c.BRAND], NO_BRAND)
    who = (interests.c[c.ID_TYPE], interests.c[c.ID_VALUE])
    conn.execute(
        kind_weights.insert().from_select(
            [c.ID_TYPE, c.ID_VALUE, c.CATEGORY, c.BRAND, "weight", "item_count"],
            select(*who, item[c.CATEGORY], brand, func.sum(interests.c.weight),
                   func.count(literal(1)))
            .join(catalogue, item[c.ITEM_ID] == interests.c[c.ITEM_ID])
            .where(interests.c.weight > 0)
            .group_by(*who, item[c.CATEGORY], brand),
        )
    )  # fmt: skip


def missing(conn: Connection) -> bool:
    """No row while some id wants an item of the catalogue (a store made before this
    part of the state): the state needs a rebuild."""
    if conn.execute(select(kind_weights.c[c.ID_TYPE]).limit(1)).first() is not None:
        return False
    wanted = (
        select(interests.c[c.ID_TYPE])
        .join(catalogue, catalogue.c[c.ITEM_ID] == interests.c[c.ITEM_ID])
        .where(interests.c.weight > 0)
        .limit(1)
    )
    return conn.execute(wanted).first() is not None


def of_person(
    conn: Connection, customer_ids: Iterable[str], anonymous_ids: Iterable[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """The person's interest summed per category and per brand of the catalogue (items
    they touched with a positive weight; weights scaled to the epoch, so only their
    shares mean anything): a row per category and brand, however many items they
    touched."""
    by_category: dict[str, float] = {}
    by_brand: dict[str, float] = {}
    for category, brand, weight in read_ids(conn, _OF_IDS, customer_ids, anonymous_ids):
        by_category[str(category)] = by_category.get(str(category), 0.0) + float(weight)
        if brand != NO_BRAND:
            by_brand[str(brand)] = by_brand.get(str(brand), 0.0) + float(weight)
    return by_category, by_brand


_OF_IDS = select(kind_weights.c[c.CATEGORY], kind_weights.c[c.BRAND], kind_weights.c.weight).where(
    of_ids(kind_weights)
)
