"""One person's churn score now: features from their events, the served model, in words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from features.churn import churn_features
from service.serving import Served

#: The population rule the model was trained with: a purchase in this many days.
LOOKBACK_DAYS = 365


@dataclass(frozen=True)
class ChurnAnswer:
    probability: float | None
    #: "low", "medium", "high", or "lapsed" (no purchase in the lookback: already gone).
    band: str
    drivers: list[str]
    model_version: str | None
    as_of: datetime


def churn_of(served: Served, events: pd.DataFrame, now: datetime) -> ChurnAnswer:
    """The churn answer for the one person whose events (with person_id) are given."""
    model = served.need_churn()
    as_of = pd.Timestamp(now)
    features = churn_features(events, as_of=as_of, lookback_days=LOOKBACK_DAYS)
    if features.empty:
        return ChurnAnswer(
            None,
            "lapsed",
            [f"no purchase in the last {LOOKBACK_DAYS} days"],
            served.churn_version,
            now,
        )
    p = model.predict_proba(features)
    band = str(model.bands(p)[0])
    drivers = model.drivers(features, top=3)[0]
    return ChurnAnswer(
        round(float(np.clip(p[0], 0, 1)), 4), band, drivers, served.churn_version, now
    )
