"""Concurrent event requests of one process written in one transaction (a group commit).

Each commit has a cost of its own whatever it holds: on SQLite, writing every page the
transaction touched to the log and, now and then, copying the log into the database; on
PostgreSQL, the round trips and the wait for the log to reach the disk. A web shop sends
its events one at a time from many browsers at once, so while one request's events are
being written, others arrive: they wait for that write to end and then go to the
database together, in one transaction. With one request at a time nothing waits: the
request is written at once, alone.

Every request still gets its own answer, as if written alone: its events stored together
or not at all, its own count of duplicates, its own list of bad events
(`service.intake.accept_batches`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from service.intake import Records
from service.storage.writer import Applied

#: Writes a group: the batches in, one outcome per batch out (`accept_batches`).
WriteGroup = Callable[[Sequence[Records]], list[Applied | Exception]]
#: Runs a blocking call off the event loop (`service.handoff.Handoff.run`).
OffLoop = Callable[..., Awaitable[Any]]


class GroupCommit:
    """Batches of events handed in by requests on one event loop, written by `write` in
    groups of at most `max_events` events (always at least one batch) run by `off_loop`,
    `writers` groups at a time at most; the batches that arrive while every writer is
    busy form the next group. How many writers: `Settings.commit_writers` (one on SQLite,
    which lets one writer in at a time; on PostgreSQL the request threads, shared among
    the worker processes)."""

    def __init__(
        self,
        write: WriteGroup,
        off_loop: OffLoop,
        max_events: int,
        writers: int = 1,
        on_group: Callable[[int], None] = lambda _: None,
    ) -> None:
        self._write = write
        self._off_loop = off_loop
        self._max_events = max_events
        self._writers = writers
        self._waiting: list[tuple[Records, asyncio.Future[Applied]]] = []
        self._running: set[asyncio.Task[None]] = set()
        #: Told each group's size (batches in one commit), for the metrics.
        self._on_group = on_group

    async def submit(self, records: Records) -> Applied:
        """Store `records` with whatever other batches are waiting; what they did, or the
        error that stored none of them (`BatchRejected` for bad events)."""
        done: asyncio.Future[Applied] = asyncio.get_running_loop().create_future()
        self._waiting.append((records, done))
        if len(self._running) < self._writers:
            # Starts on the loop's next turn: requests read on this one join the group.
            self._running.add(asyncio.create_task(self._drain()))
        return await done

    async def _drain(self) -> None:
        try:
            while self._waiting:
                group = self._next_group()
                self._on_group(len(group))
                try:
                    outcomes = await self._off_loop(self._write, [batch for batch, _ in group])
                except Exception as error:  # the group's write broke outside any one batch
                    outcomes = [error] * len(group)
                except BaseException:  # cancelled (the service stops): so are its requests
                    for _, done in group:
                        done.cancel()
                    raise
                for (_, done), outcome in zip(group, outcomes, strict=True):
                    if done.done():  # its request went away
                        continue
                    if isinstance(outcome, Exception):
                        done.set_exception(outcome)
                    else:
                        done.set_result(outcome)
        finally:
            # At once, not in a done callback: a batch handed in after the last look at
            # the queue would find this writer still counted and wait for no one.
            task = asyncio.current_task()
            if task is not None:
                self._running.discard(task)

    def _next_group(self) -> list[tuple[Records, asyncio.Future[Applied]]]:
        taken, events = 0, 0
        for records, _ in self._waiting:
            if taken and events + len(records) > self._max_events:
                break
            taken += 1
            events += len(records)
        group, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return group
