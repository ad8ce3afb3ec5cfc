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
    String,
    Table,
    Text,
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
    Index("ix_events_ts", c.TS),
    Index("ix_events_customer_ts", c.CUSTOMER_ID, c.TS),
    # (id, ts): "anything since?" probes read the index alone (service.people).
    Index("ix_events_anonymous_ts", c.ANONYMOUS_ID, c.TS),
    Index("ix_events_store_ts", c.STORE_ID, c.TS),
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

#: Tables by the schema name that feeds them.
BY_SCHEMA: dict[str, Table] = {
    "events": events,
    "catalogue": catalogue,
    "stores": stores,
    "inventory": inventory,
    "customers": customers,
    "offers": offers,
}
