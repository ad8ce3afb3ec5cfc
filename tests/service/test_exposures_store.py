"""The exposures ledger and the report's reads, on SQLite and PostgreSQL: an exposure is
written once however often it is recorded, purchase day rows resolve ids as training
does, and a report over a hand-built night counts each group right."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from features import columns as c
from service.experiments.report import build
from service.intake import accept_events
from service.settings import Settings
from service.storage import churn_days, exposures
from service.storage.exposures import Exposure

NIGHT = datetime(2026, 3, 10, 20, tzinfo=UTC)


def ev(n: str, ts: datetime, **more: Any) -> dict[str, Any]:
    return {"event_id": n, "ts": ts.isoformat(), "channel": "web", "type": "view",
            "item_id": "I1", **more}  # fmt: skip


def test_an_exposure_is_written_once(engine: Engine) -> None:
    mail = Exposure("s1", "C1", "C1", "offer", "email", {"e": "a"}, offer_id="O1")
    with engine.begin() as conn:
        assert exposures.record(conn, [mail], NIGHT) == 1
    with engine.begin() as conn:  # another process records the same one: nothing new
        assert exposures.record(conn, [mail, mail], NIGHT) == 0
        held = Exposure("s2", "C2", "C2", "offer", "email", {}, held_by="global holdout")
        assert exposures.record(conn, [held], NIGHT) == 1
    with engine.connect() as conn:
        shown = exposures.read(conn, NIGHT - timedelta(hours=1), NIGHT + timedelta(hours=1))
        assert exposures.held_since(conn, "C2", "offer", NIGHT - timedelta(days=7))
        assert not exposures.held_since(conn, "C1", "offer", NIGHT - timedelta(days=7))
    assert sorted(shown["served_id"]) == ["s1", "s2"]
    row = shown.set_index("served_id").loc["s1"]
    assert row["held_by"] is None and row["arms"] == {"e": "a"} and row[c.OFFER_ID] == "O1"


def test_purchase_days_resolve_ids_as_training_does(engine: Engine) -> None:
    day = NIGHT - timedelta(days=2)
    accept_events(engine, [
        ev("p1", day.replace(hour=9), customer_id="C1", type="purchase", price=3.0),
        ev("p2", day.replace(hour=17), customer_id="C1", type="purchase", price=4.0,
           quantity=2),
        ev("i1", day.replace(hour=8), customer_id="C1", anonymous_id="d1", type="identify",
           item_id=None),
        ev("p3", day.replace(hour=10), anonymous_id="d1", type="purchase", price=1.0),
        ev("p4", day.replace(hour=11), anonymous_id="d9", type="purchase", price=9.0),
        ev("p5", NIGHT + timedelta(days=1), customer_id="C1", type="purchase", price=5.0),
    ])  # fmt: skip
    with engine.connect() as conn:
        days = churn_days.purchase_days(conn, NIGHT)
    # d1 is C1's (stitched); d9 is nobody's; the purchase after NIGHT is not read.
    assert set(days[c.PERSON_ID]) == {"C1"}
    assert days["revenue"].sum() == 3.0 + 8.0 + 1.0
    times = sorted(days[c.TS])
    assert times[0] == day.replace(hour=9) and times[-1] == day.replace(hour=17)


def test_a_report_over_a_hand_built_night(engine: Engine) -> None:
    accept_events(engine, [
        ev("b1", NIGHT - timedelta(days=30), customer_id="C1", type="purchase", price=5.0),
        ev("b2", NIGHT - timedelta(days=30), customer_id="C2", type="purchase", price=5.0),
        ev("b3", NIGHT + timedelta(hours=14), customer_id="C1", channel="store",
           store_id="S1", type="purchase", price=20.0, served_id="mail-1"),
    ])  # fmt: skip
    with engine.begin() as conn:
        exposures.record(conn, [
            Exposure("mail-1", "C1", "C1", "offer", "email", {}, offer_id="O1"),
            Exposure("held-1", "C2", "C2", "offer", "email", {}, held_by="global holdout",
                     offer_id="O1"),
        ], NIGHT)  # fmt: skip
    made = build(engine, Settings(), NIGHT - timedelta(hours=1), NIGHT + timedelta(hours=1), None)
    groups = {g.name: g for g in made.groups}
    assert (groups["treated"].converted, groups["treated"].customers) == (1, 1)
    assert (groups["holdout"].converted, groups["holdout"].customers) == (0, 1)
    assert groups["treated"].revenue == 20.0 and groups["holdout"].held_out
    (direct,) = [a for a in made.attributed if a["rule"] == "direct"]
    assert direct["purchases"] == 1 and direct["cross_channel"] == 1  # e-mail, then a till
