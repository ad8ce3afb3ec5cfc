"""The models the service answers with: loaded once, checked, warmed, swapped whole.

`ModelHolder.current` is one immutable `Served` snapshot. A request takes the snapshot
once and uses it to the end, so a reload (which builds a new snapshot beside the old and
then swaps one reference) never changes a model under a request in flight. A version
that fails to load or fails its smoke check is refused and the old one keeps serving.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from scipy.sparse import csc_matrix

from models.base import Recommender
from models.churn import ChurnModel
from service.answer_cache import AnswerCache
from service.model_checks import churn_misfit, recommender_misfit
from service.registry import (
    CHURN,
    RECOMMENDER,
    connect,
    load_churn,
    load_recommender,
    previous_tag,
    read_at_of,
    version_of,
)
from service.settings import Settings
from service.storage.codec import micros
from service.storage.engine import open_engine

log = logging.getLogger("omni.serving")
#: Neighbours kept per item for reasons.
NEIGHBOURS = 20


class ModelUnavailable(RuntimeError):
    """No model of that kind is loaded (nothing promoted yet, or every version refused)."""


@dataclass(frozen=True)
class WarmTop:
    """Each known customer's best `n` items, computed in one batch at load."""

    positions: np.ndarray  # customers x n, item positions (-1: none)
    scores: np.ndarray  # customers x n


@dataclass(frozen=True)
class Served:
    """What one request answers with: never mutated, replaced whole on reload."""

    recommender: Recommender | None = None
    recommender_version: str | None = None
    #: When its training read the event log (microseconds, UTC): events stored after it
    #: are new to the model even when their own time is older (a till upload at night).
    recommender_read_at: int | None = None
    warm: WarmTop | None = None
    #: The training history by item (for similar items) and each item's norm.
    history_by_item: csc_matrix | None = None
    item_norms: np.ndarray | None = None
    #: Per item, its closest items by the customers they share, best first (-1: none):
    #: what "bought together with X" reasons are read from.
    neighbours: np.ndarray | None = None
    churn: ChurnModel | None = None
    churn_version: str | None = None
    #: Answers folded in for persons active since the batch answers, until their next
    #: event (`answer_cache`): one cache per loaded model.
    folded: AnswerCache[Any] = field(default_factory=lambda: AnswerCache(0))
    churn_folded: AnswerCache[Any] = field(default_factory=lambda: AnswerCache(0))
    loaded_at: float = field(default_factory=time.time)
    #: Per model served by an earlier version than its alias names (the aliased one was
    #: refused): why, in words.
    fallbacks: dict[str, str] = field(default_factory=dict)

    def need_recommender(self) -> Recommender:
        if self.recommender is None:
            raise ModelUnavailable(f"no {RECOMMENDER} model is loaded yet")
        return self.recommender

    def need_churn(self) -> ChurnModel:
        if self.churn is None:
            raise ModelUnavailable(f"no {CHURN} model is loaded yet")
        return self.churn


@dataclass(frozen=True)
class LoadOutcome:
    """What a load or reload did for one model."""

    model: str
    version: str | None
    status: str  # "loaded", "unchanged", "refused", "fallback", "missing"
    detail: str = ""


def smoke_recommender(model: Recommender) -> None:
    """Raise unless the model answers a known customer and a stranger sensibly."""
    if len(model.items_) == 0:
        raise ValueError("the recommender knows no items")
    if len(model.users_):
        top = model.recommend([str(model.users_.ids[0])], k=5)
        if top.empty or not np.isfinite(top["score"]).all():
            raise ValueError("the recommender gave no finite scores for a known customer")
    cold = model.recommend_or_popular(["\x00smoke-check-stranger"], k=5)
    if cold.empty or not np.isfinite(cold["score"]).all():
        raise ValueError("the recommender has no usable cold-start answer")


