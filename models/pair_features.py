"""What the two-stage ranker knows about each side of a (customer, item) pair.

`Cut` is the customer side of one cut of the history; `ItemContext` the item side. Both
are built from an `InteractionMatrix` and saved with the model as plain arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from features.matrix import InteractionMatrix


class Cut:
    """The customer side of one cut of the history (all users x items, sparse)."""

    def __init__(
        self,
        weights: csr_matrix,
        purchase_age: csr_matrix,
        counts: csr_matrix,
        seen: csr_matrix,
        store_share: np.ndarray,
        item_repeat: np.ndarray | None = None,
    ) -> None:
        self.weights = weights.tocsr()
        self.purchase_age = purchase_age.tocsr()
        self.counts = counts.tocsr()
        self.seen = seen.tocsr()
        self.store_share = np.asarray(store_share, dtype=np.float32)
        #: Per item, how often its buyers buy it again: of this cut's customers, unless
        #: given (a view of a few customers keeps the rates of the cut it was fitted on).
        self.item_repeat = repeat_rate(self.counts) if item_repeat is None else item_repeat

    @classmethod
    def of(cls, data: InteractionMatrix, item_repeat: np.ndarray | None = None) -> Cut:
        empty = csr_matrix(data.weights.shape, dtype=np.float32)
        counts = data.purchase_count if data.purchase_count is not None else empty
        seen = data.seen_age_days if data.seen_age_days is not None else empty
        share = data.user_store_share
        share = share if share is not None else np.zeros(len(data.users), dtype=np.float32)
        return cls(data.weights, data.purchase_age_days, counts, seen, share, item_repeat)


class CodeShares:
    """Each customer's share of weight per code of the items (a category or brand
    position), with the items' one-hot matrix built once (a fold-in asks for one
    customer's shares on every request)."""

    def __init__(self, codes: np.ndarray) -> None:
        self.codes = np.asarray(codes, dtype=np.int64)
        n_codes = int(self.codes.max()) + 1 if len(self.codes) else 1
        self.onehot = csr_matrix(
            (np.ones(len(self.codes)), (np.arange(len(self.codes)), np.maximum(self.codes, 0))),
            shape=(len(self.codes), n_codes),
        )

    def of(self, user_hist: csr_matrix) -> np.ndarray:
        """(customers x codes), rows summing to 1 (0 for a customer with no weight)."""
        per_code = np.asarray((user_hist @ self.onehot).todense())
        total = np.maximum(per_code.sum(axis=1, keepdims=True), 1e-12)
        shares: np.ndarray = per_code / total
        return shares


def repeat_rate(counts: csr_matrix) -> np.ndarray:
    """Per item: the share of its buyers who bought it more than once (smoothed)."""
    buyers = np.asarray((counts > 0).sum(axis=0)).ravel()
    repeaters = np.asarray((counts > 1).sum(axis=0)).ravel()
    rate: np.ndarray = (repeaters + 1.0) / (buyers + 4.0)
    return rate


class ItemContext:
    """Item attributes the ranker's features need, on the item axis."""

    def __init__(
        self,
        popularity: np.ndarray,
        category_codes: np.ndarray,
        brand_codes: np.ndarray,
        price: np.ndarray,
        trend: np.ndarray,
        store_share: np.ndarray,
    ) -> None:
        self.trend = trend.astype(np.float32)
        self.store_share = store_share.astype(np.float32)
        self.popularity = popularity.astype(np.float32)
        self.category_codes = category_codes.astype(np.int64)
        self.brand_codes = brand_codes.astype(np.int64)
        self.category_shares = CodeShares(self.category_codes)
        self.brand_shares = CodeShares(self.brand_codes)
        self.price = price.astype(np.float64)

    @classmethod
    def of(cls, data: InteractionMatrix) -> ItemContext:
        n = len(data.items)
        brands = data.item_brand if data.item_brand is not None else np.full(n, "", object)
        price = data.item_price if data.item_price is not None else np.full(n, np.nan)
        popularity = np.asarray(data.weights.sum(axis=0)).ravel()
        trend = data.item_trend if data.item_trend is not None else np.ones(n)
        in_store = np.zeros(n)
        if data.store_popularity is not None:
            in_store = np.asarray(data.store_popularity.sum(axis=0)).ravel()
        return cls(
            popularity,
            pd.factorize(pd.Series(data.item_category, dtype=object))[0],
            pd.factorize(pd.Series(brands, dtype=object))[0],
            np.asarray(price, dtype=np.float64),
            np.asarray(trend, dtype=np.float64),
            np.clip(in_store / np.maximum(popularity, 1e-12), 0.0, 1.0),
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "ctx.popularity": self.popularity,
            "ctx.category_codes": self.category_codes,
            "ctx.brand_codes": self.brand_codes,
            "ctx.price": self.price,
            "ctx.trend": self.trend,
            "ctx.store_share": self.store_share,
        }

    @classmethod
    def from_arrays(cls, state: dict[str, np.ndarray]) -> ItemContext:
        return cls(
            state["ctx.popularity"],
            state["ctx.category_codes"],
            state["ctx.brand_codes"],
            state["ctx.price"],
            state["ctx.trend"],
            state["ctx.store_share"],
        )

    def usual_price(self, user_hist: csr_matrix) -> np.ndarray:
        """Weight-averaged price of the items each customer chose (NaN prices skipped)."""
        known = np.where(np.isfinite(self.price), self.price, 0.0)
        has_price = np.isfinite(self.price).astype(np.float64)
        spent = np.asarray(user_hist @ known).ravel()
        weight = np.asarray(user_hist @ has_price).ravel()
        usual: np.ndarray = np.divide(spent, weight, out=np.zeros_like(spent), where=weight > 0)
        return usual
