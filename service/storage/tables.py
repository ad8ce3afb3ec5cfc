"""The database tables. Times are stored as integer microseconds since the Unix epoch, UTC."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

from features import columns as c

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column(c.EVENT_ID, String(128), primary_key=True),
    Column(c.TS, BigInteger, nullable=False),
    Column(c.CUSTOMER_ID, String(256)),
    Column(c.ANONYMOUS_ID, String(256)),
    Column(c.CHANNEL, String(16), nullable=False),
    Column(c.TYPE, String(24), nullable=False),
    Column(c.ITEM_ID, String(256)),
    Column(c.QUANTITY, Integer),
    Column(c.PRICE, Float),
    Column(c.STORE_ID, String(256)),
    Column(c.ORDER_ID, String(256)),
    Column(c.OFFER_ID, String(256)),
    Column("ingested_at", BigInteger, nullable=False),
    Column(c.EVENT_NAME, String(128)),
    Column(c.REASON, String(256)),
    Column(c.STATUS, String(16)),
    Column(c.CASE_ID, String(128)),
    Column(c.SERVED_ID, String(64)),
    Index("ix_events_ts", c.TS),
    Index("ix_events_customer_ts", c.CUSTOMER_ID, c.TS),
    # (id, ts): "anything since?" probes read the index alone (service.people).
    Index("ix_events_anonymous_ts", c.ANONYMOUS_ID, c.TS),
    Index("ix_events_store_ts", c.STORE_ID, c.TS),
)

# -- online state: per id, written in the transaction that stores the events -------------

#: Per customer or anonymous id: the span of its events by their own time, and when the
#: latest of them arrived. "Anything new for this person?" is a primary-key read here,
#: whatever the length of their history (service.storage.activity).
activity = Table(
    "activity",
    metadata,
    Column(c.ID_TYPE, String(16), primary_key=True),
    Column(c.ID_VALUE, String(256), primary_key=True),
    Column("events", BigInteger, nullable=False),
    Column("first_ts", BigInteger, nullable=False),
    Column("last_ts", BigInteger, nullable=False),
    Column("last_arrival", BigInteger, nullable=False),
)

catalogue = Table(
    "catalogue",
    metadata,
    Column(c.ITEM_ID, String(256), primary_key=True),
    Column(c.NAME, String(256)),
    Column(c.CATEGORY, String(256), nullable=False),
    Column(c.BRAND, String(256)),
    Column(c.PRICE, Float),
    Column(c.ACTIVE, Boolean, nullable=False),
)

stores = Table(
    "stores",
    metadata,
    Column(c.STORE_ID, String(256), primary_key=True),
    Column(c.NAME, String(256)),
    Column(c.CITY, String(256)),
    Column(c.TIMEZONE, String(64)),
    Column(c.LATITUDE, Float),
    Column(c.LONGITUDE, Float),
    Column(c.REGION, String(128)),
)

inventory = Table(
    "inventory",
    metadata,
    Column(c.STORE_ID, String(256), primary_key=True),
    Column(c.ITEM_ID, String(256), primary_key=True),
    Column(c.QUANTITY, Integer, nullable=False),
)

customers = Table(
    "customers",
    metadata,
    Column(c.CUSTOMER_ID, String(256), primary_key=True),
    Column(c.NAME, String(256)),
    Column(c.EMAIL, String(320), index=True),
    Column(c.HOME_STORE_ID, String(256)),
    Column(c.CONSENT_EMAIL, Boolean, nullable=False),
    Column(c.CONSENT_SMS, Boolean, nullable=False),
    Column(c.CONSENT_PUSH, Boolean, nullable=False),
    Column(c.CREATED_AT, BigInteger),
    Column(c.TIMEZONE, String(64)),
    Column(c.LOYALTY_POINTS, BigInteger),
)

offers = Table(
    "offers",
    metadata,
    Column(c.OFFER_ID, String(256), primary_key=True),
    Column(c.NAME, String(256), nullable=False),
    Column(c.KIND, String(32), nullable=False),
    Column(c.ITEM_ID, String(256)),
    Column(c.CATEGORY, String(256)),
    Column(c.CHANNELS, String(256)),
    Column(c.VALID_FROM, BigInteger, nullable=False),
    Column(c.VALID_UNTIL, BigInteger, nullable=False),
    Column(c.VALUE, Float, nullable=False),
    Column(c.DESCRIPTION, Text),
    Column(c.TIERS, String(256)),
)

#: The stitched identity graph: every known id and the person it belongs to.
identities = Table(
    "identities",
    metadata,
    Column(c.ID_TYPE, String(16), primary_key=True),
    Column(c.ID_VALUE, String(256), primary_key=True),
    Column(c.PERSON_ID, String(256), nullable=False, index=True),
    # True where the anonymous id was also seen with another person (see features.identity).
    Column("conflict", Boolean, nullable=False),
)

#: Ids erased on request (`DELETE /v1/customers/{id}`): models trained before the erasure
#: still hold a row for them, and the service treats them as strangers until retrained.
erasures = Table(
    "erasures",
    metadata,
    Column(c.ID_TYPE, String(16), primary_key=True),
    Column(c.ID_VALUE, String(256), primary_key=True),
    Column("erased_at", BigInteger, nullable=False),
)

#: The channels each id was seen in.
id_channels = Table(
    "id_channels",
    metadata,
    Column(c.ID_TYPE, String(16), primary_key=True),
    Column(c.ID_VALUE, String(256), primary_key=True),
    Column(c.CHANNEL, String(16), primary_key=True),
)

#: Per id and item: when the id last bought it (what ends a cart line, and what the
#: repeat filter reads).
bought = Table(
    "bought",
    metadata,
    Column(c.ID_TYPE, String(16), primary_key=True),
    Column(c.ID_VALUE, String(256), primary_key=True),
    Column(c.ITEM_ID, String(256), primary_key=True),
    Column("last_ts", BigInteger, nullable=False),
)

#: Per id and item: the latest time the id put the item on its wish-list (and in which
#: channel) and the latest time it took it off (0: never). On a person's list while the
#: latest wish is after the latest removal and the last purchase (`bought`) of any id.
wishes = Table(
    "wishes",
    metadata,
    Column(c.ID_TYPE, String(16), primary_key=True),
    Column(c.ID_VALUE, String(256), primary_key=True),
    Column(c.ITEM_ID, String(256), primary_key=True),
    Column("wished_at", BigInteger, nullable=False),
    Column("removed_at", BigInteger, nullable=False),
    Column(c.CHANNEL, String(16)),
)

#: Per id and service case (complaints and service contacts, `case_id`, else the event's
#: own id): what it is about and where and when it was opened (its earliest event), and
#: its status now (its latest event's).
cases = Table(
    "cases",
    metadata,
    Column(c.ID_TYPE, String(16), primary_key=True),
    Column(c.ID_VALUE, String(256), primary_key=True),
    Column(c.CASE_ID, String(128), primary_key=True),
    Column(c.TYPE, String(24), nullable=False),
    Column(c.REASON, String(256), nullable=False),
    Column(c.CHANNEL, String(16), nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column(c.STATUS, String(16), nullable=False),
)

#: Per id and item: how much the id's events say it wants the item (the interaction
#: weight of `features.interactions`, each event's weight scaled to a fixed epoch so that
#: events add up in any order; read back at any time by one factor), the latest such
#: event, the net units bought and the last purchase. An event counts under one id only
#: (its customer id, else its anonymous id, as training resolves it), so a person's rows
#: add up without counting anything twice (`bought` keeps each purchase under every id
#: of the event: what closes a cart line on a shared device).
interests = Table(
    "interests",
    metadata,
    Column(c.ID_TYPE, String(16), primary_key=True),
    Column(c.ID_VALUE, String(256), primary_key=True),
    Column(c.ITEM_ID, String(256), primary_key=True),
    Column("weight", Float, nullable=False),
    Column("last_ts", BigInteger, nullable=False),
    Column("units", Float, nullable=False),
    Column("last_purchase", BigInteger),
)

#: Per id, category and brand of the catalogue: the sum of the id's positive `interests`
#: weights over the items of that category and brand, and how many such items
#: (service.storage.kind_weights); an item without a brand counts under brand ''.
kind_weights = Table(
    "kind_weights",
    metadata,
    Column(c.ID_TYPE, String(16), primary_key=True),
    Column(c.ID_VALUE, String(256), primary_key=True),
    Column(c.CATEGORY, String(256), primary_key=True),
    Column(c.BRAND, String(256), primary_key=True),
    Column("weight", Float, nullable=False),
    Column("item_count", BigInteger, nullable=False),
)

#: Per id and store: the weight of the id's item events there (scaled as `interests`),
#: for a person's main store and in-store share.
store_weights = Table(
    "store_weights",
    metadata,
    Column(c.ID_TYPE, String(16), primary_key=True),
    Column(c.ID_VALUE, String(256), primary_key=True),
    Column(c.STORE_ID, String(256), primary_key=True),
    Column("weight", Float, nullable=False),
)

#: Per id, UTC day, channel and event type: how many events, the first and last, and the
#: spend of the purchases (price x quantity): what churn features are computed from for
#: a person with new events (service/storage/churn_days.py). Counted under the event's
#: customer id, else its anonymous id, as `interests`. Keyed by type before day: the
#: reads of one type (a year of purchase days for loyalty and channel shares, the spans
#: of offer events) go through that type's rows alone.
CHURN_DAYS_KEY = (c.ID_TYPE, c.ID_VALUE, c.TYPE, "day", c.CHANNEL)
churn_days = Table(
    "churn_days",
    metadata,
    Column(c.ID_TYPE, String(16), nullable=False),
    Column(c.ID_VALUE, String(256), nullable=False),
    Column("day", BigInteger, nullable=False),
    Column(c.CHANNEL, String(16), nullable=False),
    Column(c.TYPE, String(24), nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("first_ts", BigInteger, nullable=False),
    Column("last_ts", BigInteger, nullable=False),
    Column("spend", Float, nullable=False),
    PrimaryKeyConstraint(*CHURN_DAYS_KEY),
)

#: Cart additions and removals after the id's last purchase of the item: the open cart
#: of a person is read from these few rows (service.storage.carts). An event with both a
#: customer and an anonymous id is kept under each; readers count it once.
cart_moves = Table(
    "cart_moves",
    metadata,
    Column(c.ID_TYPE, String(16), primary_key=True),
    Column(c.ID_VALUE, String(256), primary_key=True),
    Column(c.ITEM_ID, String(256), primary_key=True),
    Column(c.EVENT_ID, String(128), primary_key=True),
    Column(c.TS, BigInteger, nullable=False),
    #: Units added (positive) or removed (negative).
    Column("units", Float, nullable=False),
    Column(c.CHANNEL, String(16), nullable=False),
    # (id, time): the lines added to within the open-cart window, a range of this index.
    Index("ix_cart_moves_id_ts", c.ID_TYPE, c.ID_VALUE, c.TS),
)

# -- batch answers: scored once per model version, read per request -------------------

#: Each set of answers the batch layer wrote: which model version, scored as of when, and
#: when it was made (events stored after `made_at` are not in it).
answer_sets = Table(
    "answer_sets",
    metadata,
    Column(c.KIND, String(32), primary_key=True),
    Column("model_version", String(64), primary_key=True),
    Column("as_of", BigInteger, nullable=False),
    Column("made_at", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
)

#: Per person, the churn answer of a model version as of the set's time.
churn_answers = Table(
    "churn_answers",
    metadata,
    Column(c.PERSON_ID, String(256), primary_key=True),
    Column("model_version", String(64), primary_key=True),
    Column("probability", Float),
    Column("band", String(16), nullable=False),
    #: The drivers in words, as a JSON list.
    Column("drivers", Text, nullable=False),
)

# -- decisioning: one ledger for every channel -------------------------------------------
_OPEN = text("status = 'open'")

#: Next-best-offer decisions. At most one is open per person: every channel that asks
#: gets it until it is accepted, declined, expired or no longer eligible (service.decisioning).
decisions = Table(
    "decisions",
    metadata,
    Column("decision_id", String(64), primary_key=True),
    Column(c.PERSON_ID, String(256), nullable=False),
    Column(c.CUSTOMER_ID, String(256)),
    Column(c.OFFER_ID, String(256), nullable=False),
    #: The channel (and store) that asked first.
    Column(c.CHANNEL, String(16), nullable=False),
    Column(c.STORE_ID, String(256)),
    Column("decided_at", BigInteger, nullable=False),
    Column(c.VALID_UNTIL, BigInteger, nullable=False),
    Column("probability", Float, nullable=False),
    Column("expected_value", Float, nullable=False),
    Column("reason", Text, nullable=False),
    #: P(take) before learned take rates corrected it (what they are learned against).
    Column("prior", Float),
    #: Where `probability` came from: "prior", or the learned rate used.
    Column("source", String(160)),
    #: open, accepted, declined, expired, ineligible
    Column("status", String(16), nullable=False),
    Column("closed_at", BigInteger),
    Column("closed_by", String(256)),
    Index("ix_decisions_person", c.PERSON_ID, "decided_at"),
    Index(
        "ux_decisions_open_person",
        c.PERSON_ID,
        unique=True,
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    ),
)

#: Asks that found no offer open to the person where they were asked (the channel, and
#: the store): the same ask is answered "nothing" from this row, without deciding again,
#: until anything of theirs arrives or `settings.no_offer_seconds` pass (a new offer or a
#: restock shows within that time). Times are arrival (wall) clock, as `events.ingested_at`.
no_offers = Table(
    "no_offers",
    metadata,
    Column(c.PERSON_ID, String(256), primary_key=True),
    Column("asked", String(300), primary_key=True),
    Column("made_at", BigInteger, nullable=False),
)

#: Every outbound marketing message Omni handed out, whatever the channel: what the
#: contact policy counts.
contacts = Table(
    "contacts",
    metadata,
    Column("contact_id", String(64), primary_key=True),
    Column(c.PERSON_ID, String(256), nullable=False),
    Column(c.CUSTOMER_ID, String(256)),
    Column(c.CHANNEL, String(16), nullable=False),
    #: "trigger" or "offer"
    Column(c.KIND, String(16), nullable=False),
    #: The trigger or decision id it carried.
    Column("ref", String(128), nullable=False),
    Column("sent_at", BigInteger, nullable=False),
    Index("ix_contacts_person_sent", c.PERSON_ID, "sent_at"),
    Index("ix_contacts_sent", "sent_at"),
)

#: Every answer that can lead to an outcome, given out or held back: a recommendation
#: list (one row per person, channel and day), an offer decision, a trigger. Held back
#: (`held_by`: the global holdout or an experiment's arm) means the person would have
#: been contacted at `served_at` and was not: the fair comparison for the report.
exposures = Table(
    "exposures",
    metadata,
    Column("served_id", String(64), primary_key=True),
    Column(c.PERSON_ID, String(256), nullable=False),
    Column(c.CUSTOMER_ID, String(256)),
    #: recommendations, offer, trigger
    Column(c.KIND, String(16), nullable=False),
    Column(c.CHANNEL, String(16), nullable=False),
    Column(c.STORE_ID, String(256)),
    #: The decision or trigger id, or the recommender version.
    Column("ref", String(128)),
    Column(c.OFFER_ID, String(256)),
    #: The experiments the person was in, as JSON: {"experiment": "arm"}.
    Column("arms", Text, nullable=False),
    Column("held_by", String(160)),
    Column("served_at", BigInteger, nullable=False),
    Index("ix_exposures_person_served", c.PERSON_ID, "served_at"),
    Index("ix_exposures_served", "served_at"),
)

#: Abandoned-cart triggers handed out: one per cart and channel.
triggers = Table(
    "triggers",
    metadata,
    Column("trigger_id", String(64), primary_key=True),
    Column("cart_id", String(64), nullable=False),
    Column(c.PERSON_ID, String(256), nullable=False),
    Column(c.CUSTOMER_ID, String(256)),
    Column(c.CHANNEL, String(16), nullable=False),
    Column("due_at", BigInteger, nullable=False),
    Column("handed_at", BigInteger, nullable=False),
    #: handed (out, not yet acknowledged), sent, failed (handed out again next pull)
    Column("status", String(16), nullable=False),
    Column("acked_at", BigInteger),
    #: The trigger as it was handed out (JSON).
    Column("payload", Text, nullable=False),
    Index("ix_triggers_person", c.PERSON_ID),
)

#: One row per ledger; a writer bumps its row first, which makes concurrent writers to
#: the same ledger take turns on SQLite and PostgreSQL alike (caps are checked and
#: recorded in one turn).
ledger_turns = Table(
    "ledger_turns",
    metadata,
    Column("ledger", String(32), primary_key=True),
    Column("turn", BigInteger, nullable=False),
)

#: Signed-in tablets: a session per sign-in, by the hash of its id (the cookie carries the
#: signed id, never the key), ended by sign-out (`revoked_at`) or expiry.
tablet_sessions = Table(
    "tablet_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("key_name", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
)

#: Tables by the schema name that feeds them.
BY_SCHEMA: dict[str, Table] = {
    "events": events,
    "catalogue": catalogue,
    "stores": stores,
    "inventory": inventory,
    "customers": customers,
    "offers": offers,
}
