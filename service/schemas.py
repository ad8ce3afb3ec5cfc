"""Request and response bodies of the HTTP API, with the examples OpenAPI shows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, computed_field

from features.schema import EVENTS, json_schema
from features.validation import INT_LIMIT

MAX_EVENTS = 1000
MAX_CHURN_IDS = 1000

EVENT_EXAMPLE: dict[str, Any] = {
    "event_id": "web-8f14e45f",
    "ts": "2026-11-23T09:15:00Z",
    "customer_id": "C000042",
    "channel": "web",
    "type": "add_to_cart",
    "item_id": "I00017",
    "quantity": 1,
}


#: One event as the OpenAPI document shows it: generated from `features.schema.EVENTS`,
#: the rules the service checks (it checks them itself, to name each record and field).
EVENT_SCHEMA = json_schema(EVENTS, int_limit=INT_LIMIT)
Event = Annotated[dict[str, Any], WithJsonSchema({**EVENT_SCHEMA, "title": "Event"})]


class EventBatch(BaseModel):
    """Up to 1,000 events in the Omni schema (see the README's event schema)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"events": [EVENT_EXAMPLE]}]})
    events: list[Event] = Field(max_length=MAX_EVENTS)


class Rejection(BaseModel):
    index: int = Field(description="Position of the event in the batch (from 0).")
    event_id: str | None = None
    field: str
    error: str


class EventsAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"accepted": 1, "duplicates": 0, "erased": 0, "rejected": []}]
        }
    )
    accepted: int = Field(description="Events newly stored.")
    duplicates: int = Field(description="Events already stored (same event_id), not counted twice.")
    erased: int = Field(
        default=0,
        description="Events of an erased customer or anonymous id that happened before the "
        "erasure: dropped, so that a retry cannot bring an erased history back.",
    )
    rejected: list[Rejection] = Field(
        description="Every problem; when any, nothing of the batch was stored."
    )


class Recommendation(BaseModel):
    item_id: str
    name: str
    category: str
    score: float
    reason: str
    in_stock: int | None = Field(None, description="Units in the store, with store_id.")


def served_id_field(what: str, events: str) -> Any:
    """The `served_id` of an answer that can lead to an outcome (service.experiments)."""
    return Field(
        default=None,
        description=f"Send it back on the events this {what} leads to ({events}) so that "
        "they are attributed to it.",
    )


def experiments_field() -> Any:
    """The running experiments' arms an answer was served by."""
    return Field(
        default_factory=dict, description="The running experiments' arms this person is in."
    )


class Recommendations(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "C000042",
                    "items": [
                        {
                            "item_id": "I00017",
                            "name": "Oat milk 1 l",
                            "category": "dairy",
                            "score": 2.31,
                            "reason": "bought together with Granola 500 g",
                            "in_stock": 14,
                        }
                    ],
                    "cold_start": False,
                    "basis": "history",
                    "model_version": "3",
                    "store_id": "S01",
                    "served_id": "r3f0c9a1d2e7b44c19a0d5e6",
                    "experiments": {"recs-challenger": "challenger"},
                }
            ]
        }
    )
    customer_id: str | None = None
    anonymous_id: str | None = None
    items: list[Recommendation]
    cold_start: bool = Field(description="True when not from the person's own history.")
    basis: str
    model_version: str | None
    store_id: str | None = None
    served_id: str | None = served_id_field("list", "a view, a cart, a purchase")
    experiments: dict[str, str] = experiments_field()


class SimilarItem(BaseModel):
    item_id: str
    name: str
    category: str
    score: float
    in_stock: int | None = None


class StoreStock(BaseModel):
    store_id: str
    name: str
    city: str | None
    quantity: int
    distance_km: float | None = Field(
        description="From near_store (None without coordinates for both)."
    )


