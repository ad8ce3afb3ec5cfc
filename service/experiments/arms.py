"""What an arm serves with: the recommender of its registry alias beside the champion,
and the once-a-day record of the recommendation lists a person was shown."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Engine

from service.experiments.assignment import Assignment
from service.serving import LoadOutcome, ModelHolder, Served
from service.settings import Settings
from service.storage import exposures


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
    """Records each person's recommendation lists once per channel and day. The ids this
    process recorded lately are remembered so that the ledger is written once, not once a
    request (another process writing the same id is a no-op: conflict handling)."""

    def __init__(self, remember: int = 200_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()

    def record(
        self,
        engine: Engine,
        exposure: exposures.Exposure,
        now: datetime,
    ) -> None:
        with self._lock:
            if exposure.served_id in self._seen:
                self._seen.move_to_end(exposure.served_id)
                return
        with engine.begin() as conn:
            exposures.record(conn, [exposure], now)
        with self._lock:
            self._seen[exposure.served_id] = None
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
