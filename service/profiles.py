"""The 360 view of one person: identities, consents, channels, recent activity, cart,
wish-list, churn.

Built once here for both the API (`GET /v1/customers/{id}/profile`) and the tablet page.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, select

from features import columns as c
from service.churn_scoring import churn_now
from service.loyalty import loyalty_of, window_start
from service.people import Person, recent_events
from service.preferences import SAID, channels_since, preferences
from service.schemas import (
    Activity,
    CartLine,
    ChurnScore,
    LoyaltyStatus,
    Preferences,
    Profile,
    ServiceCase,
    WishItem,
)
from service.serving import ModelUnavailable, Served
from service.settings import Settings
from service.shelf import Item, Shelf
from service.storage import activity, carts, cases, churn_days, wishes
from service.storage.codec import DAY, micros, moment
from service.storage.engine import fetch_all
from service.storage.tables import customers

#: Recent activity shown in a profile.
RECENT = 20
#: Open cart lines shown in a profile: the latest added (a cart of a hundred lines reads
#: and shows its latest twenty, as the activity its latest twenty events).
CART_SHOWN = 20
SHOWN_TYPES = (
    c.EventType.VIEW,
    c.EventType.ADD_TO_CART,
    c.EventType.PURCHASE,
    c.EventType.RETURN,
    c.EventType.OFFER_SHOWN,
    c.EventType.OFFER_ACCEPTED,
    c.EventType.OFFER_DECLINED,
)


def build_profile(
    conn: Connection,
    served: Served,
    shelf: Shelf,
    customer_id: str,
    person: Person,
    now: datetime,
    settings: Settings,
    store_id: str | None = None,
) -> Profile:
    """The person's profile now (churn is None while no churn model is loaded); wished
    items with their quantity on `store_id`'s shelf when a store is given."""
    catalogue = shelf.items()
    # A few rows per part, never the person's whole history: the latest activity, the
    # cart and channels from the online state, churn from the batch answer.
    shown = recent_events(conn, person, SHOWN_TYPES, RECENT)
    record, carried = _record(conn, person)
    recent = [
        Activity(
            ts=row[c.TS],
            channel=row[c.CHANNEL],
            type=row[c.TYPE],
            item_id=row[c.ITEM_ID],
            name=item_name(catalogue, row[c.ITEM_ID]) or _offer_name(shelf, row[c.OFFER_ID]),
            store_id=row[c.STORE_ID],
            offer_id=row[c.OFFER_ID],
        )
        for row in shown
    ]
    at = micros(now)
    since = at - settings.cart_open_days * DAY
    lines = carts.open_lines(
        conn, person.customer_ids, person.anonymous_ids, until=at, since=since, most=CART_SHOWN
    )
    cart = [
        CartLine(
            item_id=line.item_id,
            name=item_name(catalogue, line.item_id) or line.item_id,
            quantity=line.quantity,
            added_at=moment(line.added_at),
            channel=line.channel,
        )
        for line in lines
    ]
    # The purchase days loyalty and the channel shares both count, read once.
    bought = churn_days.purchase_totals(
        conn, person.customer_ids, person.anonymous_ids,
        days_from=channels_since(now), spend_after=window_start(now, settings),
    )  # fmt: skip
    shelf_here = shelf.stock(store_id) if store_id is not None else None
    wishlist = [
        WishItem(
            item_id=wish.item_id,
            name=item_name(catalogue, wish.item_id) or wish.item_id,
            wished_at=moment(wish.wished_at),
            channel=wish.channel,
            in_stock=None if shelf_here is None else shelf_here.get(wish.item_id, 0),
        )
        for wish in wishes.wish_list(conn, person.customer_ids, person.anonymous_ids)
    ]
    try:
        answer = churn_now(conn, served, person, now, settings.answer_max_age_hours)
        churn = ChurnScore(customer_id=customer_id, **vars(answer))
    except ModelUnavailable:
        churn = None
    service = [
        ServiceCase(
            case_id=x.case_id,
            type=x.type,
            reason=x.reason,
            channel=x.channel,
            opened_at=moment(x.opened_at),
            updated_at=moment(x.updated_at),
            status=x.status,
            in_words=case_in_words(x, now),
        )
        for x in cases.cases_of(conn, person.customer_ids, person.anonymous_ids)[:SERVICE_SHOWN]
    ]
    return Profile(
        customer_id=customer_id,
        person_id=person.person_id,
        name=_text(record.get(c.NAME)),
        customer_ids=list(person.customer_ids),
        anonymous_ids=list(person.anonymous_ids),
        home_store_id=_text(record.get(c.HOME_STORE_ID)),
        consent={
            "email": bool(record.get(c.CONSENT_EMAIL, False)),
            "sms": bool(record.get(c.CONSENT_SMS, False)),
            "push": bool(record.get(c.CONSENT_PUSH, False)),
        },
        channels=activity.channels(conn, person.customer_ids, person.anonymous_ids),
        recent=recent,
        cart=cart,
        wishlist=wishlist,
        service=service,
        loyalty=LoyaltyStatus(**vars(loyalty_of(conn, person, now, settings, carried, bought))),
        preferences=Preferences.model_validate(
            vars(preferences(conn, shelf, person, now, bought)), from_attributes=True
        ),
        churn=churn,
    )


#: Service cases shown in a profile.
SERVICE_SHOWN = 10


def case_in_words(case: cases.Case, now: datetime) -> str:
    """ "complaint: late delivery, open for 6 days, by phone"; "service contact: where is
    my order, resolved 2 days ago, by e-mail"."""
    kind = case.type.replace("_", " ")
    still_open = case.status == c.CaseStatus.OPEN
    days = max(0, (micros(now) - (case.opened_at if still_open else case.updated_at)) // DAY)
    span = f"{days} day{'s' if days != 1 else ''}"
    if still_open:
        when = f"open for {span}" if days else "opened today"
    else:
        when = f"{case.status} {span} ago" if days else f"{case.status} today"
    return f"{kind}: {case.reason}, {when}, {SAID.get(case.channel, case.channel)}"


def item_name(catalogue: dict[str, Item], item_id: str | None) -> str | None:
    known = catalogue.get(item_id) if item_id else None
    return known.name if known else None


def _offer_name(shelf: Shelf, offer_id: str | None) -> str | None:
    offer = shelf.offer(offer_id) if offer_id else None
    return None if offer is None else str(offer[c.NAME])


def _record(conn: Connection, person: Person) -> tuple[dict[str, object], int]:
    """The customer record of the person (the first of their customer ids that has one),
    and the loyalty points all their records carry."""
    found = fetch_all(conn, _RECORDS, {"ids": list(person.customer_ids)})
    rows = [dict(zip(_RECORD_COLUMNS, row, strict=True)) for row in found]
    carried = sum(int(row[c.LOYALTY_POINTS] or 0) for row in rows)
    return (rows[0] if rows else {}), carried


_RECORDS = select(customers).where(customers.c[c.CUSTOMER_ID].in_(bindparam("ids", expanding=True)))
_RECORD_COLUMNS = tuple(column.name for column in customers.columns)


def _text(value: object) -> str | None:
    return None if value is None else str(value)
