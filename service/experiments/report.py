"""The report: per arm and for the holdout, what the customers did after they were (or
would have been) contacted, and what Omni added; attribution; the omnichannel KPIs.

A group is the customers with an exposure in [since, until) (given out, or held back and
recorded at the moment they would have been contacted), each counted once from their first
exposure; their outcome is what they bought within `attribution_days` of it. That is the
fair comparison: the control group is measured from the same moment as the treated.
Incremental conversion and revenue are each arm minus the control (the global holdout;
for an experiment with an arm that gives nothing, that arm), with 95% intervals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from features import columns as c
from service.experiments import attribution, kpis
from service.experiments.assignment import GLOBAL
from service.experiments.stats import Difference, Interval, means, proportions, rate
from service.settings import Settings
from service.storage import churn_days, exposures
from service.storage.exposures import OFFER, RECOMMENDATIONS, TRIGGER
from service.storage.reader import recent_events

HOLDOUT = "holdout"
TREATED = "treated"
#: What each thing an experiment changes is measured on.
KINDS = {"recommender": RECOMMENDATIONS, "offers": OFFER, "triggers": TRIGGER}


@dataclass(frozen=True)
class Group:
    name: str
    held_out: bool
    customers: int
    exposures: int
    click_rate: float | None
    converted: int
    conversion: Interval
    revenue: float
    revenue_per_customer: float


@dataclass(frozen=True)
class Comparison:
    group: str
    control: str
    conversion: Difference
    revenue_per_customer: Difference


@dataclass
class Report:
    since: datetime
    until: datetime
    experiment: str | None
    kinds: list[str]
    attribution_days: float
    groups: list[Group]
    comparisons: list[Comparison]
    attributed: list[dict[str, Any]]
    cross_channel: kpis.CrossChannel
    churn: kpis.Churn
    lifetime_value: kpis.LifetimeValue
    #: Per day since the first exposure: conversion of each group by then (for plots).
    by_day: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (NaN as None)."""
        out = {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "experiment": self.experiment,
            "kinds": self.kinds,
            "attribution_days": self.attribution_days,
            "groups": [asdict(g) for g in self.groups],
            "comparisons": [asdict(x) for x in self.comparisons],
            "attributed": self.attributed,
            "kpis": {
                "cross_channel": asdict(self.cross_channel),
                "churn": asdict(self.churn),
                "lifetime_value": {
                    k: v for k, v in asdict(self.lifetime_value).items() if k != "predicted_12m"
                },
            },
        }
        plain: dict[str, Any] = _plain(out)  # type: ignore[assignment]
        return plain


def build(
    engine: Engine, settings: Settings, since: datetime, until: datetime, experiment: str | None
) -> Report:
    """The report of [since, until) (outcomes up to `attribution_days` after `until`).
    Raises LookupError for an experiment nobody declared."""
    days = settings.attribution_days
    kinds = _kinds(settings, experiment)
    with engine.connect() as conn:
        shown = exposures.read(conn, since, until)
    shown = shown[shown[c.KIND].isin(kinds)]
    shown = shown.assign(group=_groups(shown, experiment)).dropna(subset=["group"])
    after = until + timedelta(days=days)
    # The period and the outcome window after it, read once as events: purchases, the
    # events that followed an answer, and (in the period) browsing for the KPIs. The
    # KPIs' whole history: the purchase day rows of the online state, not the event log.
    window = recent_events(engine, since=since, until=after, types=[t.value for t in c.EventType])
    bought = window[c.TYPE] == c.EventType.PURCHASE.value
    purchases = attribution.purchases_of(window[bought])
    followed = window[~bought]
    period = window[window[c.TYPE].isin([*kpis.BROWSE, c.EventType.PURCHASE.value])
                    & (window[c.TS] < pd.Timestamp(until))]  # fmt: skip
    with engine.connect() as conn:
        history = churn_days.purchase_days(conn, until)
    groups, firsts = outcomes(shown, purchases, followed, days)
    control = _control(groups, settings, experiment)
    comparisons = [
        compare(firsts, g.name, control) for g in groups if control and g.name != control
    ]
    attributed = pd.concat(
        [
            attribution.last_touch(shown, purchases, days),
            attribution.any_touch(shown, purchases, days),
        ],
        ignore_index=True,
    )
    return Report(
        since=since,
        until=until,
        experiment=experiment,
        kinds=kinds,
        attribution_days=days,
        groups=groups,
        comparisons=comparisons,
        attributed=[
            {str(k): v for k, v in row.items()}
            for row in attribution.summary(attributed).to_dict("records")
        ],
        cross_channel=kpis.cross_channel(period),
        churn=kpis.churn_rate(history, until),
        lifetime_value=kpis.lifetime_value(history, since, until),
        by_day=_by_day(firsts, days),
    )


#: Reports read the years events can hold (the event log refuses times before 1970).
FIRST_YEAR, LAST_YEAR = 1970, 2200


def period_problem(since: datetime, until: datetime) -> tuple[str, str] | None:
    """Which bound of a report's period is wrong and why (None: it is fine)."""
    if since.year < FIRST_YEAR:
        return "since", f"must not be before {FIRST_YEAR} (the store holds nothing earlier)"
    if until.year >= LAST_YEAR:
        return "until", f"must be before {LAST_YEAR}"
    if since >= until:
        return "since", "must be before until"
    return None


