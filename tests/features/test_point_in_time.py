"""Point in time: at a cutoff, only the events that had arrived and the identities proved
by then; what happens after the cutoff is kept as the truth."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import Engine

from features import columns as c
from features.point_in_time import KNOWN_AT, at_cutoff
from features.schema import TABLES
from features.validation import validate
from service.storage.reader import load_events
from service.storage.writer import write_batch
from training.train_churn import dataset

CUT = pd.Timestamp("2026-06-01", tz="UTC")


def event(n: int, days: float, *, known: float | None = None, **ids: str) -> dict[str, object]:
    ts = CUT + pd.Timedelta(days=days)
    return {
        c.EVENT_ID: f"e{n}", c.TS: ts, c.CUSTOMER_ID: ids.get("customer"),
        c.ANONYMOUS_ID: ids.get("anonymous"), c.CHANNEL: "web", c.TYPE: "purchase",
        c.ITEM_ID: "i1", c.QUANTITY: 1, c.PRICE: 5.0, c.PERSON_ID: ids.get("customer"),
        KNOWN_AT: ts if known is None else CUT + pd.Timedelta(days=known),
    }  # fmt: skip


def test_late_events_are_left_out_before_the_cutoff_and_kept_after_it() -> None:
    events = pd.DataFrame(
        [
            event(1, -10, customer="C1"),
            event(2, -2, known=+1, customer="C1"),  # the till upload arrived the day after
            event(3, +3, known=+9, customer="C1"),  # after the cutoff: truth, however late
        ]
    )
    assert at_cutoff(events, CUT)[c.EVENT_ID].tolist() == ["e1", "e3"]
    assert at_cutoff(events, CUT + pd.Timedelta(days=2))[c.EVENT_ID].tolist() == ["e1", "e2", "e3"]


def test_a_merge_or_a_link_proved_later_does_not_join_people_earlier() -> None:
    customers = pd.DataFrame(
        {
            c.CUSTOMER_ID: ["C1", "C2"],
            c.EMAIL: ["ana@x.eu", "ana@x.eu"],
            c.CREATED_AT: [CUT - pd.Timedelta(days=100), CUT + pd.Timedelta(days=5)],
        }
    )
    events = pd.DataFrame(
        [
            event(1, -10, customer="C1"),
            event(2, -9, customer="C2"),
            event(3, -8, anonymous="a9"),
            # The cookie identifies as C1 before the cutoff, but the event arrives after.
            event(4, -1, known=+2, customer="C1", anonymous="a9"),
        ]
    )
    then = at_cutoff(events, CUT, customers).set_index(c.EVENT_ID)[c.PERSON_ID]
    assert then[["e1", "e2"]].tolist() == ["C1", "C2"] and pd.isna(then["e3"])
    later = at_cutoff(events, CUT + pd.Timedelta(days=6), customers)
    assert set(later.set_index(c.EVENT_ID)[c.PERSON_ID]) == {"C1"}


def test_churn_features_at_a_cutoff_ignore_a_purchase_that_arrived_after_it() -> None:
    events = pd.DataFrame(
        [event(n, -200 + 20 * n, customer="C1") for n in range(9)]
        + [event(9, -3, known=+1, customer="C1"), event(10, 30, customer="C1")]
    )
    X, y = dataset(events, [CUT], horizon_days=90, lookback_days=365)
    assert X.loc["C1", "recency_days"] > 30  # the late purchase 3 days before is unknown
    assert y.loc["C1"] == 0  # but the purchase after the cutoff is the truth: not churned
    X_now, _ = dataset(events, [CUT + pd.Timedelta(days=2)], horizon_days=90, lookback_days=365)
    assert X_now.loc["C1", "recency_days"] < 10


def test_the_store_knows_history_from_its_time_and_live_events_from_their_arrival(
    engine: Engine,
) -> None:
    def write(rows: list[dict[str, object]]) -> None:
        schema = TABLES["events"]
        with engine.begin() as conn:
            write_batch(conn, schema, validate(pd.DataFrame(rows), schema))

    def raw(n: int, ts: datetime) -> dict[str, object]:
        return {c.EVENT_ID: f"e{n}", c.TS: ts, c.CUSTOMER_ID: "C1", c.CHANNEL: "web",
                c.TYPE: "view", c.ITEM_ID: "i1"}  # fmt: skip

    past = datetime(2026, 1, 5, tzinfo=UTC)
    write([raw(1, past)])  # a bulk load of history
    happened = datetime.now(UTC)
    time.sleep(0.2)
    write([raw(2, happened), raw(3, past + timedelta(days=1))])  # arrives 0.2 s late
    known = load_events(engine).set_index(c.EVENT_ID)[KNOWN_AT]
    assert known["e1"] == pd.Timestamp(past)
    assert known["e3"] == pd.Timestamp(past + timedelta(days=1))  # older than the first load
    assert known["e2"] > pd.Timestamp(happened) + pd.Timedelta(milliseconds=150)
    cut = pd.Timestamp(happened) + pd.Timedelta(milliseconds=100)
    assert "e2" not in set(at_cutoff(load_events(engine), cut)[c.EVENT_ID])