class ItemAvailability(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "item_id": "I000017",
                    "name": "Alder Tea 0017",
                    "near_store_id": "S001",
                    "here": 0,
                    "online": 12,
                    "stores": [
                        {"store_id": "S001", "name": "Omni Lyon", "city": "Lyon",
                         "quantity": 0, "distance_km": 0.0},
                        {"store_id": "S005", "name": "Omni Turin", "city": "Turin",
                         "quantity": 3, "distance_km": 219.6},
                    ],
                    "elsewhere": "3 at Omni Turin (220 km), 12 online: order for pickup here",
                }
            ]
        }
    )  # fmt: skip
    item_id: str
    name: str
    near_store_id: str | None
    here: int | None = Field(description="On near_store's shelf (None without a store).")
    online: int = Field(description="In stock for online orders.")
    stores: list[StoreStock] = Field(description="Every store, nearest first.")
    elsewhere: str = Field(description="Where else it is, in words (empty: nowhere).")


class SimilarItems(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "item_id": "I00017",
                    "items": [
                        {
                            "item_id": "I00018",
                            "name": "Soy milk 1 l",
                            "category": "dairy",
                            "score": 0.42,
                            "in_stock": 3,
                        }
                    ],
                    "reason": "chosen by the same customers",
                    "model_version": "3",
                }
            ]
        }
    )
    item_id: str
    items: list[SimilarItem]
    reason: str
    model_version: str | None


class ChurnScore(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "C000042",
                    "probability": 0.71,
                    "band": "high",
                    "drivers": ["no purchase for 74 days, usually every 12"],
                    "drivers_effect": "raises",
                    "model_version": "2",
                    "as_of": "2026-11-23T09:15:00Z",
                    "horizon_days": 90,
                }
            ]
        }
    )
    customer_id: str
    probability: float | None = Field(
        description="Of no purchase in any channel within horizon_days after as_of; None "
        "when already lapsed or new."
    )
    band: str = Field(
        description="low, medium, high, lapsed (no purchase in the model's lookback, 365 days "
        "unless trained otherwise) or new (never bought)."
    )
    drivers: list[str] = Field(
        description="Up to three reasons, strongest first, in words; which way they work is "
        "drivers_effect."
    )
    model_version: str | None
    as_of: datetime
    horizon_days: float | None = Field(
        None, description="The served model's horizon, saved with it at training."
    )

    @computed_field(  # type: ignore[prop-decorator]
        description="lowers: the drivers are what keeps the customer close (a low band); "
        "raises: what pushes them towards leaving (every other band)."
    )
    @property
    def drivers_effect(self) -> Literal["raises", "lowers"]:
        return "lowers" if self.band == "low" else "raises"


class ChurnRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"customer_ids": ["C000042", "C000043"]}]}
    )
    customer_ids: list[str] = Field(min_length=1, max_length=MAX_CHURN_IDS)


class ChurnScores(BaseModel):
    scores: list[ChurnScore]
    unknown: list[str] = Field(description="Ids no customer has.")


class Activity(BaseModel):
    ts: datetime
    channel: str
    type: str
    item_id: str | None
    name: str | None
    store_id: str | None
    offer_id: str | None = None


class CartLine(BaseModel):
    item_id: str
    name: str
    quantity: int
    added_at: datetime
    channel: str


class WishItem(BaseModel):
    item_id: str
    name: str
    wished_at: datetime = Field(description="When it was last put on the list.")
    channel: str | None = Field(description="Where it was put on the list.")
    in_stock: int | None = Field(
        description="On the shelf of the store asked about (None: no store asked)."
    )


class Share(BaseModel):
    name: str
    share: float = Field(ge=0, le=1)


class Preferences(BaseModel):
    categories: list[Share] = Field(description="Share of their interest, top 3 of 15%+.")
    brands: list[Share]
    channels: list[Share] = Field(description="Share of purchase days in the last year.")
    stores: list[Share] = Field(description="By store id: share of their store activity.")
    in_words: list[str] = Field(
        description='e.g. "mostly Kitchen (46%)", "buys in store 70% of the time".'
    )


