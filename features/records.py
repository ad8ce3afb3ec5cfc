"""Check a small batch of records (an API request) against a `TableSchema`, one row at a time.

The row path of `features.validation`: the same fields, rules, messages and canonical
values, without building a DataFrame (whose fixed cost per column is ~40 ms a batch
whatever its size). Tests hold the two paths equal on the same cases. Only timestamps
go through pandas, in one call per batch, so that both paths parse times alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from features.schema import Field, Required, TableSchema
from features.validation import (
    EARLIEST,
    FALSE_WORDS,
    HAPPENED_FROM,
    INT_LIMIT,
    LATEST,
    NOT_TEXT,
    TRUE_WORDS,
    UNPAIRED,
    UNPRINTABLE,
    UNPRINTABLE_MESSAGE,
    BatchRejected,
    RecordError,
    coerce_timestamps,
    happened_until,
    is_not_text,
    repeat_message,
)

#: Values JSON can carry where a single value belongs.
_NESTED = (dict, list, tuple, set)


@dataclass(frozen=True)
class ValidRecords:
    """Records in canonical form (every schema field, missing ones as None; timestamps as
    UTC `pd.Timestamp`), with how many exact repeats inside the batch were folded."""

    rows: list[dict[str, Any]]
    repeats: int


def validate_records(records: Sequence[Mapping[str, Any]], schema: TableSchema) -> ValidRecords:
    """Validate `records` against `schema`; the row twin of `features.validation.validate`.

    Returns the canonical records with exact repeats folded. Raises `BatchRejected` with
    every problem (record position, key, field, reason) when any record breaks a rule.
    """
    rules = [r for r in schema.rules if isinstance(r, Required)]
    if len(rules) != len(schema.rules):
        raise TypeError(f"{schema.name}: only `Required` rules have a row path")
    errors: list[RecordError] = []
    seen_columns: set[Any] = set().union(*records)
    for name in sorted(seen_columns, key=str):
        if name not in schema.columns:
            expected = f"unknown column (expected: {', '.join(schema.columns)})"
            errors.append(RecordError(None, None, str(name), expected))
    n = len(records)
    # Every row starts as the missing value of each field (in the schema's order); the
    # fields the records carry are then filled in column by column.
    template = {field.name: _missing(field) for field in schema.fields}
    out: list[dict[str, Any]] = [template.copy() for _ in range(n)]
    bad: list[tuple[str, list[str | None]]] = []
    for field in schema.fields:
        if field.name not in seen_columns:
            if field.required:
                errors.append(RecordError(None, None, field.name, "required column is missing"))
            continue
        raw = [record.get(field.name) for record in records]
        values, messages = _coerce(raw, field)
        for row, value in zip(out, values, strict=True):
            row[field.name] = value
        bad.append((field.name, messages))
    for name, messages in bad:  # keys are canonical only once every field is
        errors.extend(_errors(messages, out, schema, name))
    if any(e.index is None for e in errors):
        _reject(schema, errors, n)
    own = dict(bad)  # per field, the message of each record's value (None: no problem)
    for rule in rules:
        errors.extend(_errors(_broken(rule, out, own.get(rule.field)), out, schema, rule.field))
    kept, repeats = _fold_repeats(out, schema, errors)
    if errors:
        _reject(schema, errors, n)
    return ValidRecords(kept, repeats)


def _reject(schema: TableSchema, errors: list[RecordError], n: int) -> None:
    errors.sort(key=lambda e: (-1 if e.index is None else e.index, e.field))
    raise BatchRejected(schema.name, errors, n)


def _key(row: Mapping[str, Any], schema: TableSchema) -> str | None:
    text = "/".join("" if row[k] is None else str(row[k]) for k in schema.key)
    return text or None


def _broken(
    rule: Required, out: list[dict[str, Any]], own: list[str | None] | None
) -> list[str | None]:
    """`rule.broken_by` of each record, asked only of those that may break it (the field
    missing, and the `when` field, if any, holding one of its values), and not of those
    whose value of the field has a problem of its own (`own`: named once)."""
    field, when, values = rule.field, rule.when, rule.values
    found = [
        rule.broken_by(row)
        if row[field] is None and (when is None or str(row[when]) in values)
        else None
        for row in out
    ]
    if own is not None and any(found):
        found = [None if mine is not None else f for f, mine in zip(found, own, strict=True)]
    return found


def _errors(
    messages: list[str | None], out: list[dict[str, Any]], schema: TableSchema, field: str
) -> list[RecordError]:
    if not any(messages):  # a message is never empty
        return []
    return [
        RecordError(i, _key(out[i], schema), field, message)
        for i, message in enumerate(messages)
        if message is not None
    ]


def _missing(field: Field) -> Any:
    if field.kind in ("float", "bool") and field.default is not None:
        return float(field.default) if field.kind == "float" else bool(field.default)
    return None


def _present(value: Any) -> bool:
    """None and blank text are missing; a NaN is not (JSON says missing with null: a NaN
    or Infinity literal, which no JSON standard allows, is refused, not dropped)."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def _coerce(raw: list[Any], field: Field) -> tuple[list[Any], list[str | None]]:
    """One column: canonical values and a message (or None) per record. A later check's
    message replaces an earlier one's: single value, the kind's own checks, required,
    then what no field may hold (an unpaired surrogate, a NaN literal)."""
    if field.kind == "timestamp":
        return _times(raw, field)
    if field.kind == "str":
        plain = _plain_texts(raw, field)
        if plain is not None:
            return plain
    coerce = {"str": _text, "int": _number, "float": _number, "bool": _truth}[field.kind]
    missing = _missing(field)
    absent = "is required" if field.required else None
    values: list[Any] = []
    messages: list[str | None] = []
    for value in raw:
        if value is None:
            values.append(missing)
            messages.append(absent)
            continue
        message: str | None = None
        if isinstance(value, _NESTED):
            here, message = False, "is not a single value"
        else:
            here = _present(value)
        if here:
            canonical, problem = coerce(value, field)
            if problem is not None:
                message = problem
        else:
            canonical = missing
            if field.required:
                message = "is required"
        never = _never_stored(value)
        if never == UNPRINTABLE_MESSAGE:  # no text holds it: missing, as on the frame path
            canonical = missing
        values.append(canonical)
        messages.append(never or message)
    return values, messages


