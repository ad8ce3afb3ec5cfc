"""The row path (API requests) and the frame path (files) of validation agree on every case.

Random batches of good and bad events go through both; the canonical records or the list
of problems (position, key, field, message) must be the same.
"""

from __future__ import annotations

import math
from typing import Any

import jsonschema
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import columns as c
from features.records import validate_records
from features.schema import EVENTS, json_schema
from features.validation import INT_LIMIT, BatchRejected, RecordError, frame_of, validate

JUNK = st.one_of(
    st.none(),
    st.just(""),
    st.just("   "),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.just([1]),
    st.just({"a": 1}),
    st.sampled_from(["C\x00D", "tab\there", "\x85"]),
)
TIMES = st.one_of(
    st.sampled_from(
        [
            "2026-03-01T10:00:00+01:00",
            "2026-03-01T09:00:00Z",
            "2026-03-01 09:00:00+0100",
            "2026-03-01T10:00:00",
            "yesterday+01:00",
            "2026-13-01T10:00:00Z",
            "2026-03-01T09:00:00.123456789Z",
            " 2026-03-01T09:00Z ",
            "2026-03-01T09:00:00.5+05:30",
            "2026-02-30T09:00Z",
            "2026-03-01T09:00",
            "2263-01-01T00:00:00Z",
            "1600-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2100-01-01T00:00:00Z",
        ]
    ),
    JUNK,
)
NUMBERS = st.one_of(
    st.sampled_from(["2", " 7 ", "1.5", "1e3", "-3", "abc", "inf", "nan", "1_000", "0x10", 0, 3]),
    JUNK,
)


