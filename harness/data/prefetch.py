"""Decode ahead on a few threads so that a fast GPU never waits for PNG decoding.

Pillow's decoders and NumPy release the GIL, so threads decode in parallel. At most ``depth``
items are in flight or waiting (a bounded queue: memory stays small with 2K images), and
results come out in input order whatever order the threads finish in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def prefetch(items: Iterable[T], load: Callable[[T], R], *, workers: int = 2, depth: int = 4) -> Iterator[R]:
    """Yield ``load(item)`` for each item, in order, computed ahead by ``workers`` threads.

    An exception from ``load`` is raised when its item's turn comes. Stopping early (break,
    close) cancels what has not started and waits for what has.
    """
    if workers < 1 or depth < 1:
        raise ValueError("prefetch needs workers >= 1 and depth >= 1")
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="esr-decode") as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(load, item))
                if len(pending) >= depth:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