def smoke_churn(model: ChurnModel) -> None:
    """Raise unless the model gives a probability strictly between 0 and 1."""
    row = pd.DataFrame(np.zeros((1, len(model.features_))), columns=model.features_)
    p = model.predict_proba(row)
    if not (np.isfinite(p).all() and ((p > 0) & (p < 1)).all()):
        raise ValueError(f"the churn model gave {p} for a plain customer")


def warm(model: Recommender, n: int) -> WarmTop | None:
    """Every known customer's top `n` items in batches (None when n is 0)."""
    if n <= 0 or len(model.users_) == 0:
        return None
    positions, scores = model.rank(np.arange(len(model.users_)), min(n, len(model.items_)))
    return WarmTop(positions.astype(np.int32), scores)


def item_neighbours(by_item: csc_matrix, norms: np.ndarray, n: int = NEIGHBOURS) -> np.ndarray:
    """Each item's `n` closest items by cosine over the customers who chose them
    (items x n positions, best first, -1 where fewer share a customer), in blocks."""
    items = by_item.shape[1]
    n = min(n, max(items - 1, 1))
    out = np.full((items, n), -1, dtype=np.int32)
    by_item_t = by_item.T.tocsr()
    block = max(1, 20_000_000 // max(items, 1))
    for start in range(0, items, block):
        stop = min(start + block, items)
        overlap = np.asarray((by_item_t[start:stop] @ by_item).todense(), dtype=np.float32)
        sims = overlap / np.maximum(np.outer(norms[start:stop], norms), 1e-12)
        sims[np.arange(stop - start), np.arange(start, stop)] = 0
        top = np.argpartition(-sims, n - 1, axis=1)[:, :n] if n < items else np.argsort(-sims)
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1)
        top = np.take_along_axis(top, order, axis=1)
        top_sims = np.take_along_axis(top_sims, order, axis=1)
        out[start:stop] = np.where(top_sims > 0, top, -1)[:, :n]
    return out


#: Earlier versions tried, newest first, when the aliased one is refused at start.
FALLBACK_TRIES = 5
#: A refused version is tried again after this long (a registry that failed to answer).
RETRY_REFUSED_SECONDS = 600.0