def _kinds(settings: Settings, experiment: str | None) -> list[str]:
    """The exposures a report reads: those an experiment's arms change; by default the
    offers and triggers the global holdout holds back."""
    if experiment is None:
        return [OFFER, TRIGGER]
    declared = {e.name: e for e in settings.experiments}
    if experiment not in declared:
        known = ", ".join(sorted(declared)) or "none"
        raise LookupError(f"no experiment is named '{experiment}' (declared: {known})")
    changed = declared[experiment].knobs()
    return sorted({KINDS[k] for k in changed}) or [RECOMMENDATIONS, OFFER, TRIGGER]


def _groups(shown: pd.DataFrame, experiment: str | None) -> pd.Series:
    """Each exposure's group: the holdout, the experiment's arm (held back by that arm
    itself or not at all), or treated; None for exposures outside the comparison (held
    back by another experiment, or not in this one)."""
    held = shown["held_by"]
    out: list[str | None] = []
    for by, arms in zip(held.where(held.notna(), None), shown["arms"], strict=True):
        if isinstance(by, str) and by == GLOBAL:
            out.append(HOLDOUT)
        elif experiment is None:
            out.append(TREATED if by is None else None)
        elif experiment not in arms:
            out.append(None)
        elif by is None or by == f"{experiment}:{arms[experiment]}":
            out.append(str(arms[experiment]))
        else:
            out.append(None)
    return pd.Series(out, index=shown.index, dtype=object)


def outcomes(
    shown: pd.DataFrame, purchases: pd.DataFrame, followed: pd.DataFrame, days: float
) -> tuple[list[Group], pd.DataFrame]:
    """The groups' figures, and per customer: group, first exposure, converted, revenue,
    days to their first purchase after it."""
    shown = shown.sort_values("served_at")
    firsts = shown.drop_duplicates(c.PERSON_ID)[[c.PERSON_ID, "group", "served_at"]]
    firsts = firsts.assign(served_at=pd.to_datetime(firsts["served_at"], utc=True))
    bought = purchases[[c.PERSON_ID, c.TS, "revenue"]].merge(firsts, on=c.PERSON_ID)
    window = (bought[c.TS] >= bought["served_at"]) & (
        bought[c.TS] <= bought["served_at"] + pd.Timedelta(days=days)
    )
    bought = bought[window]
    per = bought.groupby(c.PERSON_ID).agg(revenue=("revenue", "sum"), first_buy=(c.TS, "min"))
    firsts = firsts.merge(per, left_on=c.PERSON_ID, right_index=True, how="left")
    firsts["converted"] = firsts["first_buy"].notna()
    firsts["revenue"] = firsts["revenue"].fillna(0.0)
    waited = pd.to_timedelta(firsts["first_buy"] - firsts["served_at"])
    firsts["days_to_buy"] = waited.dt.total_seconds() / 86_400
    clicked = set(followed[c.SERVED_ID].dropna().astype(str)) if len(followed) else set()
    groups = []
    for name, members in firsts.groupby("group", sort=True):
        rows = shown[shown["group"] == name]
        held_out = bool(rows["held_by"].notna().all())
        given = rows[rows["held_by"].isna()]
        k, n = int(members["converted"].sum()), len(members)
        groups.append(
            Group(
                name=str(name),
                held_out=held_out,
                customers=n,
                exposures=len(rows),
                click_rate=_click_rate(given, clicked, held_out),
                converted=k,
                conversion=rate(k, n),
                revenue=round(float(members["revenue"].sum()), 2),
                revenue_per_customer=float(members["revenue"].mean()),
            )
        )
    return groups, firsts


def _click_rate(given: pd.DataFrame, clicked: set[str], held_out: bool) -> float | None:
    """The share of the answers given out that an event then carried back."""
    if held_out or given.empty:
        return None
    return float(given["served_id"].isin(clicked).mean())


def _control(groups: list[Group], settings: Settings, experiment: str | None) -> str | None:
    """What each group is compared with: an experiment's own holdout arm, else the global
    holdout, else (champion against challenger, where nobody is held out) the
    experiment's first declared arm."""
    names = {g.name for g in groups}
    if experiment is not None:
        held = [g.name for g in groups if g.held_out and g.name != HOLDOUT]
        if held:
            return held[0]
    if HOLDOUT in names:
        return HOLDOUT
    if experiment is not None:
        declared = next(e for e in settings.experiments if e.name == experiment)
        first = declared.arms[0].name
        return first if first in names else None
    return None


def compare(firsts: pd.DataFrame, group: str, control: str) -> Comparison:
    one, base = firsts[firsts["group"] == group], firsts[firsts["group"] == control]
    return Comparison(
        group=group,
        control=control,
        conversion=proportions(
            int(one["converted"].sum()), len(one), int(base["converted"].sum()), len(base)
        ),
        revenue_per_customer=means(
            one["revenue"].to_numpy(dtype=float), base["revenue"].to_numpy(dtype=float)
        ),
    )


def _by_day(firsts: pd.DataFrame, days: float) -> pd.DataFrame:
    """Per group and day d since the first exposure: customers, converted by day d."""
    rows = []
    for d in range(1, int(np.ceil(days)) + 1):
        by_then = firsts["days_to_buy"] <= d
        for name, members in firsts.assign(by_then=by_then).groupby("group"):
            rows.append({"day": d, "group": str(name), "customers": len(members),
                         "converted": int(members["by_then"].sum())})  # fmt: skip
    return pd.DataFrame(rows, columns=["day", "group", "customers", "converted"])


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else round(float(value), 6)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat()
    return value
