"""The online state written with events equals the state recomputed from the event log,
whatever the order, lateness and repetition of what arrives; on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import math
import threading
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, delete, or_, select

from features import columns as c
from features.cart import open_cart
from features.churn import OneHistory, churn_row
from features.interactions import interactions, store_activity
from features.matrix import InteractionMatrix, build_matrix
from features.validation import BatchRejected
from models.ids import IdMapping
from service.decisioning.nbo import answered_offers, answers_of
from service.erasure import erase, was_erased
from service.fold_in import history_now
from service.intake import accept_events
from service.people import Person, find_person, person_events
from service.storage import activity, carts, cases, churn_days, kind_weights, wishes
from service.storage import state as online_state
from service.storage.codec import micros
from service.storage.ids import by_kind
from service.storage.state import STATE_TABLES
from service.storage.tables import catalogue, events, identities
from service.storage.tables import interests as interests_table
from service.storage.tables import kind_weights as kind_weights_table

#: Times on both sides of each churn window's edge as of NOW (30, 90, 180, 365 days back).
DAYS = ("2025-04-01", "2025-10-03", "2026-01-01", "2026-03-01", "2026-03-02", "2026-03-09")
STAMPS = [f"{day}T{hour:02d}:00:00Z" for day in DAYS for hour in (8, 15, 17)]
#: A moment between the events of one day (cart moves after it are not yet made).
SOON = datetime(2026, 3, 2, 12, tzinfo=UTC)
EVENT = (
    st.fixed_dictionaries(
        {
            "event_id": st.sampled_from([f"e{i}" for i in range(12)]),
            "ts": st.sampled_from(STAMPS),
            "channel": st.sampled_from(["web", "app", "email"]),
            "type": st.sampled_from(
                [
                    "view",
                    "add_to_cart",
                    "remove_from_cart",
                    "purchase",
                    "return",
                    "wishlist",
                    "wishlist_remove",
                    "complaint",
                    "service_contact",
                    "offer_accepted",
                    "offer_declined",
                ]
            ),
            "quantity": st.integers(1, 3),
            "item_id": st.sampled_from(["I1", "I2", "I3"]),
            "reason": st.sampled_from(["late delivery", "broken item"]),
            "status": st.sampled_from(["open", "resolved"]),
            "case_id": st.sampled_from(["K1", "K2", None]),
        },
        optional={
            "price": st.sampled_from([5.0, 12.5]),
            "customer_id": st.sampled_from(["C1", "C2"]),
            "anonymous_id": st.sampled_from(["a1", "a2", "a3"]),
            "store_id": st.sampled_from(["S1", "S2"]),
        },
    )
    .map(
        lambda e: (
            {**e, "offer_id": "O1" if e["quantity"] < 3 else "O2"} if "offer" in e["type"] else e
        )
    )
    .map(
        lambda e: (
            e
            if e["type"] in ("complaint", "service_contact")
            else {k: v for k, v in e.items() if k not in ("reason", "status", "case_id")}
        )
    )
)


def assert_same_features(days: OneHistory, events: pd.DataFrame) -> None:
    """The churn features of a person's day rows are those of their every event."""
    as_of = pd.Timestamp(NOW)
    row, every = churn_row(days, as_of=as_of), churn_row(OneHistory.of_frame(events), as_of=as_of)
    if row is None or every is None:
        assert row is every is None
        return
    assert list(row) == list(every)
    np.testing.assert_allclose(list(row.values()), list(every.values()), rtol=1e-9)


def wished_from(history: pd.DataFrame) -> list[str]:
    """The wish-list by its definition, from the person's events: items whose latest
    wish is later than their latest removal and purchase; latest wish first."""
    latest = history.groupby([c.ITEM_ID, c.TYPE])[c.TS].max().unstack()
    wish = latest.get("wishlist")
    if wish is None:
        return []
    floor = pd.Series(pd.Timestamp(0, tz="UTC"), index=latest.index)
    for kind in ("wishlist_remove", "purchase"):
        if kind in latest:
            floor = np.maximum(floor, latest[kind].fillna(pd.Timestamp(0, tz="UTC")))
    on = wish[wish.notna() & (wish > floor)]
    return [str(i) for i in sorted(on.index, key=lambda i: (-on[i].value, i))]


