"""What an arm serves with: the recommender of its registry alias beside the champion,
and the once-a-day record of the recommendation lists a person was shown."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import Engine

from service.experiments.assignment import Assignment
from service.serving import LoadOutcome, ModelHolder, Served
from service.settings import Settings
from service.storage import exposures

log = logging.getLogger("omni.exposures")


class ArmModels:
    """One model holder per registry alias an experiment arm names (the served alias
    excepted): loaded at start and on reload, like the champion."""

    def __init__(self, settings: Settings) -> None:
        aliases = sorted(
            {
                arm.recommender_alias
                for experiment in settings.experiments
                for arm in experiment.arms
                if arm.recommender_alias and arm.recommender_alias != settings.model_alias
            }
        )
        self.holders = {
            alias: ModelHolder(settings.model_copy(update={"model_alias": alias}))
            for alias in aliases
        }

    def reload(self) -> list[LoadOutcome]:
        outcomes = []
        for alias, holder in self.holders.items():
            for outcome in holder.reload():
                outcomes.append(replace(outcome, model=f"{outcome.model}@{alias}"))
        return outcomes

    def served_for(self, main: Served, assignment: Assignment | None) -> Served:
        """The snapshot the person's arm answers with: the champion's, with the arm's
        recommender in place when the arm names another alias and it is loaded (until it
        is, the champion answers, and the answer's model version says so)."""
        alias = assignment.recommender_alias if assignment is not None else None
        holder = self.holders.get(alias) if alias is not None else None
        if holder is None:
            return main
        arm = holder.current
        if arm.recommender is None:
            return main
        return replace(
            main,
            recommender=arm.recommender,
            recommender_version=f"{arm.recommender_version}@{alias}",
            recommender_read_at=arm.recommender_read_at,
            warm=arm.warm,
            history_by_item=arm.history_by_item,
            item_norms=arm.item_norms,
            neighbours=arm.neighbours,
        )

    def stop(self) -> None:
        for holder in self.holders.values():
            holder.stop()


class ListLog:
    """Records each person's recommendation lists once per channel and day, off the
    request path: a request adds the exposure to a queue and answers; a background thread
    writes the queue in one transaction every `flush_seconds` (a read never waits for the
    database's write lock). Ids this process recorded lately are remembered so that the
    ledger is written once a day per person, not once a request (another process writing
    the same id is a no-op: conflict handling). What is queued when the service stops is
    written then; a write that fails is tried again at the next flush."""

    def __init__(
        self,
        engine: Engine,
        flush_seconds: float = 1.0,
        remember: int = 200_000,
        most_queued: int = 100_000,
    ) -> None:
        self._engine = engine
        self._every = flush_seconds
        self._remember = remember
        self._most = most_queued
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._queued: dict[str, exposures.Exposure] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None

    def record(self, exposure: exposures.Exposure) -> None:
        """Queue the exposure (with its `served_at`) unless it was recorded lately."""
        with self._lock:
            if exposure.served_id in self._seen:
                self._seen.move_to_end(exposure.served_id)
                return
            if exposure.served_id in self._queued:
                return
            if len(self._queued) >= self._most:
                log.warning("exposures queue full (%s): a list was not recorded", self._most)
                return
            self._queued[exposure.served_id] = exposure
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._run, name="omni-exposures", daemon=True
                )
                self._writer.start()

    def flush(self) -> int:
        """Write what is queued now; how many were new to the ledger."""
        with self._lock:
            batch, self._queued = self._queued, {}
        if not batch:
            return 0
        try:
            with self._engine.begin() as conn:
                written = exposures.record(conn, batch.values(), datetime.now(UTC))
        except Exception as exc:  # the store may be busy or away: keep them for next time
            log.warning("writing %s exposures failed (tried again): %s", len(batch), exc)
            with self._lock:
                self._queued = {**batch, **self._queued}
            return 0
        with self._lock:
            for served_id in batch:
                self._seen[served_id] = None
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        return written

    def stop(self) -> None:
        """Stop the writer and write what is left."""
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=30)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.flush()
