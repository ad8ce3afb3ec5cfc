"""The one schema: every bad record is named by position, key and field; nothing half-passes."""

from __future__ import annotations

import pandas as pd
import pytest

from features.schema import CATALOGUE, EVENTS, OFFERS
from features.validation import BatchRejected, RecordError, validate


def event(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "event_id": "e1",
        "ts": "2026-03-01T10:00:00+01:00",
        "customer_id": "C1",
        "channel": "web",
        "type": "view",
        "item_id": "I1",
    }
    base.update(overrides)
    return base


def errors_of(rows: list[dict[str, object]]) -> list[RecordError]:
    with pytest.raises(BatchRejected) as caught:
        validate(pd.DataFrame(rows), EVENTS)
    return caught.value.errors


def test_good_events_come_back_typed_and_in_utc() -> None:
    batch = validate(
        pd.DataFrame([event(), event(event_id="e2", ts="2026-03-01T09:30:00Z", quantity="2")]),
        EVENTS,
    )
    frame = batch.frame
    assert list(frame.columns) == list(EVENTS.columns)
    assert frame["ts"].tolist() == [
        pd.Timestamp("2026-03-01T09:00:00Z"),
        pd.Timestamp("2026-03-01T09:30:00Z"),
    ]
    assert frame["quantity"].tolist()[1] == 2


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"ts": "2026-03-01T10:00:00"}, "ts", "no UTC offset"),
        ({"ts": "yesterday+01:00"}, "ts", "not an ISO-8601 time"),
        ({"channel": "fax"}, "channel", "'fax' is not one of"),
        ({"type": "like"}, "type", "'like' is not one of"),
        ({"customer_id": None}, "customer_id", "customer_id or anonymous_id is required"),
        ({"item_id": None, "type": "purchase"}, "item_id", "'purchase' event"),
        ({"channel": "store"}, "store_id", "required when channel is 'store'"),
        ({"type": "identify", "item_id": None}, "anonymous_id", "'identify' event"),
        ({"type": "offer_shown", "item_id": None}, "offer_id", "'offer_shown' event"),
        ({"quantity": "1.5"}, "quantity", "whole number"),
        ({"quantity": 0}, "quantity", "at least 1"),
        ({"price": "-3"}, "price", "at least 0"),
        ({"price": "abc"}, "price", "not a number"),
        ({"event_id": "  "}, "event_id", "is required"),
        ({"type": "complaint", "status": "open"}, "reason", "'complaint' event"),
        ({"type": "service_contact", "reason": "where is it"}, "status", "'service_contact'"),
        ({"type": "complaint", "reason": "late", "status": "closed"}, "status", "not one of"),
    ],
)
def test_a_bad_field_is_named(overrides: dict[str, object], field: str, says: str) -> None:
    bad = event(event_id="bad")
    bad.update(overrides)
    errors = errors_of([event(event_id="ok"), bad])
    assert any(e.field == field and says in e.message for e in errors), errors
    # The good record is not blamed; the bad one is named by position and key.
    assert {e.index for e in errors} == {1}
    assert all(e.key in ("bad", None) for e in errors)


def test_unknown_and_missing_columns_are_all_named() -> None:
    frame = pd.DataFrame([event()]).drop(columns=["channel", "type"]).assign(colour="red")
    with pytest.raises(BatchRejected) as caught:
        validate(frame, EVENTS)
    fields = {(e.field, e.index) for e in caught.value.errors}
    assert fields == {("colour", None), ("channel", None), ("type", None)}


def test_an_exact_repeat_is_folded_and_a_conflicting_one_rejected() -> None:
    batch = validate(pd.DataFrame([event(), event(), event(event_id="e2")]), EVENTS)
    assert len(batch.frame) == 2
    assert batch.repeats == 1
    errors = errors_of([event(), event(item_id="I2")])
    assert errors[0].index == 1
    assert "repeats the key of record 0" in errors[0].message


def test_timestamps_from_parquet_must_be_zoned() -> None:
    naive = pd.DataFrame([event()]).assign(ts=pd.Timestamp("2026-03-01 10:00"))
    with pytest.raises(BatchRejected, match="no UTC offset"):
        validate(naive, EVENTS)
    zoned = naive.assign(ts=pd.Timestamp("2026-03-01 10:00", tz="Europe/Paris"))
    assert validate(zoned, EVENTS).frame["ts"].iloc[0] == pd.Timestamp("2026-03-01T09:00Z")


def test_reference_rules() -> None:
    items = pd.DataFrame(
        {"item_id": ["I1", "I2"], "category": ["Shoes", None], "active": ["yes", "maybe"]}
    )
    with pytest.raises(BatchRejected) as caught:
        validate(items, CATALOGUE)
    assert {(e.index, e.field) for e in caught.value.errors} == {(1, "category"), (1, "active")}
    offers = pd.DataFrame(
        {
            "offer_id": ["O1", "O2"],
            "name": ["a", "b"],
            "kind": ["promotion", "product"],
            "channels": ["email, app", "email,pigeon"],
            "valid_from": ["2026-01-10", "2026-01-01"],
            "valid_until": ["2026-01-01", "2026-02-01"],
        }
    )
    with pytest.raises(BatchRejected) as caught:
        validate(offers, OFFERS)
    assert {(e.index, e.field) for e in caught.value.errors} == {
        (0, "valid_until"),
        (1, "channels"),
    }
    good = validate(pd.DataFrame([{"item_id": "I1", "category": "Shoes"}]), CATALOGUE).frame
    assert bool(good["active"].iloc[0]) is True
