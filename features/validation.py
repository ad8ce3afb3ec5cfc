"""Check a whole batch of records against a `TableSchema`, vectorised; say exactly what is wrong.

The same function serves file ingest and the HTTP API: it never half-accepts. It returns
the batch in canonical form (UTC timestamps, typed columns, duplicates folded) or raises
`BatchRejected` listing every bad record by position, key and field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
import pandas as pd

from features.schema import Field, TableSchema

_OFFSET = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
_DATE_ONLY = r"^\d{4}-\d{2}-\d{2}$"
#: How true and false may be written.
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
#: A JSON true/false or a fraction where a field holds text (both paths say it alike).
NOT_TEXT = "is not text"


def is_not_text(value: object) -> bool:
    """A JSON true/false, or a fraction, where text (an id) belongs: both paths' rule."""
    return isinstance(value, bool) or (
        isinstance(value, float) and not math.isnan(value) and not value.is_integer()
    )


@dataclass(frozen=True)
class RecordError:
    """One problem: the record's position (None: whole batch), its key, the field, the reason."""

    index: int | None
    key: str | None
    field: str
    message: str


class BatchRejected(ValueError):
    """A batch had bad records; nothing of it was applied."""

    def __init__(self, table: str, errors: list[RecordError], total_rows: int) -> None:
        self.table = table
        self.errors = errors
        self.total_rows = total_rows
        first = errors[0]
        super().__init__(
            f"{table}: {len(errors)} problem(s) in {total_rows} record(s); first: "
            f"record {first.index} field '{first.field}': {first.message}"
        )


@dataclass(frozen=True)
class ValidBatch:
    """A batch in canonical form, with how many exact repeats inside it were folded."""

    frame: pd.DataFrame
    repeats: int


def frame_of(
    records: Sequence[Mapping[str, object]], index: pd.Index | None = None
) -> pd.DataFrame:
    """Records (parsed JSON) as a frame of their values exactly as written: object columns,
    so that an id written 5 stays 5 (pandas would make it 5.0 beside a missing one)."""
    names = dict.fromkeys(key for record in records for key in record)
    columns = {
        name: pd.Series([r.get(name) for r in records], dtype=object, index=index) for name in names
    }
    return pd.DataFrame(columns, index=index if index is not None else pd.RangeIndex(len(records)))


def validate(frame: pd.DataFrame, schema: TableSchema) -> ValidBatch:
    """Validate `frame` against `schema`.

    Returns the canonical frame (columns in schema order, strings stripped, numbers typed,
    timestamps as UTC datetimes) with exact duplicate records folded into one.
    Raises `BatchRejected` with every bad record when any record breaks a rule.
    """
    frame = frame.reset_index(drop=True)
    errors: list[RecordError] = []
    unknown = [col for col in frame.columns if col not in schema.columns]
    for col in unknown:
        errors.append(
            RecordError(
                None, None, str(col), f"unknown column (expected: {', '.join(schema.columns)})"
            )
        )
    out = pd.DataFrame(index=frame.index)
    own: dict[str, pd.Series] = {}  # per field, the records with a problem of its value
    for field in schema.fields:
        if field.name not in frame.columns:
            if field.required:
                errors.append(RecordError(None, None, field.name, "required column is missing"))
            out[field.name] = _empty(field, len(frame))
            continue
        out[field.name], bad = _coerce(frame[field.name], field)
        own[field.name] = bad.notna()
        errors.extend(_errors(bad, out, schema, field.name))
    if any(e.index is None for e in errors):
        _reject(schema, errors, frame)
    for rule in schema.rules:  # not where the field's value has a problem of its own
        mask = rule.violated(out).fillna(False).to_numpy(dtype=bool)
        if rule.field in own:
            mask = mask & ~own[rule.field].to_numpy(dtype=bool)
        if mask.any():
            messages = rule.message(out[mask])
            errors.extend(
                _errors(pd.Series(messages, index=out.index[mask]), out, schema, rule.field)
            )
    out, repeat_errors, repeats = _fold_duplicates(out, schema)
    errors.extend(repeat_errors)
    if errors:
        _reject(schema, errors, frame)
    return ValidBatch(out, repeats)


def _reject(schema: TableSchema, errors: list[RecordError], frame: pd.DataFrame) -> NoReturn:
    errors.sort(key=lambda e: (-1 if e.index is None else e.index, e.field))
    raise BatchRejected(schema.name, errors, len(frame))


def _key_of(out: pd.DataFrame, schema: TableSchema, index: pd.Index) -> pd.Series:
    parts = [out.loc[index, k].astype("string").fillna("") for k in schema.key]
    key: pd.Series = parts[0]
    for part in parts[1:]:
        key = key + "/" + part
    return key


def _errors(
    bad: pd.Series, out: pd.DataFrame, schema: TableSchema, field: str
) -> list[RecordError]:
    """`bad` holds a message for each bad row (indexed by row), nothing for good ones."""
    bad = bad.dropna()
    if bad.empty:
        return []
    keys = _key_of(out, schema, bad.index)
    return [
        RecordError(int(i), (k or None), field, str(m))
        for i, k, m in zip(bad.index, keys, bad, strict=True)
    ]


