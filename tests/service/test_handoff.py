"""The hand-off of a request's database work to a thread: its answer or its error comes
back, and a slow one holds the event loop for the grace at most."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from pathlib import Path

import pytest

from service.app import _grace_ms
from service.handoff import Handoff
from service.settings import Settings
from service.storage.engine import open_engine

WHO = contextvars.ContextVar("who", default="nobody")


def test_the_work_runs_in_another_thread_with_the_callers_context() -> None:
    handoff = Handoff(threads=2, grace_s=0.002)

    def work(n: int) -> tuple[int, str, bool]:
        return n * 2, WHO.get(), threading.current_thread() is threading.main_thread()

    async def ask() -> tuple[int, str, bool]:
        WHO.set("C1")
        return await handoff.run(work, 21)

    try:
        assert asyncio.run(ask()) == (42, "C1", False)
    finally:
        handoff.close()


@pytest.mark.parametrize("grace_s", [0.0, 0.002])
def test_the_works_error_is_raised_to_the_caller(grace_s: float) -> None:
    handoff = Handoff(threads=1, grace_s=grace_s)

    def broken() -> None:
        raise LookupError("no such customer")

    try:
        with pytest.raises(LookupError, match="no such customer"):
            asyncio.run(handoff.run(broken))
    finally:
        handoff.close()


def test_a_slow_work_holds_the_loop_no_longer_than_the_grace() -> None:
    """While one request's work takes 300 ms, the loop keeps ticking every few ms: the
    longest gap between ticks is the grace (20 ms here), nowhere near the work's length."""
    handoff = Handoff(threads=2, grace_s=0.02)
    gaps: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async def scene() -> str:
        stop = asyncio.Event()
        ticks = asyncio.create_task(ticker(stop))
        await asyncio.sleep(0.01)
        answer = await handoff.run(lambda: time.sleep(0.3) or "done")
        stop.set()
        await ticks
        return answer

    try:
        assert asyncio.run(scene()) == "done"
    finally:
        handoff.close()
    assert len(gaps) > 20  # the loop went on while the work ran
    assert max(gaps) < 0.2


def test_the_grace_is_taken_on_sqlite_and_not_on_postgresql_unless_set(tmp_path: Path) -> None:
    sqlite = open_engine(f"sqlite:///{tmp_path / 'omni.db'}")
    postgres = open_engine("postgresql+psycopg://nobody@127.0.0.1:9/none", create=False)
    try:
        assert _grace_ms(Settings(), sqlite) == 2.0
        assert _grace_ms(Settings(request_grace_ms=0), sqlite) == 0.0
        assert _grace_ms(Settings(), postgres) == 0.0
        assert _grace_ms(Settings(request_grace_ms=1.5), postgres) == 1.5
    finally:
        sqlite.dispose()
        postgres.dispose()
