"""Learned take rates: how often customers take an offer kind (or one offer), from the
outcomes of the decisions made with it, in place of the assumed constants once there are
enough of them.

An outcome is a decision that ended accepted, declined or expired (one that ended because
it was no longer open, out of stock or consent withdrawn, says nothing about the offer).
For a kind (or an offer) with `n` outcomes, `k` of them accepted, made at prior chances
summing to `e`, the learned rate is (k + w * e / n) / (n + w): the observed rate shrunk
toward the prior's mean as if the prior had been seen `w` times
(`OMNI_TAKE_RATE_PRIOR_WEIGHT`). It is used once `n` reaches `OMNI_TAKE_RATE_MIN_OUTCOMES`,
as a correction of the prior's level: P(take) = prior x learned / prior mean, so the
models still say which customer is likelier to take it; an offer's own rate comes before
its kind's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, func, select

from features import columns as c
from service.settings import Settings
from service.storage.tables import decisions

OUTCOMES = ("accepted", "declined", "expired")
PRIOR = "prior"


@dataclass(frozen=True)
class Rate:
    """What the outcomes of one offer or kind say."""

    outcomes: int
    accepted: int
    prior_mean: float
    learned: float


@dataclass(frozen=True)
class TakeRates:
    """Learned rates by offer id and by kind (only those with enough outcomes)."""

    by_offer: dict[str, Rate] = field(default_factory=dict)
    by_kind: dict[str, Rate] = field(default_factory=dict)

    def correct(
        self, offer_ids: pd.Series, kinds: pd.Series, prior: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """P(take) for rows with these offers, kinds and prior chances, and the source of
        each ("prior", or the learned rate used, in words)."""
        prior = np.asarray(prior, dtype=float)
        out = prior.copy()
        sources = np.full(len(out), PRIOR, dtype=object)
        if not self.by_offer and not self.by_kind:
            return out, sources
        offers = offer_ids.astype(str).reset_index(drop=True)
        by_kind = kinds.astype(str).reset_index(drop=True)
        # The kind's rate first, then an offer's own over it.
        ordered = ((by_kind, self.by_kind, "kind"), (offers, self.by_offer, "offer"))
        for keys, table, what in ordered:
            for key, rate in table.items():
                hit = (keys == key).to_numpy()
                if not hit.any() or rate.prior_mean <= 0:
                    continue
                out[hit] = np.minimum(prior[hit] * rate.learned / rate.prior_mean, 1.0)
                sources[hit] = (
                    f"learned from {what} {key}: {rate.accepted} of {rate.outcomes} taken "
                    f"({rate.learned:.1%})"
                )
        return out, sources

    def correct_one(self, offer_id: str, kind: str, prior: float) -> tuple[float, str]:
        """`correct` for one offer: P(take) and its source."""
        out, source = prior, PRIOR
        for key, rate, what in (
            (kind, self.by_kind.get(kind), "kind"),
            (offer_id, self.by_offer.get(offer_id), "offer"),
        ):
            if rate is None or rate.prior_mean <= 0:
                continue
            out = min(prior * rate.learned / rate.prior_mean, 1.0)
            source = (
                f"learned from {what} {key}: {rate.accepted} of {rate.outcomes} taken "
                f"({rate.learned:.1%})"
            )
        return out, source


def outcome_counts(conn: Connection) -> pd.DataFrame:
    """offer_id, status, n, prior_sum over the decisions that ended with an outcome (a
    grouped read of the decisions ledger)."""
    rows = conn.execute(
        select(
            decisions.c[c.OFFER_ID],
            decisions.c.status,
            func.count(),
            func.sum(func.coalesce(decisions.c.prior, decisions.c.probability)),
        )
        .where(decisions.c.status.in_(OUTCOMES))
        .group_by(decisions.c[c.OFFER_ID], decisions.c.status)
    ).all()
    return pd.DataFrame(rows, columns=[c.OFFER_ID, "status", "n", "prior_sum"])


def learn(counts: pd.DataFrame, kind_of: dict[str, str], settings: Settings) -> TakeRates:
    """The rates with enough outcomes, from `outcome_counts` and each offer's kind."""
    if counts.empty:
        return TakeRates()
    frame = counts.assign(
        kind=counts[c.OFFER_ID].map(kind_of),
        took=np.where(counts["status"] == "accepted", counts["n"], 0),
    )
    frame = frame[frame["kind"].notna()]

    def rates(by: str) -> dict[str, Rate]:
        grouped = frame.groupby(by).agg(
            n=("n", "sum"), k=("took", "sum"), prior_sum=("prior_sum", "sum")
        )
        found = {}
        w = settings.take_rate_prior_weight
        for key, row in grouped.iterrows():
            n, k = int(row["n"]), int(row["k"])
            if n < settings.take_rate_min_outcomes:
                continue
            mean = float(row["prior_sum"]) / n
            found[str(key)] = Rate(n, k, mean, (k + w * mean) / (n + w))
        return found

    return TakeRates(rates(c.OFFER_ID), rates("kind"))


def read_rates(conn: Connection, book: pd.DataFrame, settings: Settings) -> TakeRates:
    """The rates the decisions ledger gives now, with each offer's kind from `book` (the
    whole offer book)."""
    kinds = dict(zip(book[c.OFFER_ID].astype(str), book[c.KIND].astype(str), strict=True))
    return learn(outcome_counts(conn), kinds, settings)


class LearnedRates:
    """The learned rates of one store, read again after `take_rate_ttl_seconds` (they
    are counts over every customer's outcomes, not anyone's personal data)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._read: tuple[float, TakeRates] | None = None

    def now(self, engine: Engine, book: pd.DataFrame) -> TakeRates:
        ttl = self.settings.take_rate_ttl_seconds
        with self._lock:
            if self._read is not None and time.monotonic() - self._read[0] < ttl:
                return self._read[1]
        with engine.connect() as conn:
            rates = read_rates(conn, book, self.settings)
        with self._lock:
            self._read = (time.monotonic(), rates)
        return rates
