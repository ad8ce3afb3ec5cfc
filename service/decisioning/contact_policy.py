"""One contact policy for every outbound channel: consent, caps, quiet hours, the ledger.

Every marketing message Omni hands out (an abandoned-cart trigger, an offer in an e-mail
batch) is a row in the `contacts` table. Caps count those rows over all channels
together: a customer e-mailed this morning is not pushed this afternoon when the cap is
one a day. The check and the recording happen in one transaction that holds the
contacts ledger's turn (`take_turn`), so two pulls at once cannot both spend the last
contact.

Quiet hours and "per day" caps are kept in each person's own time zone: a customer
record's (`timezone`), else their home store's, else `settings.timezone`. Two customers
eight hours apart are messaged at their own mornings, and a day's cap restarts at their
own midnight; the week is the last seven days.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Connection, func, insert, select, update

from features import columns as c
from service.settings import ContactCaps, Settings
from service.storage.codec import micros
from service.storage.engine import insert_into
from service.storage.tables import contacts, customers, identities, ledger_turns, stores

#: Channels Omni sends marketing through, and the consent each needs.
CONSENT = {"email": c.CONSENT_EMAIL, "push": c.CONSENT_PUSH, "sms": c.CONSENT_SMS}
OUTBOUND = tuple(CONSENT)
DAY, WEEK = timedelta(days=1), timedelta(days=7)


class UnknownChannel(ValueError):
    """A channel Omni does not send marketing through."""


def outbound(channel: str) -> str:
    """`channel` when it is an outbound channel; raises `UnknownChannel` otherwise."""
    if channel not in CONSENT:
        raise UnknownChannel(
            f"channel must be one of {', '.join(OUTBOUND)} (outbound channels), not '{channel}'"
        )
    return channel


def caps_for(settings: Settings, channel: str) -> ContactCaps:
    """The channel's own caps where settings give them, else the shared ones."""
    return settings.channel_caps.get(channel, settings.contact_caps)


def quiet_until(
    settings: Settings, channel: str, now: datetime, zone: str | None = None
) -> datetime | None:
    """When the channel's quiet hours end in time zone `zone` (default: the settings'),
    if `now` is inside them (else None)."""
    caps = caps_for(settings, channel)
    start, end = caps.quiet_from, caps.quiet_until
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(ZoneInfo(zone or settings.timezone))
    hour = local.hour
    quiet = (start <= hour or hour < end) if start > end else (start <= hour < end)
    if not quiet:
        return None
    ends = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if ends <= local:
        ends += DAY
    return ends


def zones(conn: Connection, settings: Settings, persons: Iterable[str]) -> pd.Series:
    """Each of `persons`' time zone (index person_id): a customer record's own (of the
    person's records, the first by customer id that has one), else the home store's of
    that record, else `settings.timezone`."""
    wanted = sorted(set(persons))
    query = (
        select(
            identities.c[c.PERSON_ID],
            customers.c[c.CUSTOMER_ID],
            func.coalesce(customers.c[c.TIMEZONE], stores.c[c.TIMEZONE]),
        )
        .join(
            identities,
            (identities.c.id_type == "customer")
            & (identities.c[c.ID_VALUE] == customers.c[c.CUSTOMER_ID]),
        )
        .outerjoin(stores, stores.c[c.STORE_ID] == customers.c[c.HOME_STORE_ID])
        .where(identities.c[c.PERSON_ID].in_(wanted))
    )
    found = pd.DataFrame(conn.execute(query).all(), columns=[c.PERSON_ID, c.CUSTOMER_ID, "zone"])
    own = found.dropna(subset=["zone"]).sort_values(c.CUSTOMER_ID)
    first = own.drop_duplicates(c.PERSON_ID).set_index(c.PERSON_ID)["zone"]
    result: pd.Series = first.reindex(wanted).fillna(settings.timezone).astype(str)
    return result


def quiet_now(
    conn: Connection, settings: Settings, channel: str, now: datetime, persons: Iterable[str]
) -> dict[str, datetime]:
    """The persons in their quiet hours in `channel` now, with when those end."""
    where = zones(conn, settings, persons)
    ends = {zone: quiet_until(settings, channel, now, zone) for zone in set(where)}
    return {str(p): e for p, zone in where.items() if (e := ends[zone]) is not None}


@dataclass(frozen=True)
class Contact:
    """One message handed out."""

    person_id: str
    customer_id: str | None
    channel: str
    kind: str  # "trigger" or "offer"
    ref: str


