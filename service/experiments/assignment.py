"""Who is in which arm, and who is held out: a stable hash of the person id, the same in
every channel, process and day.

A person's position in an experiment is the first 64 bits of SHA-256 over the experiment
name and their person id, read as a number in [0, 1); the arms take consecutive shares of
that interval by weight. The global control group takes the persons whose position under
`holdout_salt` is below `holdout_share`. The draws are independent: every arm holds its
share of the control group, and every experiment's arms split the same way inside it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from service.experiments.design import Arm, Experiment
from service.settings import Settings

GLOBAL = "global holdout"
_TOP = float(2**64)


def position(salt: str, person_id: str) -> float:
    """The person's place in [0, 1) under `salt` (an experiment's name)."""
    digest = hashlib.sha256(f"{salt}\x00{person_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _TOP


def arm_of(experiment: Experiment, person_id: str) -> Arm:
    """The arm the person is in (weights relative to their sum)."""
    return experiment.arms[_arm_index(experiment, position(experiment.name, person_id))]


def _arm_index(experiment: Experiment, at: float) -> int:
    weights = np.asarray([a.weight for a in experiment.arms], dtype=float)
    bounds = np.cumsum(weights) / weights.sum()
    return min(int(np.searchsorted(bounds, at, side="right")), len(bounds) - 1)


def in_control_group(person_id: str, settings: Settings) -> bool:
    """Whether the person is in the global control group."""
    share = settings.holdout_share
    return share > 0 and position(settings.holdout_salt, person_id) < share


@dataclass(frozen=True)
class Assignment:
    """What the running experiments and the control group make of one person."""

    person_id: str
    control: bool
    #: Running experiment name -> the person's arm.
    arms: dict[str, Arm] = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, str]:
        """Experiment name -> arm name, as answers and the ledger show them."""
        return {name: arm.name for name, arm in self.arms.items()}

    def held_from(self, kind: str) -> str | None:
        """Who holds the person out of `kind` ("offer" or "trigger"): the global control
        group, or "experiment:arm"; None when they may get it."""
        if self.control:
            return GLOBAL
        for name, arm in self.arms.items():
            denied = arm.offers == "none" if kind == "offer" else not arm.triggers
            if denied:
                return f"{name}:{arm.name}"
        return None

    @property
    def recommender_alias(self) -> str | None:
        return next((a.recommender_alias for a in self.arms.values() if a.recommender_alias), None)

    @property
    def offer_policy(self) -> str:
        return next(
            (a.offers for a in self.arms.values() if a.offers != "expected_value"),
            "expected_value",
        )

    @property
    def incentive(self) -> bool:
        return all(a.incentive for a in self.arms.values())

    def cart_window(self, channel: str, default: int) -> int:
        """Minutes after a cart's last change before it is abandoned in `channel`."""
        for arm in self.arms.values():
            if arm.cart_windows_minutes and channel in arm.cart_windows_minutes:
                return arm.cart_windows_minutes[channel]
        return default


def assign(person_id: str, settings: Settings, now: datetime) -> Assignment:
    """The person's arms in the experiments running at `now`, and the control group."""
    arms = {e.name: arm_of(e, person_id) for e in settings.experiments if e.running(now)}
    return Assignment(person_id, in_control_group(person_id, settings), arms)


def assign_all(ids: list[str], settings: Settings, now: datetime) -> dict[str, Assignment]:
    """`assign` for many persons (a batch): one hash per person and experiment."""
    return {p: assign(p, settings, now) for p in ids}


def held_out(assigned: dict[str, Assignment], kind: str) -> dict[str, str]:
    """Of the assigned persons, those held out of `kind`, and by whom."""
    found = {p: a.held_from(kind) for p, a in assigned.items()}
    return {p: by for p, by in found.items() if by is not None}


def quiet(settings: Settings, now: datetime) -> bool:
    """Whether nobody is held out or in an experiment now (the common case: skip it all)."""
    return settings.holdout_share <= 0 and not any(e.running(now) for e in settings.experiments)