def _empty(field: Field, n: int) -> pd.Series:
    if field.kind == "timestamp":
        return pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]")
    if field.kind == "int":
        return pd.Series(pd.NA, index=range(n), dtype="Int64")
    if field.kind == "float":
        value = np.nan if field.default is None else float(field.default)
        return pd.Series(value, index=range(n), dtype="float64")
    if field.kind == "bool":
        return pd.Series(field.default, index=range(n), dtype="boolean")
    return pd.Series(None, index=range(n), dtype="object")


#: The times a timestamp may take (what nanosecond datetimes hold).
EARLIEST = pd.Timestamp.min.ceil("s").tz_localize("UTC")
LATEST = pd.Timestamp.max.floor("s").tz_localize("UTC")
SPAN = f"{EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}"
#: A time that happened (`Field.happened`) is not before this, nor more than AHEAD from now.
HAPPENED_FROM = pd.Timestamp("1970-01-01", tz="UTC")
AHEAD = pd.Timedelta(days=1)


def happened_until() -> pd.Timestamp:
    """The latest time that can have happened: now (UTC) plus AHEAD."""
    return pd.Timestamp.now(tz="UTC") + AHEAD


#: Characters no id or name holds: control characters (NUL included) and lone surrogates
#: (half of a UTF-16 pair, which no text encoding stores: only a JSON escape makes one,
#: and only the row path of `features.records` reads JSON).
CONTROL = r"[\x00-\x1f\x7f-\x9f]"  # written with escapes: read by Python and by Arrow
UNPAIRED = re.compile(r"[\ud800-\udfff]")
UNPRINTABLE = re.compile(f"{CONTROL}|{UNPAIRED.pattern}")
UNPRINTABLE_MESSAGE = "holds a control character or an unpaired surrogate"

#: Whole numbers are stored as 32-bit integers.
INT_LIMIT = 2**31 - 1


def _as_text(raw: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series | None]:
    """A column of values as Arrow text: (the column, its text, where it held a lone
    surrogate or None). Arrow cannot hold one (only a JSON file's Python strings can), so
    such values are left out of both, for the caller to name."""
    try:
        return raw, raw.astype("string"), None
    except UnicodeEncodeError:
        unpaired = raw.map(
            lambda v: isinstance(v, str) and bool(UNPAIRED.search(v)), na_action="ignore"
        ).eq(True)
        raw = raw.where(~unpaired)
        return raw, raw.astype("string"), unpaired


def _coerce(raw: pd.Series, field: Field) -> tuple[pd.Series, pd.Series]:
    """Coerce one column; return (values, messages for bad rows)."""
    unpaired = None
    if raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        raw, text, unpaired = _as_text(raw)
        present = raw.notna() & (text.str.strip().fillna("") != "")
    else:
        present = raw.notna()
    messages = pd.Series(None, index=raw.index, dtype="object")
    if unpaired is not None:
        messages[unpaired] = UNPRINTABLE_MESSAGE
    if raw.dtype == object:
        # JSON can carry lists and objects where a value belongs (a file never does).
        found = raw.map(lambda v: isinstance(v, (dict, list, tuple, set)), na_action="ignore")
        nested = found.eq(True)  # a missing value (left out of the map) is not nested
        if nested.any():
            messages[nested] = "is not a single value"
            raw = raw.where(~nested)
            present &= ~nested
    if field.kind == "str":
        # `is_not_text`, by column where the dtype says it (as records._text, per value).
        not_text = pd.Series(False, index=raw.index)
        if raw.dtype == bool:
            not_text = present.copy()
        elif raw.dtype.kind == "f":
            not_text = present & (raw % 1 != 0)
        elif raw.dtype == object and pd.api.types.infer_dtype(raw, skipna=True) != "string":
            not_text = raw.map(is_not_text).astype(bool)
        values = raw.astype("string").str.strip()
        values = values.where(present)
        unprintable = values.str.contains(CONTROL, regex=True).fillna(False)
        messages[unprintable & present] = UNPRINTABLE_MESSAGE
        too_long = values.str.len() > field.max_length
        messages[too_long.fillna(False)] = f"is longer than {field.max_length} characters"
        if field.choices is not None:
            wrong = present & ~values.isin(field.choices)
            allowed = field.allowed()
            messages[wrong] = "'" + values[wrong].astype(str) + f"' is not one of: {allowed}"
        messages[not_text] = NOT_TEXT
        result = values.astype(object).where(present & ~not_text, None)
    elif field.kind in ("int", "float"):
        # A JSON true/false is no number (as records._number).
        if raw.dtype == bool:
            raw = pd.Series(np.nan, index=raw.index, dtype=object)
        elif raw.dtype == object:
            raw = raw.where(~raw.map(lambda v: isinstance(v, bool)).astype(bool))
        numbers = pd.to_numeric(raw.where(present), errors="coerce")
        messages[present & numbers.isna()] = "is not a number"
        finite = numbers.notna()
        messages[finite & ~np.isfinite(numbers.fillna(0))] = "is not a finite number"
        if field.kind == "int":
            messages[finite & (numbers.fillna(0) % 1 != 0)] = "is not a whole number"
            messages[finite & (numbers.abs() > INT_LIMIT)] = f"is larger than {INT_LIMIT:,}"
        if field.min_value is not None:
            messages[finite & (numbers < field.min_value)] = f"must be at least {field.min_value:g}"
        if field.max_value is not None:
            messages[finite & (numbers > field.max_value)] = f"must be at most {field.max_value:g}"
        if field.kind == "int":
            result = numbers.where(messages.isna()).round().astype("Int64")
        else:
            result = numbers.astype("float64")
            if field.default is not None:
                result = result.fillna(float(field.default))
    elif field.kind == "bool":
        result, bad = _coerce_bool(raw, present)
        messages[bad] = "is not true or false"
        if field.default is not None:
            result = result.fillna(bool(field.default))
    else:
        result, bad_msg = coerce_timestamps(raw, present, field.allow_date, field.happened)
        messages = messages.where(bad_msg.isna(), bad_msg)
    if field.required:
        messages[~present] = "is required"
    if unpaired is not None:  # there, but no text holds it: said so (as the row path)
        messages[unpaired] = UNPRINTABLE_MESSAGE
    return result, messages