class ServiceCase(BaseModel):
    case_id: str
    type: str = Field(description="complaint or service_contact.")
    reason: str
    channel: str = Field(description="Where it was opened.")
    opened_at: datetime
    updated_at: datetime
    status: str = Field(description="open or resolved.")
    in_words: str = Field(description='e.g. "complaint: late delivery, open for 6 days, by phone".')


class LoyaltyStatus(BaseModel):
    points: int = Field(
        description="Points per currency unit spent on purchases in any channel over the "
        "settings' window, plus the points the customer record carries."
    )
    tier: str
    next_tier: str | None
    to_next: int | None = Field(description="Points still needed for next_tier.")
    in_words: str = Field(description='e.g. "Silver, 1,240 points (1,760 to Gold)".')


class Profile(BaseModel):
    customer_id: str
    person_id: str
    name: str | None
    customer_ids: list[str]
    anonymous_ids: list[str]
    home_store_id: str | None
    consent: dict[str, bool]
    channels: list[str]
    recent: list[Activity]
    cart: list[CartLine] = Field(
        description="The open cart: lines added to in the last `cart_open_days`, latest "
        "first, the latest 20 of them."
    )
    wishlist: list[WishItem] = Field(
        description="What they wish for now, from every channel, latest first (an item "
        "leaves it when removed or bought anywhere)."
    )
    preferences: Preferences
    loyalty: LoyaltyStatus
    service: list[ServiceCase] = Field(
        description="Complaints and service contacts, open ones first (longest open "
        "first), then the latest closed ones."
    )
    churn: ChurnScore | None


class Erased(BaseModel):
    customer_id: str
    events_deleted: int
    ids: list[str]


class ExportedPerson(BaseModel):
    person_id: str
    customer_ids: list[str]
    anonymous_ids: list[str]


Rows = list[dict[str, Any]]


class PersonExport(BaseModel):
    """Everything Omni holds about one person (the right of access), rows as stored,
    times as ISO 8601 UTC."""

    exported_at: str
    person: ExportedPerson
    customer_records: Rows = Field(description="The customer records, consents included.")
    identities: Rows = Field(description="Every id of the person and how it was linked.")
    events: Rows = Field(description="Every event, in time order.")
    derived_state: dict[str, Rows] = Field(
        description="The online state computed from the events, by table."
    )
    churn_scores: Rows = Field(description="Stored churn scores, per model version.")
    decisions: Rows = Field(description="Next-best-offer decisions.")
    contacts: Rows = Field(description="Marketing messages handed out.")
    triggers: Rows = Field(description="Abandoned-cart triggers handed out.")
    exposures: Rows = Field(
        description="Answers shown to the person or held back from them (a control group), "
        "with the experiments' arms they were in."
    )


class ModelStatus(BaseModel):
    model: str
    version: str | None
    status: str
    detail: str = ""


class Ready(BaseModel):
    ready: bool
    models: dict[str, str | None]
    #: Per model served by an earlier version than its alias names: why.
    fallbacks: dict[str, str] = {}


class Problem(BaseModel):
    """An error answer that is not about a field: what went wrong, in words."""

    detail: str


class InvalidField(BaseModel):
    loc: list[str | int] = Field(description='Where: e.g. ["query", "channel"].')
    msg: str
    type: str


class Invalid(BaseModel):
    """A request that does not fit the route's parameters or body (the input is not echoed)."""

    detail: list[InvalidField]


#: What every `/v1` route may answer about the caller's key and the request's size.
KEY_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No API key, or a key Omni does not know."},
    403: {"model": Problem, "description": "The key lacks the scope, or the store asked."},
    413: {"model": Problem, "description": "The request body is over the size limit."},
    429: {
        "model": Problem,
        "description": "Too many unknown keys from this client in the last minute; "
        "retry after `Retry-After` seconds.",
    },
    503: {
        "model": Problem,
        "description": "No model is loaded yet, or every database connection is busy; "
        "retry after `Retry-After` seconds.",
    },
}
#: What a route that reads a JSON body may also answer.
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body is not readable (not UTF-8 JSON)."},
}
#: A store in the query that does not exist.
NO_STORE: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No store has this id (or no customer, item)."},
}