def cases_from(history: pd.DataFrame) -> list[tuple[str, str, str, int]]:
    """The person's service cases by their definition, from their events: (case, reason
    of the earliest event, status of the latest, opened at), open ones first."""
    service = history[history[c.TYPE].isin(["complaint", "service_contact"])].copy()
    if service.empty:
        return []
    service["case"] = service[c.CASE_ID].fillna(service[c.EVENT_ID]).astype(str)
    service["at"] = service[c.TS].map(lambda t: micros(t.to_pydatetime()))
    found = []
    for case_id, rows in service.groupby("case"):
        first = rows.sort_values(["at", c.REASON]).iloc[0]
        last = rows.sort_values(["at", c.STATUS]).iloc[-1]
        found.append((str(case_id), first[c.REASON], last[c.STATUS], int(first["at"]),
                      int(last["at"])))  # fmt: skip
    is_open = sorted((f for f in found if f[2] == "open"), key=lambda f: (f[3], f[0]))
    closed = sorted((f for f in found if f[2] != "open"), key=lambda f: (-f[4], f[0]))
    return [f[:4] for f in is_open + closed]


def state(engine: Engine) -> list[tuple[Any, ...]]:
    """Every row of every table of the online state."""
    with engine.connect() as conn:
        return [
            (table.name, *row)
            for table in STATE_TABLES
            for row in conn.execute(select(table).order_by(*table.primary_key)).all()
        ]


def same_state(one: list[tuple[Any, ...]], other: list[tuple[Any, ...]]) -> bool:
    """The same rows, sums of weights equal to 1e-9 of their size: added in another order
    (a category's sum less an item that stopped counting, say) they differ in the last
    bits."""

    def same(a: object, b: object) -> bool:
        if isinstance(a, float) and isinstance(b, float):
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-30)
        return a == b

    return len(one) == len(other) and all(
        len(x) == len(y) and all(same(a, b) for a, b in zip(x, y, strict=True))
        for x, y in zip(one, other, strict=True)
    )


def rebuilt(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.begin() as conn:
        online_state.rebuild(conn)
    return state(engine)


def _clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (events, identities, *STATE_TABLES):
            conn.execute(delete(table))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=st.lists(st.lists(EVENT, min_size=1, max_size=5), min_size=1, max_size=8))
