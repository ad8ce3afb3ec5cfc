"""Progress of long batch steps, reported to whoever is listening (the CLI's bars).

A step is started with its total (rows, customers, models) and advanced as work is
done. The listener is ambient: a command sets it once (`reporting`) and every step run
inside, however deep (reading the event log, fitting each model, scoring each block),
reports to it through `current()`; without a listener, reports go nowhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class Reporter(Protocol):
    """Receives progress: a step with its total, then how much more is done."""

    def start(self, description: str, total: int) -> None: ...

    def advance(self, done: int) -> None: ...


class Silent:
    """A reporter that ignores everything."""

    def start(self, description: str, total: int) -> None:
        pass

    def advance(self, done: int) -> None:
        pass


_LISTENER: ContextVar[Reporter | None] = ContextVar("omni_progress", default=None)


def current() -> Reporter:
    """The reporter steps report to now (silent when nobody listens)."""
    return _LISTENER.get() or Silent()


def listening() -> bool:
    """Whether anyone listens (a step may skip counting its total when nobody does)."""
    return _LISTENER.get() is not None


@contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """Within the block, every step reports to `reporter`."""
    token = _LISTENER.set(reporter)
    try:
        yield reporter
    finally:
        _LISTENER.reset(token)
