"""Differences between groups with 95% confidence intervals (normal approximations: the
groups a retailer compares hold hundreds to millions of customers)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Difference:
    """Treated minus control: the estimate, its interval, the two-sided p-value of no
    difference, and the estimate relative to the control's level (None when it is 0)."""

    estimate: float
    low: float
    high: float
    p_value: float
    relative: float | None

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def _z(level: float = LEVEL) -> float:
    return float(norm.ppf(0.5 + level / 2))


def rate(k: int, n: int, level: float = LEVEL) -> Interval:
    """A proportion with its Wilson score interval."""
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    z = _z(level)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def proportions(k1: int, n1: int, k0: int, n0: int, level: float = LEVEL) -> Difference:
    """p1 - p0 with its Wald interval (unpooled) and the pooled z-test's p-value."""
    if n1 == 0 or n0 == 0:
        nan = float("nan")
        return Difference(nan, nan, nan, nan, None)
    p1, p0 = k1 / n1, k0 / n0
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    pooled = (k1 + k0) / (n1 + n0)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    diff = p1 - p0
    p_value = 1.0 if se0 == 0 else float(2 * norm.sf(abs(diff) / se0))
    half = _z(level) * se
    return Difference(diff, diff - half, diff + half, p_value, diff / p0 if p0 > 0 else None)


def means(x1: np.ndarray, x0: np.ndarray, level: float = LEVEL) -> Difference:
    """mean(x1) - mean(x0) with Welch's standard error (normal interval)."""
    n1, n0 = len(x1), len(x0)
    if n1 < 2 or n0 < 2:
        nan = float("nan")
        return Difference(nan, nan, nan, nan, None)
    m1, m0 = float(np.mean(x1)), float(np.mean(x0))
    se = math.sqrt(float(np.var(x1, ddof=1)) / n1 + float(np.var(x0, ddof=1)) / n0)
    diff = m1 - m0
    p_value = 1.0 if se == 0 else float(2 * norm.sf(abs(diff) / se))
    half = _z(level) * se
    return Difference(diff, diff - half, diff + half, p_value, diff / m0 if m0 > 0 else None)
