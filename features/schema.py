"""The one definition of every record Omni accepts: events and reference data.

Each table is a `TableSchema`: typed fields plus cross-field rules. `features.validation`
checks a whole DataFrame against it at once, for file ingest and for the HTTP API alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

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
    max_length: int = 256
    #: The value of a missing boolean or number.
    default: bool | float | None = None
    #: For timestamps: accept a bare date (taken as midnight UTC) as well as a full time.
    allow_date: bool = False


@dataclass(frozen=True)
class Rule:
    """A cross-field rule. `violated(frame)` marks the rows that break it."""

    field: str
    message: Callable[[pd.DataFrame], pd.Series]
    violated: Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class TableSchema:
    """A table: its fields, its key (unique per record) and its cross-field rules."""

    name: str
    fields: tuple[Field, ...]
    key: tuple[str, ...]
    rules: tuple[Rule, ...] = ()

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


def _missing_item(frame: pd.DataFrame) -> pd.Series:
    return frame[c.TYPE].isin(_item_types) & frame[c.ITEM_ID].isna()


def _missing_offer(frame: pd.DataFrame) -> pd.Series:
    return frame[c.TYPE].isin(_offer_types) & frame[c.OFFER_ID].isna()


def _type_message(what: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda frame: "is required for a '" + frame[c.TYPE].astype(str) + f"' event ({what})"


EVENTS = TableSchema(
    name="events",
    key=(c.EVENT_ID,),
    fields=(
        Field(c.EVENT_ID, "str", required=True, max_length=128),
        Field(c.TS, "timestamp", required=True),
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
    ),
    rules=(
        Rule(
            c.CUSTOMER_ID,
            _const("customer_id or anonymous_id is required"),
            lambda f: f[c.CUSTOMER_ID].isna() & f[c.ANONYMOUS_ID].isna(),
        ),
        Rule(
            c.CUSTOMER_ID,
            _const("is required for an 'identify' event (it links anonymous_id to it)"),
            lambda f: (f[c.TYPE] == c.EventType.IDENTIFY) & f[c.CUSTOMER_ID].isna(),
        ),
        Rule(
            c.ANONYMOUS_ID,
            _const("is required for an 'identify' event (it is linked to customer_id)"),
            lambda f: (f[c.TYPE] == c.EventType.IDENTIFY) & f[c.ANONYMOUS_ID].isna(),
        ),
        Rule(c.ITEM_ID, _type_message("an item event names its item"), _missing_item),
        Rule(c.OFFER_ID, _type_message("an offer event names its offer"), _missing_offer),
        Rule(
            c.STORE_ID,
            _const("is required when channel is 'store'"),
            lambda f: (f[c.CHANNEL] == c.Channel.STORE) & f[c.STORE_ID].isna(),
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

STORES = TableSchema(
    name="stores",
    key=(c.STORE_ID,),
    fields=(
        Field(c.STORE_ID, "str", required=True),
        Field(c.NAME, "str"),
        Field(c.CITY, "str"),
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
