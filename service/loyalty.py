"""Loyalty points and tier, by the rule in settings: points per currency unit spent on
purchases in any channel over the last `loyalty_window_days`, plus the points the customer
record carries; the tier is the highest whose threshold the points reach.

Read from the person's purchase day rows of the window (`churn_days`, a few hundred at
most) for one person, and in one grouped query for a batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, select

from features import columns as c
from features.identity import CUSTOMER
from service.people import Person
from service.settings import Settings
from service.storage.churn_days import PurchaseTotals
from service.storage.codec import DAY, micros
from service.storage.ids import of_ids, read_ids
from service.storage.tables import churn_days, customers, identities


@dataclass(frozen=True)
class Loyalty:
    points: int
    tier: str
    next_tier: str | None
    to_next: int | None
    in_words: str


def tier_of(points: float, settings: Settings) -> tuple[str, str | None, int | None]:
    """The tier the points reach, the next one and the points it still needs."""
    ladder = sorted(settings.loyalty_tiers.items(), key=lambda kv: (kv[1], kv[0]))
    reached = [name for name, floor in ladder if points >= floor]
    tier = reached[-1] if reached else ladder[0][0]
    above = [(name, floor) for name, floor in ladder if floor > points]
    if not above:
        return tier, None, None
    return tier, above[0][0], round(above[0][1] - points)


#: The purchase day rows that earn points: those after the bound day `since`
#: (`_window_start`).
_COUNTED = (
    churn_days.c[c.TYPE] == c.EventType.PURCHASE.value,
    churn_days.c.day > bindparam("since"),
)


def window_start(now: datetime, settings: Settings) -> int:
    """The last day (days since 1970) before the window of purchases that earn points now."""
    return micros(now) // DAY - settings.loyalty_window_days


def loyalty_of(
    conn: Connection,
    person: Person,
    now: datetime,
    settings: Settings,
    carried: int | None = None,
    bought: PurchaseTotals | None = None,
) -> Loyalty:
    """The person's points and tier now; `carried`: the points their customer records
    carry, when the caller has read those records (else read here); `bought`: their
    purchase totals, when the caller has read them for this window (else summed here)."""
    since = window_start(now, settings)
    if bought is not None and bought.spend_after == since:
        spent = bought.spend
    else:
        rows = read_ids(conn, _SPENT, person.customer_ids, person.anonymous_ids, since=since)
        spent = sum((float(total) for (total,) in rows), 0.0)
    if carried is None:
        carried = conn.execute(_CARRIED, {"ids": list(person.customer_ids)}).scalar_one()
    return _loyalty(int(spent * settings.loyalty_points_per_unit) + int(carried), settings)


_SPENT = (
    select(func.sum(churn_days.c.spend))
    .where(of_ids(churn_days), *_COUNTED)
    .group_by(churn_days.c[c.ID_TYPE])
)
_CARRIED = select(func.coalesce(func.sum(customers.c[c.LOYALTY_POINTS]), 0)).where(
    customers.c[c.CUSTOMER_ID].in_(bindparam("ids", expanding=True))
)


def _loyalty(points: int, settings: Settings) -> Loyalty:
    tier, next_tier, to_next = tier_of(points, settings)
    words = f"{tier.capitalize()}, {points:,} points"
    if next_tier is not None:
        words += f" ({to_next:,} to {next_tier.capitalize()})"
    return Loyalty(points, tier, next_tier, to_next, words)


def tiers_of(
    conn: Connection, person_ids: Iterable[str], now: datetime, settings: Settings
) -> dict[str, str]:
    """The tier of each of `person_ids` now (a batch's read: every person's points in two
    grouped queries), as `loyalty_of` gives it; a person with no points has the first."""
    t = churn_days.c
    points: dict[str, float] = {}
    for person, spent in conn.execute(
        select(identities.c[c.PERSON_ID], func.sum(t.spend))
        .join(identities, (identities.c[c.ID_TYPE] == t[c.ID_TYPE])
              & (identities.c[c.ID_VALUE] == t[c.ID_VALUE]))
        .where(*_COUNTED)
        .group_by(identities.c[c.PERSON_ID]),
        {"since": window_start(now, settings)},
    ).all():  # fmt: skip
        points[str(person)] = float(spent or 0) * settings.loyalty_points_per_unit
    for person, carried in conn.execute(
        select(identities.c[c.PERSON_ID], func.sum(customers.c[c.LOYALTY_POINTS]))
        .join(customers, (identities.c[c.ID_TYPE] == CUSTOMER)
              & (identities.c[c.ID_VALUE] == customers.c[c.CUSTOMER_ID]))
        .group_by(identities.c[c.PERSON_ID])
    ).all():  # fmt: skip
        points[str(person)] = points.get(str(person), 0.0) + float(carried or 0)
    # The same rounding as one person's: whole points of the spend, then the carried ones.
    return {p: tier_of(int(points.get(p, 0.0)), settings)[0] for p in person_ids}