class ModelHolder:
    """Holds the current `Served` snapshot; loads, checks and swaps versions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.current = Served()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        #: Versions refused, with why and when: not downloaded again at every poll.
        self._refused: dict[tuple[str, str], tuple[str, float]] = {}

    def reload(self) -> list[LoadOutcome]:
        """Load the aliased version of each model when it differs from the one served.

        One reload at a time; requests keep using the old snapshot until the swap.
        """
        with self._lock:
            client = connect(self.settings)
            alias = self.settings.model_alias
            served = self.current
            outcomes = []
            new = served
            for name, loaded_version in (
                (RECOMMENDER, served.recommender_version),
                (CHURN, served.churn_version),
            ):
                try:
                    version = version_of(client, name, alias)
                except LookupError as exc:
                    outcomes.append(LoadOutcome(name, loaded_version, "missing", str(exc)))
                    continue
                if version == loaded_version:
                    outcomes.append(LoadOutcome(name, version, "unchanged"))
                    continue
                before = self._refused.get((name, version))
                if before is not None and time.monotonic() - before[1] < RETRY_REFUSED_SECONDS:
                    outcomes.append(LoadOutcome(name, loaded_version, "refused", before[0]))
                    continue
                try:
                    new = self._load(new, client, name, alias, version)
                except Exception as exc:  # a bad version must never stop the service
                    log.warning("refused %s version %s: %s", name, version, exc)
                    self._refused[(name, version)] = (f"{exc}", time.monotonic())
                    if loaded_version is None:  # nothing served yet: the last good one
                        new, outcome = self._fall_back(new, client, name, alias, version, exc)
                        outcomes.append(outcome)
                    else:
                        outcomes.append(LoadOutcome(name, loaded_version, "refused", f"{exc}"))
                    continue
                new = replace(new, fallbacks={k: v for k, v in new.fallbacks.items() if k != name})
                outcomes.append(LoadOutcome(name, version, "loaded"))
            if new is not served:
                self.current = replace(new, loaded_at=time.time())
                # Models live until the next reload: keep the collector from scanning
                # their millions of objects on every cycle (long pauses under load).
                gc.collect()
                gc.freeze()
            return outcomes

    def _fall_back(
        self,
        served: Served,
        client: MlflowClient,
        name: str,
        alias: str,
        refused: str,
        why: Exception,
    ) -> tuple[Served, LoadOutcome]:
        """The version the alias pointed at before `refused` (when `omni promote` recorded
        it), else the newest earlier version that loads and passes its checks (of the last
        FALLBACK_TRIES), when the aliased `refused` one did not and nothing is served."""
        earlier = sorted(
            (int(v.version) for v in client.search_model_versions(f"name='{name}'")),
            reverse=True,
        )
        tried = [str(v) for v in earlier if v < int(refused)][:FALLBACK_TRIES]
        previous = client.get_model_version(name, refused).tags.get(previous_tag(alias))
        if previous is not None:  # the version the alias pointed at before, first
            tried = [previous, *(v for v in tried if v != previous)]
        for candidate in tried:
            try:
                loaded = self._load(served, client, name, alias, candidate)
            except Exception as exc:
                log.warning("refused %s version %s: %s", name, candidate, exc)
                continue
            note = f"version {refused} ('{alias}') refused ({why}); serving version {candidate}"
            log.warning("%s: %s", name, note)
            loaded = replace(loaded, fallbacks={**loaded.fallbacks, name: note})
            return loaded, LoadOutcome(name, candidate, "fallback", note)
        return served, LoadOutcome(name, None, "refused", f"{why}")

    def _load(
        self, served: Served, client: MlflowClient, name: str, alias: str, version: str
    ) -> Served:
        started = time.perf_counter()
        if name == RECOMMENDER:
            model, _ = load_recommender(client, alias, version)
            smoke_recommender(model)
            self._fits_store(model)
            read_at = micros(read_at_of(client, RECOMMENDER, version))
            by_item = model.history_.tocsc()
            norms = np.sqrt(np.asarray(by_item.multiply(by_item).sum(axis=0)).ravel())
            served = replace(
                served,
                recommender=model,
                recommender_version=version,
                recommender_read_at=read_at,
                warm=warm(model, self.settings.warm_top_n),
                folded=AnswerCache(self.settings.folded_answers),
                history_by_item=by_item,
                item_norms=norms.astype(np.float32),
                neighbours=item_neighbours(by_item, norms),
            )
        else:
            churn, _ = load_churn(client, alias, version)
            smoke_churn(churn)
            misfit = churn_misfit(churn)
            if misfit is not None:
                raise ValueError(f"the churn model is unfit to serve: {misfit}")
            served = replace(
                served,
                churn=churn,
                churn_version=version,
                churn_folded=AnswerCache(self.settings.folded_answers),
            )
        log.info("loaded %s version %s in %.1f s", name, version, time.perf_counter() - started)
        return served

    def _fits_store(self, model: Recommender) -> None:
        """Raise unless the recommender belongs to the store it would serve."""
        engine = open_engine(self.settings.database_url, create=False)  # opened by its owner
        try:
            with engine.connect() as conn:
                misfit = recommender_misfit(model, conn)
        finally:
            engine.dispose()
        if misfit is not None:
            raise ValueError(f"the recommender does not fit this store: {misfit}")

    def start_polling(self) -> None:
        """Reload every `settings.reload_poll_seconds` in a background thread (0: never)."""
        seconds = self.settings.reload_poll_seconds
        if seconds <= 0 or self._poller is not None:
            return

        def poll() -> None:
            while not self._stop.wait(seconds):
                try:
                    self.reload()
                except Exception as exc:  # the registry may be briefly unreachable
                    log.warning("model poll failed: %s", exc)

        self._poller = threading.Thread(target=poll, name="omni-model-poll", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