def _field(good: st.SearchStrategy[Any], weird: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(good, good, good, weird)


EVENT = st.fixed_dictionaries(
    {
        c.EVENT_ID: _field(st.sampled_from(["e1", "e2", "e3", " e1 "]), JUNK),
        c.TS: _field(st.just("2026-03-01T10:00:00+01:00"), TIMES),
        c.CHANNEL: _field(st.sampled_from(["web", "app", "store", "email"]), JUNK),
        c.TYPE: _field(st.sampled_from(["view", "purchase", "identify", "offer_shown"]), JUNK),
    },
    optional={
        c.CUSTOMER_ID: _field(st.sampled_from(["C1", "C2"]), JUNK),
        c.ANONYMOUS_ID: _field(st.sampled_from(["a1", "a2"]), JUNK),
        c.ITEM_ID: _field(st.sampled_from(["I1", "I2"]), JUNK),
        c.QUANTITY: _field(st.integers(1, 5), NUMBERS),
        c.PRICE: _field(st.floats(0, 100, allow_nan=False), NUMBERS),
        c.STORE_ID: _field(st.just("S1"), JUNK),
        c.OFFER_ID: _field(st.just("O1"), JUNK),
        "colour": st.just("red"),
    },
)


def _frame_path(records: list[dict[str, Any]]) -> list[dict[str, Any]] | list[RecordError]:
    try:
        batch = validate(frame_of(records), EVENTS)
    except BatchRejected as rejected:
        return rejected.errors
    rows = batch.frame.astype(object).to_dict("records")
    return [{k: _plain(v) for k, v in row.items()} for row in rows]


def _row_path(records: list[dict[str, Any]]) -> list[dict[str, Any]] | list[RecordError]:
    try:
        return [
            {k: _plain(v) for k, v in row.items()} for row in validate_records(records, EVENTS).rows
        ]
    except BatchRejected as rejected:
        return rejected.errors


def _plain(value: Any) -> Any:
    """Missing is None whatever the path's container (NaN, NA, NaT)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EVENT, min_size=1, max_size=6))
def test_row_and_frame_paths_agree(records: list[dict[str, Any]]) -> None:
    assert _row_path(records) == _frame_path(records)


@pytest.mark.parametrize(
    ("field", "odd"),
    [
        (c.EVENT_ID, "   "),
        (c.EVENT_ID, "e" * 129),
        (c.ITEM_ID, "I" * 257),
        (c.ITEM_ID, " I1 "),
        (c.ITEM_ID, "Café"),
        (c.ITEM_ID, "I\x01"),
        (c.ITEM_ID, "I\ud800"),
        (c.EVENT_ID, "e\udfff"),
        (c.CUSTOMER_ID, "C\ud800"),
        (c.CHANNEL, "fax"),
        (c.CHANNEL, " web "),
        (c.TS, "2026-03-01T09:00:00Z "),
        (c.TS, "2026-03-01T09:00:00\u00a0Z"),
        (c.TS, "1969-12-31T23:59:59Z"),
    ],
)
def test_a_column_of_texts_with_one_odd_value_agrees(field: str, odd: str) -> None:
    """Every value of the column is text, all plain but one: the row path's column-wise
    shortcut must give way to the value-by-value rules, as the frame path reads them."""
    records = [
        {"event_id": f"e{i}", "ts": f"2026-03-01T09:0{i}:00Z", "customer_id": "C1",
         "channel": "web", "type": "view", "item_id": f"I{i}"}
        for i in range(4)
    ]  # fmt: skip
    records[2][field] = odd
    assert _row_path(records) == _frame_path(records)


def test_a_good_event_comes_back_canonical() -> None:
    rows = validate_records(
        [
            {
                "event_id": " w1 ",
                "ts": "2026-03-01T10:00:00+01:00",
                "customer_id": "C1",
                "channel": "web",
                "type": "purchase",
                "item_id": "I1",
                "quantity": "2",
                "price": 3,
            }
        ],
        EVENTS,
    ).rows
    assert rows[0]["event_id"] == "w1"
    assert rows[0]["ts"] == pd.Timestamp("2026-03-01T09:00:00Z")
    assert rows[0]["quantity"] == 2 and rows[0]["price"] == 3.0
    assert rows[0]["store_id"] is None


def test_every_problem_is_named_by_record_and_field() -> None:
    with pytest.raises(BatchRejected) as caught:
        validate_records(
            [
                {"event_id": "s1", "ts": "2026-03-01T10:00:00Z", "customer_id": "C1",
                 "channel": "store", "type": "view", "item_id": "I1"},
                {"event_id": "s2", "ts": "2026-03-01T10:00:00", "anonymous_id": "a",
                 "channel": "fax", "type": "view"},
            ],
            EVENTS,
        )  # fmt: skip
    found = {(e.index, e.key, e.field) for e in caught.value.errors}
    assert found == {
        (0, "s1", "store_id"),
        (1, "s2", "ts"),
        (1, "s2", "channel"),
        (1, "s2", "item_id"),
    }


@pytest.mark.parametrize("item", [["I1"], "I\ud800", True, "   "])
def test_a_field_with_a_bad_value_is_named_once(item: Any) -> None:
    """A view's item that is there but bad gets its own problem, not also the rule's
    "required for a 'view' event" (blank counts as missing: that is the rule's)."""
    record = {"event_id": "v1", "ts": "2026-03-01T10:00:00Z", "customer_id": "C1",
              "channel": "web", "type": "view", "item_id": item}  # fmt: skip
    row, frame = _row_path([record]), _frame_path([record])
    assert row == frame
    assert [(e.index, e.field) for e in row] == [(0, "item_id")]
    blank = item == "   "
    assert ("is required for a 'view' event" in row[0].message) is blank  # type: ignore[union-attr]


def test_exact_repeats_fold_and_conflicting_ones_are_refused() -> None:
    one = {"event_id": "e1", "ts": "2026-03-01T10:00:00Z", "customer_id": "C1",
           "channel": "web", "type": "view", "item_id": "I1"}  # fmt: skip
    assert validate_records([one, dict(one)], EVENTS).repeats == 1
    with pytest.raises(BatchRejected, match="repeats the key of record 0"):
        validate_records([one, {**one, "item_id": "I2"}], EVENTS)


# -- the published schema: what a client generator builds from the OpenAPI document ------
def _as_json(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Events as a client would post them: ISO times, no nulls written."""
    out = []
    for row in frame.head(3000).to_dict("records"):
        record = {k: _plain(v) for k, v in row.items()}
        record[c.TS] = pd.Timestamp(record[c.TS]).isoformat()
        out.append({k: v for k, v in record.items() if v is not None})
    return out


def test_every_synthetic_event_fits_the_published_schema(small_world: Any) -> None:
    checker = jsonschema.Draft202012Validator(json_schema(EVENTS, int_limit=INT_LIMIT))
    records = _as_json(validate(small_world.tables["events"], EVENTS).frame)
    assert [e.message for r in records for e in checker.iter_errors(r)] == []
    validate_records(records, EVENTS)  # and the service takes them


@pytest.mark.parametrize(
    "bad",
    [
        {"channel": "fax"},
        {"channel": "store"},
        {"customer_id": None},
        {"type": "purchase", "item_id": None},
        {"quantity": 0},
        {"quantity": 2**31},
        {"colour": "red"},
        {"type": "offer_shown"},
        {"type": "complaint", "status": "open"},
        {"type": "complaint", "reason": "late", "status": "pending"},
    ],
)
def test_what_the_schema_refuses_the_service_refuses(bad: dict[str, Any]) -> None:
    good = {"event_id": "e1", "ts": "2026-03-01T10:00:00Z", "customer_id": "C1",
            "channel": "web", "type": "view", "item_id": "I1"}  # fmt: skip
    record = {k: v for k, v in {**good, **bad}.items() if v is not None}
    checker = jsonschema.Draft202012Validator(json_schema(EVENTS, int_limit=INT_LIMIT))
    assert checker.is_valid(good) and not checker.is_valid(record)
    validate_records([good], EVENTS)
    with pytest.raises(BatchRejected):
        validate_records([record], EVENTS)
