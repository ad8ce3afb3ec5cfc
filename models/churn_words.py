"""Churn drivers in words a store associate or a marketer reads at a glance."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

#: One customer's features by name (a dict, or a pandas row).
Row = Mapping[str, float]


def _count(value: float, noun: str) -> str:
    n = round(value)
    if n == 0:
        return f"no {noun}s"
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _days(value: float) -> str:
    return _count(value, "day")


def _no_purchase(row: Row) -> str:
    usual = row.get("mean_gap_days")
    if usual is not None and not math.isnan(usual):
        return f"no purchase for {_days(row['recency_days'])}, usually every {_days(usual)}"
    return f"no purchase for {_days(row['recency_days'])}"


def _channel_gone(channel: str) -> Callable[[Row], str]:
    def say(row: Row) -> str:
        days = row.get(f"{channel}_recency_days")
        if days is None or math.isnan(days):
            return ""
        return f"no {channel} purchase for {_days(days)}"

    return say


TEMPLATES: dict[str, Callable[[Row], str]] = {
    "recency_days": _no_purchase,
    "gap_ratio": _no_purchase,
    "silence_chance": _no_purchase,
    "recency_share": _no_purchase,
    "purchase_rate": lambda r: (
        f"{_count(r['lifetime_purchase_days'], 'purchase day')} in "
        f"{_days(r['first_purchase_days'])} as a customer"
    ),
    "mean_gap_days": lambda r: f"buys only every {_days(r['mean_gap_days'])} on average",
    "purchase_trend": lambda r: (
        f"{_count(r['purchase_days_last_90'], 'purchase day')} in the last 90 days, "
        f"{int(r['purchase_days_prev_90'])} in the 90 before"
    ),
    "purchase_days_last_90": lambda r: (
        f"{_count(r['purchase_days_last_90'], 'purchase day')} in the last 90 days"
    ),
    "purchase_days": lambda r: f"only {_count(r['purchase_days'], 'purchase day')} in a year",
    "spend": lambda r: f"spent {r['spend']:.0f} in a year",
    "days_since_any_event": lambda r: (
        f"no visit in any channel for {_days(r['days_since_any_event'])}"
    ),
    "email_opens_90": lambda r: f"opened {_count(r['email_opens_90'], 'e-mail')} in 90 days",
    "email_clicks_90": lambda r: f"clicked {_count(r['email_clicks_90'], 'e-mail')} in 90 days",
    "views_30": lambda r: f"{_count(r['views_30'], 'product view')} in 30 days",
    "carts_30": lambda r: f"{_count(r['carts_30'], 'item')} carted in 30 days",
    "complaints_90": lambda r: f"{_count(r['complaints_90'], 'complaint')} in 90 days",
    "returns_365": lambda r: f"{_count(r['returns_365'], 'return')} in a year",
    "tenure_days": lambda r: f"customer for {_days(r['tenure_days'])}",
    "channels_used": lambda r: f"uses {int(r['channels_used'])} channel(s)",
    "store_visit_days": lambda r: f"{_count(r['store_visit_days'], 'store visit')} in a year",
    "web_recency_days": _channel_gone("web"),
    "app_recency_days": _channel_gone("app"),
    "store_recency_days": _channel_gone("store"),
}


def _bought_lately(row: Row) -> str:
    usual = row.get("mean_gap_days")
    last = f"last purchase {_days(row['recency_days'])} ago"
    if usual is not None and not math.isnan(usual):
        return f"{last}, usually every {_days(usual)}"
    return last


def _channel_lately(channel: str) -> Callable[[Row], str]:
    def say(row: Row) -> str:
        days = row.get(f"{channel}_recency_days")
        if days is None or math.isnan(days):
            return ""
        return f"bought {'in store' if channel == 'store' else 'on the ' + channel} " + (
            f"{_days(days)} ago"
        )

    return say


#: Where a feature holds the customer close (it lowers the risk), the words that say so;
#: a feature not here reads the same both ways (counts, spend).
HOLDING: dict[str, Callable[[Row], str]] = {
    "recency_days": _bought_lately,
    "gap_ratio": _bought_lately,
    "silence_chance": _bought_lately,
    "recency_share": _bought_lately,
    "mean_gap_days": lambda r: f"buys every {_days(r['mean_gap_days'])} on average",
    "purchase_days": lambda r: f"{_count(r['purchase_days'], 'purchase day')} in a year",
    "days_since_any_event": lambda r: f"active in a channel {_days(r['days_since_any_event'])} ago",
    "web_recency_days": _channel_lately("web"),
    "app_recency_days": _channel_lately("app"),
    "store_recency_days": _channel_lately("store"),
}


def describe(feature: str, row: Row, *, holding: bool = False) -> str:
    """The reason `feature` gives for this customer's row, or "" when it has none: what
    pushes them away, or with `holding` what keeps them close."""
    template = (HOLDING.get(feature) if holding else None) or TEMPLATES.get(feature)
    if template is None:
        return ""
    try:
        return template(row)
    except (KeyError, TypeError, ValueError):
        return ""