def _plain_texts(raw: list[Any], field: Field) -> tuple[list[Any], list[str | None]] | None:
    """A text column all of whose values are plain (printable ASCII, not blank, not too
    long, among the choices if any) or null: the values trimmed, as `_text` gives them,
    and their messages (a null's: "is required" when the field is); else None (asked
    value by value). Checked column-wise, in C: the common case of every request."""
    given = [value for value in raw if value is not None]
    if not all(type(value) is str for value in given):
        return None
    joined = "".join(given)  # no control character or surrogate in printable ASCII
    if not (joined.isascii() and joined.isprintable()):
        return None
    texts = [value.strip() for value in given]
    if not all(texts) or max(map(len, texts), default=0) > field.max_length:
        return None
    if field.choices is not None and not field.choices.issuperset(texts):
        return None
    if len(given) == len(raw):
        return texts, [None] * len(texts)
    absent = "is required" if field.required else None
    trimmed = iter(texts)
    values = [None if value is None else next(trimmed) for value in raw]
    return values, [absent if value is None else None for value in raw]


def _times(raw: list[Any], field: Field) -> tuple[list[Any], list[str | None]]:
    """A timestamp column (`_coerce`): the times are parsed together (`_timestamps`)."""
    present = [not isinstance(v, _NESTED) and _present(v) for v in raw]
    values, messages = _timestamps(raw, present, field)
    if all(present) and all(type(v) is str for v in raw) and "".join(raw).isascii():
        return values, messages  # the common case: nothing below applies
    for i, value in enumerate(raw):
        if isinstance(value, _NESTED):
            messages[i] = "is not a single value"
        if field.required and not present[i]:
            messages[i] = "is required"
        messages[i] = _never_stored(value) or messages[i]
    return values, messages


def _never_stored(value: Any) -> str | None:
    """What no field may hold, whatever its kind: a text with an unpaired surrogate (no
    text encoding stores it) or a NaN literal (not null)."""
    if isinstance(value, str):
        return UNPRINTABLE_MESSAGE if not value.isascii() and UNPAIRED.search(value) else None
    if isinstance(value, float) and math.isnan(value):
        return "is not a finite number"
    return None


def _text(value: Any, field: Field) -> tuple[Any, str | None]:
    if is_not_text(value):
        return None, NOT_TEXT
    text = str(value).strip()
    plain = text.isascii() and text.isprintable()  # no control character, no surrogate
    message = None if plain or not UNPRINTABLE.search(text) else UNPRINTABLE_MESSAGE
    if len(text) > field.max_length:
        message = f"is longer than {field.max_length} characters"
    if field.choices is not None and text not in field.choices:
        message = f"'{text}' is not one of: {field.allowed()}"
    return text, message


