"""A request's database work, off the event loop, for the price of one thread hand-off.

Each route that reads or writes the database runs that work in a small pool of threads,
so that a slow query (a write waiting for a lock, a cold page) never holds up the other
requests. The pool's threads and the event loop share the interpreter lock: while a
request's thread runs and the loop has other requests to read, every database call that
lets go of the lock (SQLite steps once per row) hands it to the loop and waits to get it
back: on SQLite a profile cost 2.19 ms of server CPU and 38 context switches this way,
1.51 ms and 6 with the grace below (`OMNI_REQUEST_GRACE_MS=0` against the default in
benchmarks/online_load.py; README, "The online layer under load").

So the loop first waits a moment (`grace`, 2 ms by default) for the thread to finish:
the common request, done in well under that, runs with the lock to itself; a request
still running after it is awaited as usual, and the loop goes on with the others. A slow
query holds the loop for the grace at most, never for its own length. On PostgreSQL the
default grace is none: its network round trips let go of the lock long enough, and
waiting through them would hold the loop while other requests could run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Handoff:
    """`threads` threads for requests' database work; the loop waits `grace_s` seconds
    for each before awaiting it."""

    def __init__(self, threads: int, grace_s: float) -> None:
        self.grace_s = grace_s
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="omni-request"
        )

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` in a thread of the pool (with the caller's context variables);
        its result, or its exception raised here."""
        future = self._pool.submit(contextvars.copy_context().run, work, *args)
        if self.grace_s > 0:
            concurrent.futures.wait((future,), timeout=self.grace_s)
        if future.done():
            return future.result()
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Finish the work handed off and stop the threads."""
        self._pool.shutdown(wait=True)
