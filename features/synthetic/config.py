"""The knobs of the synthetic omnichannel world."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and behaviour of a generated data set. Same config and seed, same data."""

    customers: int = 2000
    seed: int = 7
    #: Catalogue size; default grows with customers (300 to 20,000).
    items: int | None = None
    #: Physical stores; default grows with customers (4 to 300).
    stores: int | None = None
    categories: int = 16
    #: Days of history, ending at `end`.
    days: int = 365
    end: datetime = datetime(2026, 10, 1, tzinfo=UTC)
    #: Share of customers who stop buying during the window.
    churn_rate: float = 0.2
    #: Dimension of the latent taste space.
    factors: int = 8
    #: Mean shopping sessions per customer per month, all channels together.
    sessions_per_month: float = 1.6

    def __post_init__(self) -> None:
        if not 10 <= self.customers <= 5_000_000:
            raise ValueError(f"customers must be between 10 and 5,000,000, not {self.customers}")
        if self.days < 30:
            raise ValueError(f"days must be at least 30, not {self.days}")
        if not 0 <= self.churn_rate < 1:
            raise ValueError(f"churn_rate must be in [0, 1), not {self.churn_rate}")
        if self.end.tzinfo is None:
            raise ValueError("end must carry a UTC offset")

    @property
    def n_items(self) -> int:
        return self.items or int(min(max(self.customers * 0.4, 300), 20_000))

    @property
    def n_stores(self) -> int:
        return self.stores or int(min(max(self.customers // 1500 + 4, 4), 300))