def take_turn(conn: Connection, ledger: str) -> None:
    """Make this transaction the only writer of `ledger` until it ends (a row lock on
    PostgreSQL, the write lock on SQLite). Call it first in the transaction."""
    ins = insert_into(conn, ledger_turns)
    conn.execute(ins.values(ledger=ledger, turn=0).on_conflict_do_nothing())
    conn.execute(
        update(ledger_turns)
        .where(ledger_turns.c.ledger == ledger)
        .values(turn=ledger_turns.c.turn + 1)
    )


def contact_counts(
    conn: Connection,
    settings: Settings,
    now: datetime,
    persons: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Messages per person today, in their own time zone, and in the last seven days
    (columns day, week; index person_id); everyone with a message in the week when
    `persons` is None."""
    sent = contacts.c.sent_at
    query = select(contacts.c[c.PERSON_ID], sent).where(
        sent > micros(now - WEEK), sent <= micros(now)
    )
    if persons is not None:
        query = query.where(contacts.c[c.PERSON_ID].in_(list(persons)))
    rows = pd.DataFrame(conn.execute(query).all(), columns=[c.PERSON_ID, "sent_at"])
    if rows.empty:
        return pd.DataFrame({"day": [], "week": []}, dtype=int).rename_axis(c.PERSON_ID)
    where = zones(conn, settings, rows[c.PERSON_ID].unique().tolist())
    midnight = {z: micros(_midnight(now, z)) for z in set(where)}
    today = rows["sent_at"].to_numpy() >= where.map(midnight).reindex(rows[c.PERSON_ID]).to_numpy()
    counts = rows.assign(day=today.astype(int), week=1).groupby(c.PERSON_ID)[["day", "week"]]
    return counts.sum().astype(int)


def _midnight(now: datetime, zone: str) -> datetime:
    """The start of `now`'s day in time zone `zone`."""
    local = now.astimezone(ZoneInfo(zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def over_cap(
    conn: Connection,
    settings: Settings,
    channel: str,
    now: datetime,
    persons: Iterable[str] | None = None,
) -> set[str]:
    """Persons who may not get another message in `channel` now (at a cap)."""
    caps = caps_for(settings, channel)
    counts = contact_counts(conn, settings, now, persons)
    full = (counts["day"] >= caps.per_day) | (counts["week"] >= caps.per_week)
    blocked = set(counts.index[full])
    return blocked


def silenced(settings: Settings, channel: str) -> bool:
    """Whether the channel's caps allow no message at all."""
    caps = caps_for(settings, channel)
    return caps.per_day == 0 or caps.per_week == 0


def record(conn: Connection, sent: list[Contact], now: datetime) -> None:
    """Write the messages handed out (in the caller's transaction)."""
    if sent:
        conn.execute(
            insert(contacts),
            [
                {
                    "contact_id": uuid.uuid4().hex,
                    c.PERSON_ID: s.person_id,
                    c.CUSTOMER_ID: s.customer_id,
                    c.CHANNEL: s.channel,
                    c.KIND: s.kind,
                    "ref": s.ref,
                    "sent_at": micros(now),
                }
                for s in sent
            ],
        )


def consenting(conn: Connection, channel: str, persons: Iterable[str] | None = None) -> pd.Series:
    """Per person with a customer record: their customer id to write to, for persons who
    consent to `channel` (every record of the person must consent: a withdrawal anywhere
    counts). Index person_id, values customer_id."""
    column = customers.c[CONSENT[outbound(channel)]]
    query = select(
        identities.c[c.PERSON_ID], customers.c[c.CUSTOMER_ID], column.label("consent")
    ).join(
        identities,
        (identities.c.id_type == "customer")
        & (identities.c[c.ID_VALUE] == customers.c[c.CUSTOMER_ID]),
    )
    if persons is not None:
        query = query.where(identities.c[c.PERSON_ID].in_(list(persons)))
    frame = pd.DataFrame(conn.execute(query).all(), columns=[c.PERSON_ID, c.CUSTOMER_ID, "consent"])
    frame["consent"] = frame["consent"].astype(bool)
    agreed = frame.groupby(c.PERSON_ID)["consent"].all()
    first = frame.sort_values(c.CUSTOMER_ID).groupby(c.PERSON_ID)[c.CUSTOMER_ID].first()
    result: pd.Series = first[agreed.reindex(first.index, fill_value=False)]
    return result
