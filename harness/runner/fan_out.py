"""Work spread over threads, one per lane (or per device), with the first error raised in the caller."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")


def on_threads(work: Callable[[Item], None], items: Sequence[Item]) -> None:
    """``work(item)`` for every item, each on a thread of its own (one item: in this thread).

    Every thread is waited for; then the first error any of them raised is raised here.
    """
    if len(items) <= 1:
        for item in items:
            work(item)
        return
    errors: list[BaseException] = []

    def guarded(item: Item) -> None:
        try:
            work(item)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(item,), daemon=True) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
