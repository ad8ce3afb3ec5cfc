"""The one definition of every record Omni accepts: events and reference data.

Each table is a `TableSchema`: typed fields plus cross-field rules. `features.validation`
checks a whole DataFrame against it at once, for file ingest and for the HTTP API alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from zoneinfo import available_timezones

import pandas as pd

from features import columns as c

Kind = Literal["str", "int", "float", "bool", "timestamp"]


@dataclass(frozen=True)
class Field:
    """One column: its type, whether it is required, and its allowed values or range."""

    name: str
    kind: Kind
    required: bool = False
    choices: frozenset[str] | None = None
    min_value: float | None = None
    max_value: float | None = None
    max_length: int = 256
    #: The value of a missing boolean or number.
    default: bool | float | None = None
    #: For timestamps: accept a bare date (taken as midnight UTC) as well as a full time.
    allow_date: bool = False
    #: For timestamps: a time something happened, so not before 1970 and not more than
    #: `validation.AHEAD` after now (a clock a little fast is believed, a year is a bug).
    happened: bool = False
    #: How an error names the allowed values, when they are too many to list.
    choices_are: str | None = None

    def allowed(self) -> str:
        """The allowed values as an error message names them."""
        return self.choices_are or ", ".join(sorted(self.choices or ()))


@dataclass(frozen=True)
class Rule:
    """A cross-field rule over a whole frame: `violated(frame)` marks the rows that break it
    (for reference tables, which only files carry)."""

    field: str
    message: Callable[[pd.DataFrame], pd.Series]
    violated: Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class Required:
    """A cross-field rule stated once for every path: `field` must be present when the
    record's `when` field holds one of `values` (always, when `when` is None), unless the
    `unless` field is present. `text` may name the `when` value as `{value}`.

    The frame path (`violated`, `message`), the row path (`broken_by`) and the published
    JSON Schema (`json_schema` below) all read this one statement.
    """

    field: str
    text: str
    when: str | None = None
    values: frozenset[str] = frozenset()
    unless: str | None = None

    def violated(self, frame: pd.DataFrame) -> pd.Series:
        mask = frame[self.field].isna()
        if self.when is not None:
            mask &= frame[self.when].isin(self.values)
        if self.unless is not None:
            mask &= frame[self.unless].isna()
        return mask

    def message(self, frame: pd.DataFrame) -> pd.Series:
        if self.when is None or "{value}" not in self.text:
            return pd.Series(self.text, index=frame.index)
        head, tail = self.text.split("{value}", 1)
        return head + frame[self.when].astype(str) + tail

    def broken_by(self, record: Mapping[str, object]) -> str | None:
        """The message when the canonical `record` breaks the rule, else None."""
        if record.get(self.field) is not None:
            return None
        value = None if self.when is None else record.get(self.when)
        if self.when is not None and str(value) not in self.values:
            return None
        if self.unless is not None and record.get(self.unless) is not None:
            return None
        return self.text.replace("{value}", str(value))


@dataclass(frozen=True)
class TableSchema:
    """A table: its fields, its key (unique per record) and its cross-field rules."""

    name: str
    fields: tuple[Field, ...]
    key: tuple[str, ...]
    rules: tuple[Rule | Required, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _choices(values: Iterable[object]) -> frozenset[str]:
    return frozenset(str(v) for v in values)


def _const(text: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda frame: pd.Series(text, index=frame.index)


_item_types = _choices(c.ITEM_EVENT_TYPES)
_channels = _choices(c.Channel)
_offer_types = _choices(c.OFFER_EVENT_TYPES)
_service_types = _choices(c.SERVICE_EVENT_TYPES)


def _type_message(what: str) -> str:
    return "is required for a '{value}' event (" + what + ")"


EVENTS = TableSchema(
    name="events",
    key=(c.EVENT_ID,),
    fields=(
        Field(c.EVENT_ID, "str", required=True, max_length=128),
        Field(c.TS, "timestamp", required=True, happened=True),
        Field(c.CUSTOMER_ID, "str"),
        Field(c.ANONYMOUS_ID, "str"),
        Field(c.CHANNEL, "str", required=True, choices=_choices(c.Channel)),
        Field(c.TYPE, "str", required=True, choices=_choices(c.EventType)),
        Field(c.ITEM_ID, "str"),
        Field(c.QUANTITY, "int", min_value=1),
        Field(c.PRICE, "float", min_value=0),
        Field(c.STORE_ID, "str"),
        Field(c.ORDER_ID, "str"),
        Field(c.OFFER_ID, "str"),
        Field(c.EVENT_NAME, "str", max_length=128),
        Field(c.REASON, "str", max_length=256),
        Field(c.STATUS, "str", choices=_choices(c.CaseStatus)),
        Field(c.CASE_ID, "str", max_length=128),
        Field(c.SERVED_ID, "str", max_length=64),
    ),
    rules=(
        Required(c.CUSTOMER_ID, "customer_id or anonymous_id is required", unless=c.ANONYMOUS_ID),
        Required(
            c.CUSTOMER_ID,
            "is required for an 'identify' event (it links anonymous_id to it)",
            when=c.TYPE,
            values=frozenset({c.EventType.IDENTIFY.value}),
        ),
        Required(
            c.ANONYMOUS_ID,
            "is required for an 'identify' event (it is linked to customer_id)",
            when=c.TYPE,
            values=frozenset({c.EventType.IDENTIFY.value}),
        ),
        Required(c.ITEM_ID, _type_message("an item event names its item"), c.TYPE, _item_types),
        Required(
            c.EVENT_NAME,
            "is required for a 'custom' event (what happened, by its source's name)",
            when=c.TYPE,
            values=frozenset({c.EventType.CUSTOM.value}),
        ),
        Required(c.OFFER_ID, _type_message("an offer event names its offer"), c.TYPE, _offer_types),
        Required(c.REASON, _type_message("a service case says why"), c.TYPE, _service_types),
        Required(
            c.STATUS, _type_message("a service case says where it stands"), c.TYPE, _service_types
        ),
        Required(
            c.STORE_ID,
            "is required when channel is 'store'",
            when=c.CHANNEL,
            values=frozenset({c.Channel.STORE.value}),
        ),
    ),
)

CATALOGUE = TableSchema(
    name="catalogue",
    key=(c.ITEM_ID,),
    fields=(
        Field(c.ITEM_ID, "str", required=True),
        Field(c.NAME, "str"),
        Field(c.CATEGORY, "str", required=True),
        Field(c.BRAND, "str"),
        Field(c.PRICE, "float", min_value=0),
        Field(c.ACTIVE, "bool", default=True),
    ),
)

#: A customer's or a store's time zone, by its IANA name ("Europe/Paris"): their quiet
#: hours and "per day" caps are counted in it.
TIME_ZONE = Field(
    c.TIMEZONE,
    "str",
    max_length=64,
    choices=frozenset(available_timezones()),
    choices_are='an IANA time zone name such as "Europe/Paris" or "America/New_York"',
)

STORES = TableSchema(
    name="stores",
    key=(c.STORE_ID,),
    fields=(
        Field(c.STORE_ID, "str", required=True),
        Field(c.NAME, "str"),
        Field(c.CITY, "str"),
        TIME_ZONE,
        # Where it is, to answer "nearest first" (either coordinates or a region).
        Field(c.LATITUDE, "float", min_value=-90, max_value=90),
        Field(c.LONGITUDE, "float", min_value=-180, max_value=180),
        Field(c.REGION, "str", max_length=128),
    ),
)

INVENTORY = TableSchema(
    name="inventory",
    key=(c.STORE_ID, c.ITEM_ID),
    fields=(
        # A store id, or "online" for the web and app stock.
        Field(c.STORE_ID, "str", required=True),
        Field(c.ITEM_ID, "str", required=True),
        Field(c.QUANTITY, "int", required=True, min_value=0),
    ),
)

CUSTOMERS = TableSchema(
    name="customers",
    key=(c.CUSTOMER_ID,),
    fields=(
        Field(c.CUSTOMER_ID, "str", required=True),
        Field(c.NAME, "str"),
        Field(c.EMAIL, "str", max_length=320),
        Field(c.HOME_STORE_ID, "str"),
        Field(c.CONSENT_EMAIL, "bool", default=False),
        Field(c.CONSENT_SMS, "bool", default=False),
        Field(c.CONSENT_PUSH, "bool", default=False),
        Field(c.CREATED_AT, "timestamp", allow_date=True),
        TIME_ZONE,
        Field(c.LOYALTY_POINTS, "int", min_value=0),
    ),
)

OFFERS = TableSchema(
    name="offers",
    key=(c.OFFER_ID,),
    fields=(
        Field(c.OFFER_ID, "str", required=True),
        Field(c.NAME, "str", required=True),
        Field(c.KIND, "str", required=True, choices=frozenset(c.OFFER_KINDS)),
        Field(c.ITEM_ID, "str"),
        Field(c.CATEGORY, "str"),
        # Comma-separated channels the offer may be made in; empty means every channel.
        Field(c.CHANNELS, "str"),
        Field(c.VALID_FROM, "timestamp", required=True, allow_date=True),
        Field(c.VALID_UNTIL, "timestamp", required=True, allow_date=True),
        Field(c.VALUE, "float", min_value=0, default=0.0),
        Field(c.DESCRIPTION, "str", max_length=2000),
        Field(c.TIERS, "str"),
    ),
    rules=(
        Rule(
            c.VALID_UNTIL,
            _const("must be after valid_from"),
            lambda f: f[c.VALID_UNTIL] <= f[c.VALID_FROM],
        ),
        Rule(
            c.CHANNELS,
            _const(f"lists a channel that is not one of {', '.join(c.Channel)}"),
            lambda f: f[c.CHANNELS].fillna("").map(_bad_channel_list).astype(bool),
        ),
    ),
)


def _bad_channel_list(text: str) -> bool:
    names = [part.strip() for part in text.split(",") if part.strip()]
    return any(name not in _channels for name in names)


#: Every table by name, in the order a folder is ingested (reference data before events).
TABLES: dict[str, TableSchema] = {
    t.name: t for t in (CATALOGUE, STORES, INVENTORY, CUSTOMERS, OFFERS, EVENTS)
}


#: JSON Schema types of each field kind.
_JSON_TYPES: dict[str, dict[str, object]] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "timestamp": {"type": "string", "format": "date-time"},
}


def json_schema(schema: TableSchema, *, int_limit: int) -> dict[str, object]:
    """The JSON Schema (2020-12, as OpenAPI 3.1 reads it) of one record of `schema`:
    every field with its type, values, limits, and the `Required` rules as conditions,
    so that a client generator or a fuzzer builds records the service accepts."""
    properties: dict[str, object] = {}
    for f in schema.fields:
        prop: dict[str, object] = dict(_JSON_TYPES[f.kind])
        if f.kind == "str" and f.choices is None:
            # An id sent as a JSON number is taken as its text (a true or false is not).
            prop["type"] = ["string", "integer"]
        if f.choices is not None:
            prop["enum"] = sorted(f.choices)
        if f.kind == "str":
            prop["maxLength"] = f.max_length
            # Blank text is absent: an optional field may be "", a required one may not.
            prop["minLength"] = 1 if f.required else 0
            prop["description"] = (
                "No control character or unpaired surrogate; surrounding spaces are ignored."
            )
        if f.kind in ("int", "float") and f.min_value is not None:
            prop["minimum"] = f.min_value
        if f.kind in ("int", "float") and f.max_value is not None:
            prop["maximum"] = f.max_value
        if f.kind == "int":
            prop["maximum"] = int_limit
        if f.kind == "timestamp":
            prop["description"] = "ISO-8601 with a UTC offset (…Z or …+01:00)"
        properties[f.name] = prop if f.required else {"anyOf": [prop, {"type": "null"}]}
    conditions: list[dict[str, object]] = []
    # Rules on the record's type are said as one choice among the types (each type with
    # the fields it needs), not one if/then each: a generator meets a few branches, not
    # two to the power of the rules.
    by_type: dict[str, set[str]] = {}
    for rule in schema.rules:
        if not isinstance(rule, Required):
            continue
        if rule.when == c.TYPE and rule.unless is None:
            for value in rule.values:
                by_type.setdefault(value, set()).add(rule.field)
            continue
        then = _present(rule.field)
        if rule.unless is not None:
            then = {"anyOf": [then, _present(rule.unless)]}
        if rule.when is None:
            conditions.append(then)
        else:
            when = {"properties": {rule.when: {"enum": sorted(rule.values)}}}
            conditions.append({"if": {**when, "required": [rule.when]}, "then": then})
    types = next((f.choices for f in schema.fields if f.name == c.TYPE), None)
    if by_type and types is not None:
        needs: dict[tuple[str, ...], list[str]] = {}
        for value in sorted(types):
            needs.setdefault(tuple(sorted(by_type.get(value, ()))), []).append(value)
        conditions.append(
            {
                "anyOf": [
                    {
                        "properties": {
                            c.TYPE: {"enum": values},
                            **{name: {"not": {"type": "null"}} for name in fields},
                        },
                        "required": [c.TYPE, *fields],
                    }
                    for fields, values in needs.items()
                ]
            }
        )
    return {
        "type": "object",
        "properties": properties,
        "required": [f.name for f in schema.fields if f.required],
        "additionalProperties": False,
        "allOf": conditions,
    }


def _present(name: str) -> dict[str, object]:
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