def _coerce_bool(raw: pd.Series, present: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype("boolean"), pd.Series(False, index=raw.index)
    text = raw.astype("string").str.strip().str.lower()
    truth = text.isin(TRUE_WORDS)
    falsity = text.isin(FALSE_WORDS)
    result = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    result[truth.fillna(False)] = True
    result[falsity.fillna(False)] = False
    bad = present & ~(truth.fillna(False) | falsity.fillna(False))
    return result, bad


def coerce_timestamps(
    raw: pd.Series, present: pd.Series, allow_date: bool, happened: bool = False
) -> tuple[pd.Series, pd.Series]:
    """Parse a column of ISO-8601 times with an offset: (UTC datetimes, messages)."""
    messages = pd.Series(None, index=raw.index, dtype="object")
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert("UTC").astype("datetime64[ns, UTC]"), messages
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        messages[present] = "has no UTC offset (write e.g. 2026-03-01T10:00:00+01:00 or ...Z)"
        return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]"), messages
    text = raw.astype("string").str.strip().where(present)
    is_date = text.str.match(_DATE_ONLY).fillna(False) if allow_date else present & False
    has_offset = text.str.contains(_OFFSET).fillna(False)
    no_offset = present & ~has_offset & ~is_date
    messages[no_offset] = (
        "'"
        + text[no_offset].astype(str)
        + "' has no UTC offset (write e.g. ...T10:00:00+01:00 or ...Z)"
    )
    parse = text.where(has_offset | is_date)
    parsed = pd.to_datetime(parse, utc=True, format="ISO8601", errors="coerce")
    unparsed = parse.notna() & parsed.isna()
    messages[unparsed] = "'" + text[unparsed].astype(str) + "' is not an ISO-8601 time"
    outside = parsed.notna() & ((parsed < EARLIEST) | (parsed > LATEST))
    if outside.any():
        messages[outside] = "'" + text[outside].astype(str) + f"' is not between {SPAN}"
        parsed = parsed.where(~outside)
    if happened:
        until = happened_until()
        early, ahead = parsed < HAPPENED_FROM, parsed > until
        messages[early] = "'" + text[early].astype(str) + f"' is before {HAPPENED_FROM:%Y-%m-%d}"
        messages[ahead] = (
            "'" + text[ahead].astype(str) + f"' is more than a day ahead of now ({until:%Y-%m-%d})"
        )
        parsed = parsed.where(~(early | ahead))
    return parsed.astype("datetime64[ns, UTC]"), messages


def _fold_duplicates(
    out: pd.DataFrame, schema: TableSchema
) -> tuple[pd.DataFrame, list[RecordError], int]:
    """Fold exact repeats of a key into one; a key repeated with other content is an error."""
    key_cols = list(schema.key)
    dup_key = out.duplicated(key_cols, keep=False)
    if not dup_key.any():
        return out, [], 0
    exact = out.astype("string").fillna("\x00").duplicated(keep="first")
    repeats = int(exact.sum())
    folded = out[~exact]
    clash = folded.duplicated(key_cols, keep="first")
    errors: list[RecordError] = []
    if clash.any():
        first_at = folded[~folded.duplicated(key_cols, keep="first")]
        first_pos = {
            tuple(row): int(i)
            for i, row in zip(
                first_at.index, first_at[key_cols].itertuples(index=False), strict=True
            )
        }
        for i, row in zip(
            folded.index[clash], folded.loc[clash, key_cols].itertuples(index=False), strict=True
        ):
            errors.append(
                RecordError(
                    int(i),
                    "/".join(str(v) for v in row),
                    key_cols[0],
                    repeat_message(first_pos[tuple(row)]),
                )
            )
    return folded, errors, repeats


def repeat_message(first: int) -> str:
    """What a record that reuses the key of record `first` with other content is told."""
    return f"repeats the key of record {first} with different content"