def _number(value: Any, field: Field) -> tuple[Any, str | None]:
    """As `pd.to_numeric`, then the same checks in the same order as the frame path (a
    later message replaces an earlier one)."""
    number = None if isinstance(value, bool) else _to_float(value)  # true is no number
    if number is None:
        return _missing(field), "is not a number"
    message = None
    if not math.isfinite(number):
        message = "is not a finite number"
    if field.kind == "int":
        if number % 1 != 0 or math.isnan(number % 1):
            message = "is not a whole number"
        if abs(number) > INT_LIMIT:
            message = f"is larger than {INT_LIMIT:,}"
    if field.min_value is not None and number < field.min_value:
        message = f"must be at least {field.min_value:g}"
    if field.max_value is not None and number > field.max_value:
        message = f"must be at most {field.max_value:g}"
    if field.kind == "int":
        return (None if message else round(number)), message
    return number, message


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return None
    text = str(value).strip()
    if "_" in text:  # Python reads 1_000; pandas (the file path) does not
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _truth(value: Any, field: Field) -> tuple[Any, str | None]:
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True, None
    if text in FALSE_WORDS:
        return False, None
    return _missing(field), "is not true or false"


#: Times written the common way (…T09:15:00Z, …T09:15:00.123+01:00): parsed in Python.
#: Anything else goes to the frame path's pandas parser, so both paths read it alike.
_PLAIN_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})"
)


def _timestamps(
    raw: list[Any], present: list[bool], field: Field
) -> tuple[list[pd.Timestamp | None], list[str | None]]:
    """Every time of the column: plain ones in Python, the rest in one pandas call by the
    frame path's own parser."""
    values: list[pd.Timestamp | None] = [None] * len(raw)
    messages: list[str | None] = [None] * len(raw)
    rest = []
    # Once a batch (it reads the clock); a datetime, compared in C with each time.
    until = happened_until().to_pydatetime(warn=False) if field.happened else None
    for i, (value, here) in enumerate(zip(raw, present, strict=True)):
        if not here:
            continue
        parsed = _plain_time(value, until)
        if parsed is None:
            rest.append(i)
        else:
            values[i] = parsed
    if rest:
        series = pd.Series([raw[i] for i in rest], dtype=object)
        times, notes = coerce_timestamps(
            series, pd.Series(True, index=series.index), field.allow_date, field.happened
        )
        for i, t, m in zip(rest, times.tolist(), notes.tolist(), strict=True):
            values[i] = None if pd.isna(t) else t
            messages[i] = None if pd.isna(m) else str(m)
    return values, messages


def _plain_time(value: Any, until: datetime | None) -> pd.Timestamp | None:
    """The time, parsed in Python, when it is plain and inside its bounds (with `until`,
    a time that has happened: between `HAPPENED_FROM` and `until`); else None (the frame
    path's parser reads it and words the message)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not _PLAIN_TIME.fullmatch(text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None  # e.g. month 13: pandas words the message
    if until is not None:  # inside the span pandas holds, too
        if not _HAPPENED_FROM <= moment <= until:
            return None
    elif not _EARLIEST <= moment <= _LATEST:
        return None
    return pd.Timestamp(moment.astimezone(UTC))


#: The bounds as datetimes: compared with a parsed time without making it a Timestamp.
_EARLIEST, _LATEST, _HAPPENED_FROM = (t.to_pydatetime() for t in (EARLIEST, LATEST, HAPPENED_FROM))


def _fold_repeats(
    rows: list[dict[str, Any]], schema: TableSchema, errors: list[RecordError]
) -> tuple[list[dict[str, Any]], int]:
    """Exact repeats of a record fold into one; a key repeated with other content is an
    error (appended to `errors`)."""
    first: dict[tuple[Any, ...], int] = {}
    whole: set[tuple[Any, ...]] = set()
    kept: list[dict[str, Any]] = []
    repeats = 0
    for i, row in enumerate(rows):
        content = tuple(row.values())
        if content in whole:
            repeats += 1
            continue
        whole.add(content)
        key = tuple(row[k] for k in schema.key)
        if key in first:
            text = "/".join(str(v) for v in key)
            errors.append(RecordError(i, text, schema.key[0], repeat_message(first[key])))
            continue
        first[key] = i
        kept.append(row)
    return kept, repeats
