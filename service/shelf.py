"""Reference data the service reads often: the catalogue, each store's stock and sales.

Cached in memory so a request costs a dictionary lookup, not a query. After
`settings.stock_ttl_seconds` a value is read again in the background while requests keep
getting the cached one: a stock change shows within the TTL and the time of one read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from features import columns as c
from models.base import Recommender
from service.experiments.take_rates import LearnedRates, TakeRates
from service.settings import Settings
from service.storage.codec import DAY
from service.storage.tables import catalogue, events, inventory, offers, stores

T = TypeVar("T")
log = logging.getLogger("omni.shelf")
#: Days of a store's sales that make "popular in this store".
STORE_SALES_DAYS = 30


@dataclass(frozen=True)
class Item:
    item_id: str
    name: str
    category: str
    price: float | None
    brand: str | None = None


@dataclass(frozen=True)
class Place:
    """A store and where it is (coordinates and region may be unknown)."""

    store_id: str
    name: str | None
    city: str | None
    region: str | None
    latitude: float | None
    longitude: float | None


class Shelf:
    """Catalogue, stock and store sales, cached with a time to live."""

    def __init__(self, engine: Engine, ttl_seconds: float) -> None:
        self.engine = engine
        self.ttl = ttl_seconds
        #: key -> (read at, value, fingerprint of what it was read from)
        self._cache: dict[tuple[object, ...], tuple[float, object, object]] = {}
        self._lock = threading.Lock()
        self._refreshing: set[tuple[object, ...]] = set()
        self._refresher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="omni-shelf")
        self._rates: LearnedRates | None = None
        #: The offer book and its rows (made again when the book is read again).
        self._offer_rows: tuple[pd.DataFrame, list[dict[Any, Any]]] | None = None

    def _cached(
        self,
        key: tuple[object, ...],
        ttl: float,
        make: Callable[[], T],
        fingerprint: Callable[[], object] | None = None,
    ) -> T:
        """The cached value; read afresh when absent. A value older than `ttl` is still
        answered while one background thread checks it (stale while revalidating): when
        `fingerprint` (a cheap query) is unchanged the value is kept, else read again."""
        hit = self._cache.get(key)
        if hit is None:
            mark = fingerprint() if fingerprint else None
            value = make()
            with self._lock:
                self._cache[key] = (time.monotonic(), value, mark)
            return value
        if time.monotonic() - hit[0] >= ttl:
            self._refresh_later(key, make, fingerprint)
        return hit[1]  # type: ignore[return-value]

    def _refresh_later(
        self,
        key: tuple[object, ...],
        make: Callable[[], object],
        fingerprint: Callable[[], object] | None,
    ) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def refresh() -> None:
            try:
                mark = fingerprint() if fingerprint else None
                old = self._cache.get(key)
                value = old[1] if old and fingerprint and old[2] == mark else make()
                with self._lock:
                    self._cache[key] = (time.monotonic(), value, mark)
            except Exception as exc:  # keep the old value; try again next time
                log.warning("refreshing %s failed: %s", key[0], exc)
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        self._refresher.submit(refresh)

    def warm_for(self, model: Recommender | None) -> None:
        """`warm` when a recommender is loaded."""
        if model is not None:
            self.warm(model)

    def warm(self, model: Recommender) -> None:
        """Read every store's stock and sales in the background (after a model loads), so
        the first tablet or app asking for a store does not wait for them."""

        def run() -> None:
            with self.engine.connect() as conn:
                ids = list(conn.execute(select(stores.c[c.STORE_ID])).scalars())
            for store_id in ids:
                try:
                    self.stock_mask(store_id, model)
                    self.store_sales(store_id, model)
                except Exception as exc:
                    log.warning("warming store %s failed: %s", store_id, exc)

        self._refresher.submit(run)

    def items(self) -> dict[str, Item]:
        """The catalogue by item id (refreshed every ten TTLs)."""

        def read() -> dict[str, Item]:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(
                        catalogue.c[c.ITEM_ID],
                        catalogue.c[c.NAME],
                        catalogue.c[c.CATEGORY],
                        catalogue.c[c.PRICE],
                        catalogue.c[c.BRAND],
                    )
                ).all()
            return {r[0]: Item(r[0], r[1] or r[0], r[2], r[3], r[4]) for r in rows}

        return self._cached(("items",), self.ttl * 10, read)

    def offers(self) -> pd.DataFrame:
        """The whole offer book (the offers table), read again after each TTL."""

        def read() -> pd.DataFrame:
            with self.engine.connect() as conn:
                rows = conn.execute(select(offers)).all()
            return pd.DataFrame(rows, columns=[col.name for col in offers.columns])

        return self._cached(("offers",), self.ttl, read)

    def take_rates(self, settings: Settings) -> TakeRates:
        """The learned take rates (read again after `settings.take_rate_ttl_seconds`)."""
        with self._lock:
            if self._rates is None:
                self._rates = LearnedRates(settings)
            rates = self._rates
        return rates.now(self.engine, self.offers())

    def offer_rows(self) -> list[dict[Any, Any]]:
        """The offer book as rows (what one person's decision reads), with `offers`."""
        book = self.offers()
        held = self._offer_rows
        if held is None or held[0] is not book:
            held = (book, book.to_dict("records"))
            self._offer_rows = held
        return held[1]

    def offer(self, offer_id: object) -> dict[Any, Any] | None:
        """One offer of the book (a row of the offers table), None when there is none."""
        return next((o for o in self.offer_rows() if str(o[c.OFFER_ID]) == str(offer_id)), None)

    def places(self) -> dict[str, Place]:
        """Every store and where it is, by id (refreshed every ten TTLs)."""

        def read() -> dict[str, Place]:
            t = stores.c
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(t[c.STORE_ID], t[c.NAME], t[c.CITY], t[c.REGION], t[c.LATITUDE],
                           t[c.LONGITUDE])
                ).all()  # fmt: skip
            return {str(r[0]): Place(*r) for r in rows}

        return self._cached(("places",), self.ttl * 10, read)

    def store_exists(self, store_id: str) -> bool:
        def read() -> frozenset[str]:
            with self.engine.connect() as conn:
                known = set(conn.execute(select(stores.c[c.STORE_ID])).scalars())
                known |= set(conn.execute(select(inventory.c[c.STORE_ID]).distinct()).scalars())
            return frozenset(known)

        return store_id in self._cached(("stores",), self.ttl, read)

    def stock(self, store_id: str) -> dict[str, int]:
        """Units on hand per item in `store_id` (items with none are left out)."""

        def read() -> dict[str, int]:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(inventory.c[c.ITEM_ID], inventory.c[c.QUANTITY]).where(
                        inventory.c[c.STORE_ID] == store_id, inventory.c[c.QUANTITY] > 0
                    )
                ).all()
            return {item: int(qty) for item, qty in rows}

        def fingerprint() -> tuple[int, int]:
            with self.engine.connect() as conn:
                count, total = conn.execute(
                    select(func.count(), func.coalesce(func.sum(inventory.c[c.QUANTITY]), 0)).where(
                        inventory.c[c.STORE_ID] == store_id
                    )
                ).one()
            return int(count), int(total)

        return self._cached(("stock", store_id), self.ttl, read, fingerprint)

    def stock_mask(self, store_id: str, model: Recommender) -> np.ndarray:
        """True for the model's items in stock in `store_id`."""

        stock = self.stock(store_id)

        def make() -> np.ndarray:
            positions = model.items_.positions(list(stock), missing="skip")
            mask = np.zeros(len(model.items_), dtype=bool)
            mask[positions[positions >= 0]] = True
            return mask

        # Rebuilt only when the store's stock changed.
        return self._cached(
            ("mask", store_id, id(model)), self.ttl, make, lambda: self._mark(("stock", store_id))
        )

    def _mark(self, key: tuple[object, ...]) -> object:
        hit = self._cache.get(key)
        return hit[2] if hit else None

    def category_mask(self, category: str, model: Recommender) -> np.ndarray:
        return self._cached(
            ("category", category, id(model)),
            self.ttl * 10,
            lambda: np.asarray(model.item_category_ == category, dtype=bool),
        )

    def store_sales(self, store_id: str, model: Recommender) -> np.ndarray:
        """Units sold per model item in the store's last `STORE_SALES_DAYS` days of sales."""

        def read() -> np.ndarray:
            with self.engine.connect() as conn:
                last = conn.execute(
                    select(func.max(events.c[c.TS])).where(
                        events.c[c.STORE_ID] == store_id,
                        events.c[c.TYPE] == c.EventType.PURCHASE.value,
                    )
                ).scalar()
                sold = np.zeros(len(model.items_), dtype=np.float32)
                if last is None:
                    return sold
                since = int(last) - STORE_SALES_DAYS * DAY
                rows = conn.execute(
                    select(events.c[c.ITEM_ID], func.count())
                    .where(
                        events.c[c.STORE_ID] == store_id,
                        events.c[c.TYPE] == c.EventType.PURCHASE.value,
                        events.c[c.TS] >= since,
                    )
                    .group_by(events.c[c.ITEM_ID])
                ).all()
            frame = pd.DataFrame(rows, columns=[c.ITEM_ID, "n"])
            positions = model.items_.positions(frame[c.ITEM_ID].astype(str), missing="skip")
            keep = positions >= 0
            sold[positions[keep]] = frame["n"].to_numpy(dtype=np.float32)[keep]
            return sold

        return self._cached(("sales", store_id, id(model)), self.ttl * 10, read)
