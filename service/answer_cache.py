"""Answers made for persons with events the batch answers have not seen, kept until their
next event.

A person active since the batch answers were made is folded in on request (their state
now, never their history). Asked again with nothing new of theirs arrived, the same
answer holds: it is kept here under a key that names what it was made from -- the served
version, the person's ids and their activity (event count, latest event time, latest
arrival), read from the store on every request. Any event of theirs, through any process,
changes that key, so a kept answer is never served after something new of theirs arrived
(nor after a merge of their ids, an erasure, or a reload). Bounded: the least recently
used answers leave first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from service.people import Person
from service.storage.activity import Seen

T = TypeVar("T")


def person_key(version: str | None, person: Person, seen: Seen) -> tuple[Hashable, ...]:
    """The key of an answer made for `person` by `version` after the activity `seen`."""
    return (version, person.person_id, person.customer_ids, person.anonymous_ids, seen)


class AnswerCache(Generic[T]):
    """At most `size` answers by key (0: none kept), least recently used out first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._answers: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_make(
        self, key: Hashable, make: Callable[[], T], fresh: Callable[[T], bool] | None = None
    ) -> T:
        """The answer kept under `key` (while `fresh` says it still holds), else `make()`,
        kept."""
        with self._lock:
            if key in self._answers:
                found = self._answers[key]
                if fresh is None or fresh(found):
                    self._answers.move_to_end(key)
                    return found
        made = make()
        if self.size > 0:
            with self._lock:
                self._answers[key] = made
                self._answers.move_to_end(key)
                while len(self._answers) > self.size:
                    self._answers.popitem(last=False)
        return made

    def __len__(self) -> int:
        return len(self._answers)
