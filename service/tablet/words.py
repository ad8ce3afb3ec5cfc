"""How the tablet page says things: "viewed in the app yesterday", "bought online last week"."""

from __future__ import annotations

from datetime import datetime

from features import columns as c

VERBS = {
    c.EventType.VIEW: "viewed",
    c.EventType.ADD_TO_CART: "added to cart",
    c.EventType.PURCHASE: "bought",
    c.EventType.RETURN: "returned",
    c.EventType.OFFER_SHOWN: "was shown offer",
    c.EventType.OFFER_ACCEPTED: "accepted offer",
    c.EventType.OFFER_DECLINED: "declined offer",
}
CHANNEL_LABELS = {
    c.Channel.WEB: "web",
    c.Channel.APP: "app",
    c.Channel.STORE: "store",
    c.Channel.EMAIL: "e-mail",
    c.Channel.CALL_CENTER: "call centre",
    c.Channel.SOCIAL: "social",
}


def where(channel: str, store_id: str | None, here: str | None = None) -> str:
    """'online', 'in the app', 'in this store', 'in store S003', 'by e-mail'."""
    if channel == c.Channel.STORE:
        if store_id and store_id == here:
            return "in this store"
        return f"in store {store_id}" if store_id else "in a store"
    return {
        c.Channel.WEB: "online",
        c.Channel.APP: "in the app",
        c.Channel.EMAIL: "by e-mail",
        c.Channel.CALL_CENTER: "by phone",
        c.Channel.SOCIAL: "on social media",
    }.get(c.Channel(channel), channel)


def when(moment: datetime, now: datetime) -> str:
    """'just now', 'today', 'yesterday', '3 days ago', 'last week', '5 weeks ago', or
    'on 3 Sep 2025'."""
    days = (now.date() - moment.date()).days
    if days <= 0:
        return "just now" if (now - moment).total_seconds() < 3600 else "today"
    if days == 1:
        return "yesterday"
    if days < 7:
        return f"{days} days ago"
    if days < 14:
        return "last week"
    if days < 60:
        return f"{days // 7} weeks ago"
    return f"on {moment.day} {moment:%b %Y}"


def verb(kind: str) -> str:
    return VERBS.get(c.EventType(kind), kind.replace("_", " "))
