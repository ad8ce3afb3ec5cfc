"""Every column name and vocabulary of the Omni schema, in one place."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """Where an event happened."""

    WEB = "web"
    APP = "app"
    STORE = "store"
    EMAIL = "email"
    CALL_CENTER = "call_center"
    SOCIAL = "social"


class EventType(StrEnum):
    """What happened."""

    VIEW = "view"
    SEARCH = "search"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    PURCHASE = "purchase"
    RETURN = "return"
    WISHLIST = "wishlist"
    #: The customer took an item off their wish-list (buying it anywhere does too).
    WISHLIST_REMOVE = "wishlist_remove"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    OFFER_SHOWN = "offer_shown"
    OFFER_ACCEPTED = "offer_accepted"
    #: The customer said no to an offer (a new one is decided at the next ask).
    OFFER_DECLINED = "offer_declined"
    IDENTIFY = "identify"
    #: A complaint (a `reason` and a `status`; later events of the same `case_id` update
    #: it, e.g. to resolved).
    COMPLAINT = "complaint"
    #: Any other contact with customer service (a question, a delivery query), the same way.
    SERVICE_CONTACT = "service_contact"
    #: Anything else a source sends by its own name (`event_name`), kept but not weighed
    #: by any model (e.g. a Segment "Checkout Started").
    CUSTOM = "custom"


class CaseStatus(StrEnum):
    """Where a service case stands."""

    OPEN = "open"
    RESOLVED = "resolved"


#: Event types of a service case: each carries a reason and a status.
SERVICE_EVENT_TYPES = frozenset({EventType.COMPLAINT, EventType.SERVICE_CONTACT})

#: Event types that are about one item and so must name it.
ITEM_EVENT_TYPES = frozenset(
    {
        EventType.VIEW,
        EventType.ADD_TO_CART,
        EventType.REMOVE_FROM_CART,
        EventType.PURCHASE,
        EventType.RETURN,
        EventType.WISHLIST,
        EventType.WISHLIST_REMOVE,
    }
)
#: Event types that are about one offer and so must name it.
OFFER_EVENT_TYPES = frozenset(
    {EventType.OFFER_SHOWN, EventType.OFFER_ACCEPTED, EventType.OFFER_DECLINED}
)

#: The inventory location that is not a store.
ONLINE = "online"

# Event fields.
EVENT_ID = "event_id"
TS = "ts"
CUSTOMER_ID = "customer_id"
ANONYMOUS_ID = "anonymous_id"
CHANNEL = "channel"
TYPE = "type"
ITEM_ID = "item_id"
QUANTITY = "quantity"
PRICE = "price"
STORE_ID = "store_id"
ORDER_ID = "order_id"
OFFER_ID = "offer_id"

EVENT_NAME = "event_name"
#: A service case's reason in words, its status, and the id that ties its events together.
REASON = "reason"
STATUS = "status"
CASE_ID = "case_id"
#: The answer (a recommendation list, an offer, a trigger) an event follows from, as
#: Omni gave it out: what outcomes are attributed by (service.experiments.attribution).
SERVED_ID = "served_id"
EVENT_COLUMNS = (
    EVENT_ID,
    TS,
    CUSTOMER_ID,
    ANONYMOUS_ID,
    CHANNEL,
    TYPE,
    ITEM_ID,
    QUANTITY,
    PRICE,
    STORE_ID,
    ORDER_ID,
    OFFER_ID,
    EVENT_NAME,
    REASON,
    STATUS,
    CASE_ID,
    SERVED_ID,
)

# Reference data fields.
NAME = "name"
CATEGORY = "category"
BRAND = "brand"
ACTIVE = "active"
CITY = "city"
LATITUDE = "latitude"
LONGITUDE = "longitude"
REGION = "region"
EMAIL = "email"
HOME_STORE_ID = "home_store_id"
CONSENT_EMAIL = "consent_email"
CONSENT_SMS = "consent_sms"
CONSENT_PUSH = "consent_push"
CREATED_AT = "created_at"
#: Points a customer holds from outside the event log (a welcome bonus, a migration).
LOYALTY_POINTS = "loyalty_points"
#: Comma-separated loyalty tiers an offer is for; empty means every customer.
TIERS = "tiers"
TIMEZONE = "timezone"
KIND = "kind"
CHANNELS = "channels"
VALID_FROM = "valid_from"
VALID_UNTIL = "valid_until"
VALUE = "value"
DESCRIPTION = "description"

# Identity map fields.
ID_TYPE = "id_type"
ID_VALUE = "id_value"
PERSON_ID = "person_id"

# Offer kinds.
OFFER_KINDS = ("product", "promotion", "service", "retention")
