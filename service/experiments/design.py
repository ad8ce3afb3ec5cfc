"""Experiments as declared: arms with weights, and what each arm changes.

Declared in settings (`OMNI_EXPERIMENTS`, JSON) or a file (`OMNI_EXPERIMENTS_FILE`, JSON
or TOML with `[[experiments]]` tables). An arm changes nothing unless it says so:

- `recommender_alias`: the registry alias its recommendations come from (champion /
  challenger side by side);
- `offers`: the offer policy: `expected_value` (the default: value x P(take)),
  `probability` (the offer most likely taken) or `none` (held out of offers);
- `triggers`: False holds the arm out of abandoned-cart triggers; `cart_windows_minutes`
  changes when a cart counts as abandoned per channel; `incentive`: False sends triggers
  without an incentive.

An arm that gives no offers or no triggers is that campaign's holdout: its customers are
recorded as held out at the moment they would have been contacted.
"""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, TypeAdapter, model_validator

from service.storage.codec import as_utc

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
OfferPolicy = Literal["expected_value", "probability", "none"]


class Arm(BaseModel):
    """One arm: its share of customers (relative weight) and what it changes."""

    name: str = Field(pattern=NAME)
    weight: float = Field(gt=0)
    recommender_alias: str | None = Field(default=None, pattern=NAME)
    offers: OfferPolicy = "expected_value"
    triggers: bool = True
    cart_windows_minutes: dict[str, int] | None = None
    incentive: bool = True


class Experiment(BaseModel):
    """A named experiment, running from `start` (None: always) until `end` (None: open)."""

    name: str = Field(pattern=NAME)
    arms: list[Arm] = Field(min_length=1)
    start: datetime | None = None
    end: datetime | None = None
    description: str = ""

    @model_validator(mode="after")
    def _distinct_arms(self) -> Self:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment '{self.name}': arm names repeat ({names})")
        if self.start and self.end and as_utc(self.end) <= as_utc(self.start):
            raise ValueError(f"experiment '{self.name}': end is not after start")
        return self

    def running(self, now: datetime) -> bool:
        at = as_utc(now)
        return (self.start is None or as_utc(self.start) <= at) and (
            self.end is None or at < as_utc(self.end)
        )

    def knobs(self) -> set[str]:
        """What some arm of this experiment changes."""
        changed = set()
        for arm in self.arms:
            if arm.recommender_alias is not None:
                changed.add("recommender")
            if arm.offers != "expected_value":
                changed.add("offers")
            if not arm.triggers or arm.cart_windows_minutes is not None or not arm.incentive:
                changed.add("triggers")
        return changed


_LIST = TypeAdapter(list[Experiment])


def read_file(path: Path) -> list[Experiment]:
    """The experiments declared in a JSON or TOML file (a list, or `experiments = [...]`)."""
    text = path.read_text(encoding="utf-8")
    raw: object = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    if isinstance(raw, dict):
        raw = raw.get("experiments", [])
    return _LIST.validate_python(raw)


def checked(experiments: list[Experiment]) -> list[Experiment]:
    """`experiments` when they can run together: distinct names, and no two that overlap
    in time change the same thing (which arm would win is not for Omni to guess)."""
    names = [e.name for e in experiments]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"experiment names repeat: {', '.join(repeated)}")
    for i, one in enumerate(experiments):
        for other in experiments[i + 1 :]:
            both = one.knobs() & other.knobs()
            if both and _overlap(one, other):
                raise ValueError(
                    f"experiments '{one.name}' and '{other.name}' both change "
                    f"{', '.join(sorted(both))} at the same time"
                )
    return experiments


def _overlap(a: Experiment, b: Experiment) -> bool:
    lo = max(as_utc(a.start) if a.start else datetime.min.replace(tzinfo=UTC),
             as_utc(b.start) if b.start else datetime.min.replace(tzinfo=UTC))  # fmt: skip
    hi = min(as_utc(a.end) if a.end else datetime.max.replace(tzinfo=UTC),
             as_utc(b.end) if b.end else datetime.max.replace(tzinfo=UTC))  # fmt: skip
    return lo < hi