def test_state_written_with_events_equals_state_rebuilt_from_them(
    engine: Engine, batches: list[list[dict[str, Any]]]
) -> None:
    _clear(engine)
    _catalogue(engine)
    for batch in batches:
        # A batch with no id, or one event id with two contents, is refused: nothing stored.
        with contextlib.suppress(BatchRejected):
            accept_events(engine, batch)
    online = state(engine)
    again = rebuilt(engine)
    assert same_state(online, again), (online, again)
    # The cart read from the state is the cart computed from the whole history.
    with engine.connect() as conn:
        for cid in ("C1", "C2"):
            person = find_person(conn, customer_id=cid)
            if person is None:
                continue
            history = person_events(conn, person)
            expected = open_cart(history, as_of=pd.Timestamp("2100-01-01T00:00Z"))
            lines = carts.open_lines(conn, person.customer_ids, person.anonymous_ids, until=2**62)
            got = [(x.item_id, x.quantity, x.added_at, x.channel) for x in lines]
            assert sorted(got) == sorted(
                (r.item_id, r.quantity, r.added_at.value // 1000, r.channel)
                for r in expected.itertuples()
            )
            # The profile's read: the lines added to in a window, as of its end. A stored
            # purchase closes the item's line even when stamped after that end (a till's
            # clock ahead of the service's): moves after the end are not made yet.
            since, until = micros(datetime(2026, 1, 1, tzinfo=UTC)), micros(SOON)
            window = carts.open_lines(
                conn, person.customer_ids, person.anonymous_ids, until=until, since=since
            )
            made = history[
                (history[c.TS] <= pd.Timestamp(SOON)) | (history[c.TYPE] == c.EventType.PURCHASE)
            ]
            as_of = open_cart(made, as_of=pd.Timestamp("2100-01-01T00:00Z"))
            assert sorted((x.item_id, x.quantity, x.added_at, x.channel) for x in window) == sorted(
                (r.item_id, r.quantity, r.added_at.value // 1000, r.channel)
                for r in as_of.itertuples()
                if r.added_at.value // 1000 >= since
            )
            # The profile's page: the latest lines alone, read a page of items at a time.
            for most in (1, 2, 3):
                latest = carts.open_lines(
                    conn, person.customer_ids, person.anonymous_ids,
                    until=until, since=since, most=most,
                )  # fmt: skip
                assert latest == window[:most]
        # The history folded in, read from the state, is the one built from every event.
        for ids in ({"customer_id": "C1"}, {"customer_id": "C2"}, {"anonymous_id": "a1"}):
            person = find_person(conn, **ids)
            if person is not None:
                assert_same_history(
                    history_now(conn, person, IdMapping(ITEMS), NOW), whole_history(conn, person)
                )
                # What the next-best offer reads of them: last purchases, offers answered.
                everything = person_events(conn, person)
                buys = everything[everything[c.TYPE] == c.EventType.PURCHASE]
                last = buys.groupby(c.ITEM_ID)[c.TS].max()
                theirs = carts.last_bought(conn, person.customer_ids, person.anonymous_ids)
                assert theirs == {str(i): micros(ts.to_pydatetime()) for i, ts in last.items()}
                # The wish-list: wished later than any removal or purchase, by any id.
                assert [
                    w.item_id
                    for w in wishes.wish_list(conn, person.customer_ids, person.anonymous_ids)
                ] == wished_from(everything)
                # Interest per category and brand: the positive item weights summed.
                for got, want in zip(
                    kind_shares(conn, person), item_shares(conn, person), strict=True
                ):
                    assert got == pytest.approx(want)
                # Service cases: opened by their earliest event, standing as their latest.
                assert [
                    (x.case_id, x.reason, x.status, x.opened_at)
                    for x in cases.cases_of(conn, person.customer_ids, person.anonymous_ids)
                ] == cases_from(everything)
                # A batch reads the same for everyone at once.
                everyone = carts.last_bought_by_person(conn)
                assert {i: ts for p, i, ts in everyone if p == person.person_id} == theirs
                seen = activity.last_seen(conn, person.customer_ids, person.anonymous_ids)
                assert activity.last_arrivals(conn).get(person.person_id) == (
                    seen.last_arrival if seen else None
                )
                # Read with the person in the one query that found them: the same.
                assert person.seen == seen
                assert (seen is None) == everything.empty
                if seen is not None:
                    assert seen.last_ts == micros(everything[c.TS].max().to_pydatetime())
                plain = Person(person.person_id, person.customer_ids, person.anonymous_ids)
                assert person.erased is was_erased(conn, plain) is False
                assert answered_offers(conn, person) == set(
                    answers_of(owned_events(conn, person))[c.OFFER_ID]
                )
                # The churn features from the day rows are those of every event.
                days = churn_days.history(conn, person.customer_ids, person.anonymous_ids, NOW)
                assert_same_features(days, owned_events(conn, person))


ITEMS = np.array(["I1", "I2", "I3"], dtype=object)
#: Each item's (category, brand): two share a category, two a brand, one has no brand.
KINDS = {"I1": ("shoes", "Acme"), "I2": ("shoes", None), "I3": ("bags", "Acme")}


def _catalogue(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(catalogue))
        conn.execute(catalogue.insert(), [
            {c.ITEM_ID: i, c.NAME: i, c.CATEGORY: cat, c.BRAND: brand, c.PRICE: 1.0,
             c.ACTIVE: True}
            for i, (cat, brand) in KINDS.items()
        ])  # fmt: skip


def _shares(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()}


def kind_shares(conn: Connection, person: Person) -> tuple[dict[str, float], ...]:
    """The person's shares per category and per brand, read from their kind rows."""
    found = kind_weights.of_person(conn, person.customer_ids, person.anonymous_ids)
    return tuple(_shares(by) for by in found)


def item_shares(conn: Connection, person: Person) -> tuple[dict[str, float], ...]:
    """The same by definition: the positive item weights of each of their ids (an item
    wanted under one id counts there whatever another id did) summed per kind of item."""
    rows = conn.execute(
        select(interests_table.c[c.ITEM_ID], interests_table.c.weight).where(
            or_(*(
                (interests_table.c[c.ID_TYPE] == kind) & interests_table.c[c.ID_VALUE].in_(ids)
                for kind, ids in by_kind(person.customer_ids, person.anonymous_ids)
            ))
        )
    ).all()  # fmt: skip
    by_category: dict[str, float] = {}
    by_brand: dict[str, float] = {}
    for item, weight in rows:
        category, brand = KINDS[str(item)]
        if weight > 0:
            by_category[category] = by_category.get(category, 0.0) + float(weight)
            if brand is not None:
                by_brand[brand] = by_brand.get(brand, 0.0) + float(weight)
    return _shares(by_category), _shares(by_brand)


NOW = datetime(2026, 4, 1, 13, 30, tzinfo=UTC)


def owned_events(conn: Connection, person: Person) -> pd.DataFrame:
    """Every event of the person: theirs by its customer id, else its anonymous id (as
    training resolves it: a shared device's signed-in events belong to that customer)."""
    history = person_events(conn, person)
    theirs = history[c.CUSTOMER_ID].isin(person.customer_ids) | (
        history[c.CUSTOMER_ID].isna() & history[c.ANONYMOUS_ID].isin(person.anonymous_ids)
    )
    return history[theirs]


def whole_history(conn: Connection, person: Person) -> InteractionMatrix | None:
    """The person's one-row matrix computed from every event of theirs (the slow path)."""
    history = owned_events(conn, person)
    as_of = pd.Timestamp(NOW)
    inter = interactions(history, as_of=as_of)
    if inter.empty:
        return None
    return build_matrix(
        inter, as_of=as_of, items=ITEMS, stores=store_activity(history, as_of=as_of)
    )


def assert_same_history(got: InteractionMatrix | None, want: InteractionMatrix | None) -> None:
    assert (got is None) == (want is None)
    if got is None or want is None:
        return
    for field in ("weights", "purchase_age_days", "purchase_count", "seen_age_days"):
        np.testing.assert_allclose(
            getattr(got, field).toarray(), getattr(want, field).toarray(), rtol=1e-5, err_msg=field
        )
    np.testing.assert_allclose(got.user_store_share, want.user_store_share, rtol=1e-5, atol=1e-9)

    def main_store(m: InteractionMatrix) -> str | None:
        if m.user_store is None or m.stores is None or m.user_store[0] < 0:
            return None
        return str(m.stores[m.user_store[0]])

    assert main_store(got) == main_store(want)


def test_a_resent_event_changes_nothing(engine: Engine) -> None:
    one = {"event_id": "r1", "ts": "2026-03-01T10:00:00Z", "customer_id": "C1",
           "channel": "web", "type": "view", "item_id": "I1"}  # fmt: skip
    first = accept_events(engine, [one])
    before = state(engine)
    again = accept_events(engine, [one, one])
    assert (first.stored, again.stored, again.duplicates) == (1, 0, 2)
    assert state(engine) == before


def test_a_late_event_moves_arrival_not_event_time(engine: Engine) -> None:
    accept_events(engine, [{"event_id": "n1", "ts": "2026-03-02T10:00:00Z", "customer_id": "C1",
                            "channel": "web", "type": "view", "item_id": "I1"}])  # fmt: skip
    with engine.connect() as conn:
        before = activity.last_seen(conn, ["C1"], [])
    accept_events(engine, [{"event_id": "till-7", "ts": "2026-03-01T15:00:00Z",
                            "customer_id": "C1", "channel": "store", "store_id": "S1",
                            "type": "purchase", "item_id": "I2"}])  # fmt: skip
    with engine.connect() as conn:
        after = activity.last_seen(conn, ["C1"], [])
    assert before is not None and after is not None
    assert after.events == 2
    assert after.last_ts == before.last_ts  # the till's purchase is older than the view...
    assert after.last_arrival > before.last_arrival  # ...but it arrived later


def test_first_events_of_a_new_customer_at_once_all_succeed(engine: Engine) -> None:
    failures: list[BaseException] = []

    def send(i: int) -> None:
        first = {"event_id": f"x{i}", "ts": "2026-03-01T10:00:00Z", "customer_id": "NEW",
                 "anonymous_id": f"dev{i % 2}", "channel": "app", "type": "view",
                 "item_id": "I1"}  # fmt: skip
        try:
            accept_events(engine, [first])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    with engine.connect() as conn:
        person = find_person(conn, customer_id="NEW")
        seen = activity.last_seen(conn, ["NEW"], [])
    assert person is not None and person.anonymous_ids == ("dev0", "dev1")
    assert seen is not None and seen.events == 8


def test_erasure_forgets_the_state(engine: Engine) -> None:
    _catalogue(engine)
    cart = {"event_id": "z1", "ts": "2026-03-01T10:00:00Z", "customer_id": "C9",
            "anonymous_id": "d9", "channel": "store", "store_id": "S1",
            "type": "add_to_cart", "item_id": "I1"}  # fmt: skip
    accept_events(
        engine,
        [
            cart,
            {**cart, "event_id": "z2", "type": "purchase", "item_id": "I2"},
            {**cart, "event_id": "z3", "type": "wishlist", "item_id": "I3"},
            {**cart, "event_id": "z4", "type": "complaint", "reason": "rude", "status": "open"},
        ],
    )
    with engine.connect() as conn:
        person = find_person(conn, customer_id="C9")
    assert person is not None
    assert {row[0] for row in state(engine)} == {table.name for table in STATE_TABLES}
    erase(engine, person)
    with engine.connect() as conn:
        assert activity.last_seen(conn, ["C9"], ["d9"]) is None
    assert [row for row in state(engine) if row[2] in ("C9", "d9")] == []  # no table keeps them


@pytest.mark.parametrize("bad", [{"channel": "fax"}, {"customer_id": None}])
def test_a_rejected_batch_changes_no_state(engine: Engine, bad: dict[str, Any]) -> None:
    good = {"event_id": "g1", "ts": "2026-03-01T10:00:00Z", "customer_id": "C1",
            "channel": "web", "type": "view", "item_id": "I1"}  # fmt: skip
    with pytest.raises(BatchRejected):
        accept_events(engine, [good, {**good, "event_id": "g2", **bad}])
    assert state(engine) == []


def test_a_store_purchase_closes_the_web_cart_of_the_same_person(engine: Engine) -> None:
    def ev(n: str, ts: str, **more: Any) -> dict[str, Any]:
        return {"event_id": n, "ts": f"2026-03-01T{ts}:00Z", "item_id": "I1", **more}

    accept_events(engine, [
        ev("w1", "09:00", anonymous_id="dev", channel="web", type="add_to_cart", quantity=2),
        ev("w2", "09:05", anonymous_id="dev", channel="web", type="add_to_cart", item_id="I2"),
        ev("id", "09:06", anonymous_id="dev", customer_id="C7", channel="web", type="identify",
           item_id=None),
    ])  # fmt: skip
    with engine.connect() as conn:
        lines = carts.open_lines(conn, ["C7"], ["dev"], until=2**62)
    assert [(x.item_id, x.quantity, x.channel) for x in lines] == [
        ("I2", 1, "web"),
        ("I1", 2, "web"),
    ]
    till = ev("s1", "15:00", customer_id="C7", channel="store", store_id="S1", type="purchase")
    accept_events(engine, [till])
    with engine.connect() as conn:
        lines = carts.open_lines(conn, ["C7"], ["dev"], until=2**62)
        # The profile's read of the lines added to in a window: the same cart.
        since = micros(datetime(2026, 3, 1, tzinfo=UTC))
        recent = carts.open_lines(conn, ["C7"], ["dev"], until=2**62, since=since)
    assert [x.item_id for x in lines] == ["I2"]
    assert recent == lines


def test_a_purchase_stamped_after_the_read_still_closes_the_line(engine: Engine) -> None:
    """A till whose clock runs ahead of the service's: the item bought is not shown in the
    cart on the tablet, although the purchase's own time is after the moment read."""
    accept_events(engine, [{"event_id": "a", "ts": "2026-03-01T08:00:00Z", "customer_id": "C1",
                            "channel": "web", "type": "add_to_cart", "item_id": "I1"},
                           {"event_id": "b", "ts": "2026-03-01T08:30:00Z", "customer_id": "C1",
                            "channel": "web", "type": "add_to_cart", "item_id": "I2"}])  # fmt: skip
    at = micros(datetime(2026, 3, 2, 12, tzinfo=UTC))
    since = micros(datetime(2026, 1, 1, tzinfo=UTC))
    with engine.connect() as conn:
        before = carts.open_lines(conn, ["C1"], [], until=at, since=since)
    accept_events(engine, [{"event_id": "p", "ts": "2026-03-02T12:05:00Z", "customer_id": "C1",
                            "channel": "store", "store_id": "S1", "type": "purchase",
                            "item_id": "I1"}])  # fmt: skip
    with engine.connect() as conn:
        after = carts.open_lines(conn, ["C1"], [], until=at, since=since)
        every = carts.open_lines(conn, ["C1"], [], until=at)
    assert [x.item_id for x in before] == ["I2", "I1"]
    assert [x.item_id for x in after] == ["I2"]
    assert every == after


def test_the_latest_lines_of_a_busy_cart_skip_the_closed_ones(engine: Engine) -> None:
    """A page of the latest cart lines reads the items by their latest add, a page at a
    time: an item added and then removed is no line, and the next page is read for it."""

    def ev(n: str, hour: int, kind: str, item: str) -> dict[str, Any]:
        return {"event_id": n, "ts": f"2026-03-01T{hour:02d}:00:00Z", "customer_id": "C8",
                "channel": "web", "type": kind, "item_id": item}  # fmt: skip

    accept_events(engine, [
        ev("a5", 10, "add_to_cart", "I5"), ev("a4", 11, "add_to_cart", "I4"),
        ev("a3", 12, "add_to_cart", "I3"), ev("p3", 13, "purchase", "I3"),
        ev("a2", 13, "add_to_cart", "I2"), ev("a1", 14, "add_to_cart", "I1"),
        ev("r1", 15, "remove_from_cart", "I1"), ev("a6", 16, "add_to_cart", "I6"),
        ev("r6", 17, "remove_from_cart", "I6"),
    ])  # fmt: skip
    at = micros(datetime(2026, 3, 1, 18, tzinfo=UTC))
    with engine.connect() as conn:
        every = carts.open_lines(conn, ["C8"], [], until=at)
        two = carts.open_lines(conn, ["C8"], [], until=at, most=2)
        since = micros(datetime(2026, 3, 1, 11, tzinfo=UTC))
        windowed = carts.open_lines(conn, ["C8"], [], until=at, since=since, most=5)
    assert [line.item_id for line in every] == ["I2", "I4", "I5"]
    assert two == every[:2]  # I6 and I1 (pages of two) were added last, and taken out
    assert [line.item_id for line in windowed] == ["I2", "I4"]


def test_the_cart_of_one_id_as_of_a_moment(engine: Engine) -> None:
    def ev(n: str, ts: str, kind: str, item: str = "I1", **more: Any) -> dict[str, Any]:
        return {"event_id": n, "ts": f"2026-03-01T{ts}:00Z", "customer_id": "C5",
                "channel": "web", "type": kind, "item_id": item, **more}  # fmt: skip

    accept_events(engine, [
        ev("a1", "08:00", "add_to_cart"),
        ev("a2", "10:00", "add_to_cart", quantity=2),
        ev("a3", "10:00", "add_to_cart", channel="app"),  # the same time: a3 is later
        ev("r1", "12:00", "remove_from_cart"),
        ev("a4", "14:00", "add_to_cart"),
        ev("b1", "07:00", "add_to_cart", item="I2"),
        ev("c1", "09:00", "add_to_cart", item="I3"),
        ev("c2", "09:30", "remove_from_cart", item="I3"),
    ])  # fmt: skip
    at = micros(datetime(2026, 3, 1, 13, tzinfo=UTC))
    since = micros(datetime(2026, 3, 1, 9, tzinfo=UTC))
    with engine.connect() as conn:
        window = carts.open_lines(conn, ["C5"], [], until=at, since=since)
        every = carts.open_lines(conn, ["C5"], [], until=at)
        later = carts.open_lines(conn, ["C5"], [], until=2**62, since=since)
    ten = micros(datetime(2026, 3, 1, 10, tzinfo=UTC))
    # As of 13:00: the 14:00 add is not made yet; the remove at 12:00 is.
    assert window == [carts.Line("I1", 3, ten, ten - 2 * 3_600_000_000, "app")]
    assert [line for line in every if line.added_at >= since] == window
    assert [(x.item_id, x.quantity, x.channel) for x in later] == [("I1", 4, "web")]


def test_a_store_made_before_the_item_interests_gets_them_at_start(engine: Engine) -> None:
    accept_events(engine, [{"event_id": "o1", "ts": "2026-03-01T10:00:00Z", "customer_id": "C1",
                            "channel": "web", "type": "add_to_cart", "item_id": "I1"}])  # fmt: skip
    before = state(engine)
    with engine.begin() as conn:
        conn.execute(delete(interests_table))  # as a store written by an earlier version
        assert online_state.ensure(conn) == 1
        assert online_state.ensure(conn) is None  # once
    assert state(engine) == before


def test_a_store_made_before_the_kinds_of_item_gets_them_at_start(engine: Engine) -> None:
    _catalogue(engine)
    accept_events(engine, [{"event_id": "k1", "ts": "2026-03-01T10:00:00Z", "customer_id": "C1",
                            "channel": "web", "type": "view", "item_id": "I3"}])  # fmt: skip
    before = state(engine)
    assert ("kind_weights", "customer", "C1", "bags", "Acme") in {row[:5] for row in before}
    with engine.begin() as conn:
        conn.execute(delete(kind_weights_table))  # as a store written by an earlier version
        assert online_state.ensure(conn) == 1
        assert online_state.ensure(conn) is None  # once
    assert state(engine) == before


def test_churn_features_from_day_rows_hold_at_every_window_edge(engine: Engine) -> None:
    # Several events a day, of one type and channel, on both sides of each window's edge
    # (30, 90, 180 and 365 days before NOW, at 13:30): only the events say which side.
    batch = [
        {"event_id": f"{day}-{kind}-{channel}-{hour}", "ts": f"{day}T{hour:02d}:00:00Z",
         "customer_id": "C1", "channel": channel, "type": kind, "item_id": "I1", "price": 4.0,
         **({"store_id": "S1"} if channel == "store" else {})}
        for day in (*DAYS, "2026-02-14", "2026-04-01")
        for kind, channel in (("view", "web"), ("purchase", "web"), ("return", "web"),
                              ("email_click", "email"), ("purchase", "store"))
        for hour in (8, 12, 15, 17)
        if f"{day}T{hour:02d}" < "2026-04-01T13"
    ]  # fmt: skip
    accept_events(engine, batch)
    with engine.connect() as conn:
        person = find_person(conn, customer_id="C1")
        assert person is not None
        days = churn_days.history(conn, person.customer_ids, person.anonymous_ids, NOW)
        every = owned_events(conn, person)
    assert len(days.ts) < len(every)  # fewer rows than events...
    assert_same_features(days, every)  # ...the same features


def test_churn_features_count_a_device_once_at_the_edges(engine: Engine) -> None:
    """On the edge days a person's events are read one by one: an event of their device
    carrying their customer id too counts once (under the customer id), one of the device
    alone counts under the device, and a stranger's device events of the same days never
    count."""
    rows = []
    for day in DAYS:
        for hour, who in ((8, {"customer_id": "C1"}), (12, {"anonymous_id": "A1"}),
                          (15, {"customer_id": "C1", "anonymous_id": "A1"}),
                          (17, {"anonymous_id": "STRANGER"})):  # fmt: skip
            if f"{day}T{hour:02d}" < "2026-04-01T13":
                rows.append({"event_id": f"dev-{day}-{hour}", "ts": f"{day}T{hour:02d}:00:00Z",
                             "channel": "web", "type": "purchase", "item_id": "I1",
                             "price": 4.0, **who})  # fmt: skip
    accept_events(engine, rows)
    with engine.connect() as conn:
        person = find_person(conn, customer_id="C1")
        assert person is not None and person.anonymous_ids == ("A1",)
        days = churn_days.history(conn, person.customer_ids, person.anonymous_ids, NOW)
        every = owned_events(conn, person)
    assert int(days.count.sum()) == len(every) == 3 * len(DAYS)
    assert_same_features(days, every)
