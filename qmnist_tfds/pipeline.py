"""Bounded pipelines on threads: work submitted a fixed number of items ahead."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")


def ahead(items: Iterable[T], count: int) -> Iterator[T]:
    """The items of `items` in order, each drawn `count` items before it is yielded.

    Where drawing an item submits work to threads (a future, or a list of
    them), `count` items' work runs while the caller handles the item before,
    and no more: memory stays `count + 1` items. Items drawn and not yet
    yielded when the caller stops early have their futures cancelled.
    """
    iterator = iter(items)
    queue = deque(itertools.islice(iterator, count))
    try:
        for item in iterator:
            queue.append(item)
            yield queue.popleft()
        while queue:
            yield queue.popleft()
    finally:
        for item in queue:
            for future in item if isinstance(item, list) else [item]:
                if isinstance(future, Future):
                    future.cancel()
