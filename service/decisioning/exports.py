"""Batches for marketing: tonight's e-mail offers and triggers as flat tables, handed out
through the same ledgers and caps as the API."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import Engine

from features import columns as c
from service.decisioning import contact_policy as policy
from service.decisioning.nbo_batch import Ranker, decide_all
from service.decisioning.offers import Where
from service.decisioning.triggers import pull
from service.serving import Served
from service.settings import Settings
from service.shelf import Shelf

OFFER_EXPORT_COLUMNS = [
    c.CUSTOMER_ID, "decision_id", c.OFFER_ID, c.NAME, c.KIND, c.ITEM_ID, c.CATEGORY, c.VALUE,
    "probability", "expected_value", "reason", c.VALID_UNTIL, "reused", "served_id",
]  # fmt: skip
TRIGGER_EXPORT_COLUMNS = [
    "trigger_id", c.CUSTOMER_ID, "cart_id", "abandoned_at", "item_ids", "items",
    "recommended_item_ids", "churn_band", "incentive_offer_id", "incentive", "served_id",
]  # fmt: skip


class QuietHours(RuntimeError):
    """The channel is in its quiet hours: nothing may be handed out now."""


def export_offers(
    engine: Engine,
    served: Served,
    shelf: Shelf,
    settings: Settings,
    channel: str,
    now: datetime,
    rank: Ranker | None = None,
) -> pd.DataFrame:
    """The next-best offer of every customer who may get a message in `channel` now
    (consent, caps, quiet hours in their own time zone), one row each; each row is
    recorded as a contact. The candidates are ranked by `rank` (default: in this process).
    Raises `QuietHours` when it is night for everyone."""
    policy.outbound(channel)
    with engine.connect() as conn:
        reachable = policy.consenting(conn, channel)
        blocked = policy.over_cap(conn, settings, channel, now, None)
        quiet = policy.quiet_now(conn, settings, channel, now, reachable.index.tolist())
    if len(reachable) and len(quiet) == len(reachable):
        raise QuietHours(f"{channel} is in its quiet hours until {min(quiet.values()).isoformat()}")
    reachable = reachable[~reachable.index.isin(blocked) & ~reachable.index.isin(quiet)]
    decided = decide_all(engine, served, shelf, settings, reachable, Where(channel), now, rank)
    with engine.begin() as conn:
        policy.take_turn(conn, "contacts")
        full = policy.over_cap(conn, settings, channel, now, decided[c.PERSON_ID].tolist())
        decided = decided[~decided[c.PERSON_ID].isin(full)]
        policy.record(
            conn,
            [
                policy.Contact(p, cid, channel, "offer", d)
                for p, cid, d in zip(
                    decided[c.PERSON_ID],
                    decided[c.CUSTOMER_ID],
                    decided["decision_id"],
                    strict=True,
                )
            ],
            now,
        )
    decided = decided.assign(served_id=decided["decision_id"])
    return decided[OFFER_EXPORT_COLUMNS].reset_index(drop=True)


def export_triggers(
    engine: Engine, served: Served, shelf: Shelf, settings: Settings, channel: str, now: datetime
) -> pd.DataFrame:
    """Every abandoned-cart trigger due in `channel` now, handed out as the API does (once,
    within the caps and out of each person's quiet hours), one row each. Raises
    `QuietHours` when every due trigger was held back for the night."""
    page = pull(engine, served, shelf, settings, channel, now, limit=None)
    if not page.triggers and page.quiet_until is not None:
        raise QuietHours(f"{channel} is in its quiet hours until {page.quiet_until.isoformat()}")
    rows = []
    for t in page.triggers:
        items = t["items"]
        recs = t["recommendations"]
        incentive = t["incentive"]
        assert isinstance(items, list) and isinstance(recs, list)
        rows.append(
            {
                "trigger_id": t["trigger_id"],
                c.CUSTOMER_ID: t["customer_id"],
                "cart_id": t["cart_id"],
                "abandoned_at": t["abandoned_at"],
                "item_ids": ";".join(i["item_id"] for i in items),
                "items": ";".join(f"{i['name']} x{i['quantity']}" for i in items),
                "recommended_item_ids": ";".join(r["item_id"] for r in recs),
                "churn_band": t["churn_band"],
                "incentive_offer_id": incentive["offer_id"]
                if isinstance(incentive, dict)
                else None,
                "incentive": incentive["name"] if isinstance(incentive, dict) else None,
                "served_id": t["trigger_id"],
            }
        )
    return pd.DataFrame(rows, columns=TRIGGER_EXPORT_COLUMNS)
