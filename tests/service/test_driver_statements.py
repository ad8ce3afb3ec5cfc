"""Statements run for many rows through the driver (`service.storage.engine.run_many` and
`many_returning`): what they store and return equals what SQLAlchemy would."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, Engine, bindparam, case, func, select

from features import columns as c
from service.storage import engine as engines
from service.storage.engine import fetch_all, insert_into, many_returning, run_many
from service.storage.tables import identities, interests


def _new_links(conn: Connection) -> Any:
    return insert_into(conn, identities).on_conflict_do_nothing()


def _returning_ids(conn: Connection) -> Any:
    insert = insert_into(conn, identities).on_conflict_do_nothing()
    return insert.returning(identities.c[c.ID_VALUE])


def _add_weight(conn: Connection) -> Any:
    insert = insert_into(conn, interests)
    added = {"weight": interests.c.weight + insert.excluded.weight}
    return insert.on_conflict_do_update(
        index_elements=[c.ID_TYPE, c.ID_VALUE, c.ITEM_ID], set_=added
    ).returning(interests.c[c.ITEM_ID], interests.c.weight)


def _link(i: int) -> dict[str, Any]:
    return {
        c.ID_TYPE: "customer",
        c.ID_VALUE: f"c{i}",
        c.PERSON_ID: f"c{i}",
        "conflict": i % 2 == 0,
    }


def test_run_many_stores_every_row_with_its_types(engine: Engine) -> None:
    with engine.begin() as conn:
        run_many(conn, _new_links, [_link(i) for i in range(5)])
        run_many(conn, _new_links, [_link(3), _link(7)])  # c3 is there: only c7 is new
    with engine.connect() as conn:
        rows = conn.execute(select(identities.c[c.ID_VALUE], identities.c.conflict)).all()
    assert sorted(rows) == sorted((f"c{i}", i % 2 == 0) for i in [0, 1, 2, 3, 4, 7])


def test_many_returning_names_only_the_rows_it_inserted(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small statements on SQLite: the rows are split over several INSERTs of many rows.
    monkeypatch.setattr(engines, "_MOST_PARAMETERS", 9)
    with engine.begin() as conn:
        first = many_returning(conn, _returning_ids, [_link(i) for i in range(7)])
        again = many_returning(conn, _returning_ids, [_link(i) for i in range(5, 10)])
    assert sorted(v for (v,) in first) == [f"c{i}" for i in range(7)]
    assert sorted(v for (v,) in again) == ["c7", "c8", "c9"]  # c5 and c6 were stored


def test_many_returning_gives_each_upserted_row_after_the_change(engine: Engine) -> None:
    def row(item: str, weight: float) -> dict[str, Any]:
        return {c.ID_TYPE: "customer", c.ID_VALUE: "c1", c.ITEM_ID: item, "weight": weight,
                "last_ts": 1, "units": 0.0, "last_purchase": None}  # fmt: skip

    with engine.begin() as conn:
        many_returning(conn, _add_weight, [row("a", 1.5), row("b", 2)])
        after = many_returning(conn, _add_weight, [row("a", 1), row("c", 0.25)])
    assert sorted(after) == [("a", 2.5), ("c", 0.25)]
    with engine.begin() as conn:  # one key twice in a batch: both changes count
        twice = many_returning(conn, _add_weight, [row("d", 1), row("d", 0.5), row("e", 1)])
    assert sorted(twice) == [("d", 1.0), ("d", 1.5), ("e", 1.0)]


_LINKS = (
    select(identities.c[c.ID_VALUE], identities.c.conflict)
    .where(identities.c[c.ID_VALUE].in_(bindparam("ids", expanding=True)))
    .order_by(identities.c[c.ID_VALUE])
    .limit(3)
)
_WEIGHTS = select(func.sum(interests.c.weight), func.count()).where(
    interests.c[c.ID_VALUE] == bindparam("who")
)


_WEIGHTS_OVER = select(
    func.sum(case((interests.c.weight > 1.0, interests.c.weight - 1.0), else_=0.0)),
    func.count(),
).where(interests.c[c.ID_VALUE] == bindparam("who"))


def test_fetch_all_reads_what_sqlalchemy_reads(engine: Engine) -> None:
    with engine.begin() as conn:
        run_many(conn, _new_links, [_link(i) for i in range(5)])
        conn.execute(_add_weight(conn), [
            {c.ID_TYPE: "customer", c.ID_VALUE: "c1", c.ITEM_ID: item, "weight": 1.25,
             "last_ts": 1, "units": 0.0, "last_purchase": None}
            for item in ("a", "b")
        ])  # fmt: skip
    with engine.connect() as conn:
        for ids in (["c0", "c3", "nobody"], ["c4"], [], ["c0", "c1", "c2", "c3", "c4"]):
            found = fetch_all(conn, _LINKS, {"ids": ids})
            assert found == [tuple(r) for r in conn.execute(_LINKS, {"ids": ids}).all()]
        assert fetch_all(conn, _LINKS, {"ids": ["c0", "c1"]}) == [("c0", True), ("c1", False)]
        total, n = fetch_all(conn, _WEIGHTS, {"who": "c1"})[0]
        assert (total, n) == (2.5, 2) and isinstance(total, float)
        # A float written in the statement (a type that converts its values on SQLite) is
        # converted once: the query still runs through the driver, and reads the same.
        found = fetch_all(conn, _WEIGHTS_OVER, {"who": "c1"})
        assert found == [tuple(r) for r in conn.execute(_WEIGHTS_OVER, {"who": "c1"}).all()]
        assert found == [(0.5, 2)]
    held = [q for key, q in engines._QUERIES.items() if key[0] is _WEIGHTS_OVER]
    assert held and all(q is not None for q in held)


def test_values_of_many_rows_come_back_as_they_went_in(engine: Engine) -> None:
    """On PostgreSQL many rows go as arrays (one a column): a text that looks like an
    array's syntax or like NULL, a quote, a backslash, a letter beyond ASCII, a missing
    value, a whole number in a float column and one past 32 bits in a bigint column are
    stored as they were sent."""
    odd = ['a "quoted" one', "back\\slash", "{braces},comma", "NULL", "", "Café ☕", " lead"]
    rows = [
        {c.ID_TYPE: "customer", c.ID_VALUE: "c1", c.ITEM_ID: text, "weight": float(i) / 3,
         "last_ts": 2**40 + i, "units": i, "last_purchase": None if i % 2 else 2**33 + i}
        for i, text in enumerate(odd)
    ]  # fmt: skip
    with engine.begin() as conn:
        run_many(conn, _items, rows)
    with engine.connect() as conn:
        got = conn.execute(
            select(interests.c[c.ITEM_ID], interests.c.weight, interests.c.last_ts,
                   interests.c.units, interests.c.last_purchase)
        ).all()  # fmt: skip
    expected = [(r[c.ITEM_ID], r["weight"], r["last_ts"], float(r["units"]), r["last_purchase"])
                for r in rows]  # fmt: skip
    assert sorted(tuple(g) for g in got) == sorted(expected)


def _items(conn: Connection) -> Any:
    return insert_into(conn, interests)
