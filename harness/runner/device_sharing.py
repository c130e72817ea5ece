"""How the work of one run shares a physical device: who may run beside whom, and how many workers live.

Three rules, each for a defect that only shows on a GPU (they hold on the CPU too, where they cost
nothing):

* **A cold first call runs alone on its device.** The protocol times the first forward pass of a
  fresh worker (the official script's only measurement). With two lanes on one GPU
  (``--devices cuda:0,cuda:0``) the other lane's accuracy pass would run kernels beside it, and the
  cold time would measure the neighbour. :class:`DeviceGate` is a readers-writer lock per device:
  accuracy work *shares* the device, a cold call has it *alone* (it waits for the running shards
  to finish and no new shard starts meanwhile).
* **Live workers per device are bounded.** Each worker on a GPU holds a CUDA context and its cached
  memory (about 2 GB with a model loaded); a zoo of 44 submissions left alive after the accuracy
  pass would hold about 100 GB of one GPU, and later submissions would fail with out-of-memory
  through no fault of their own. :class:`WorkerBudget` says which idle worker to close (the one
  used least recently) before another starts on a full device.
* **Timing goes by subgroups.** Interleaved rounds need every worker of a group alive at once, so
  a lane's submissions are timed in subgroups that fit the budget, each beside the baseline
  (:func:`timing_subgroups`).
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Sequence
from typing import TypeVar

Item = TypeVar("Item")

#: Workers alive at once on one device, unless the run says otherwise. Eight workers of a small SR
#: model hold well under 20 GB of a GPU; a lane's timing subgroup is this many minus the baseline.
DEFAULT_WORKERS_PER_DEVICE = 8


class DeviceGate:
    """A readers-writer lock per device key: many :meth:`sharing` holders or one :meth:`alone`.

    A waiting :meth:`alone` caller blocks new :meth:`sharing` callers, so a cold call is not
    starved by a stream of accuracy shards.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._sharing: dict[Hashable, int] = {}
        self._alone: set[Hashable] = set()
        self._waiting_alone: dict[Hashable, int] = {}

    @contextlib.contextmanager
    def sharing(self, device: Hashable) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(
                lambda: device not in self._alone and not self._waiting_alone.get(device)
            )
            self._sharing[device] = self._sharing.get(device, 0) + 1
        try:
            yield
        finally:
            with self._condition:
                self._sharing[device] -= 1
                self._condition.notify_all()

    @contextlib.contextmanager
    def alone(self, device: Hashable) -> Iterator[None]:
        with self._condition:
            self._waiting_alone[device] = self._waiting_alone.get(device, 0) + 1
            self._condition.wait_for(lambda: device not in self._alone and not self._sharing.get(device))
            self._waiting_alone[device] -= 1
            self._alone.add(device)
        try:
            yield
        finally:
            with self._condition:
                self._alone.discard(device)
                self._condition.notify_all()


class WorkerBudget:
    """Live workers per device, and which idle one to close when a device is full.

    Workers are named by any hashable key (the coordinator uses ``(submission, lane)``). A worker is
    *busy* while a request to it runs; only idle workers are closed, least recently used first.
    """

    def __init__(self, per_device: int = DEFAULT_WORKERS_PER_DEVICE) -> None:
        if per_device < 2:
            raise ValueError(
                f"per_device must be at least 2 (a submission and its baseline), not {per_device}"
            )
        self.per_device = per_device
        self._lock = threading.Lock()
        self._live: dict[Hashable, OrderedDict[Hashable, None]] = {}
        self._busy: set[Hashable] = set()

    def live(self, device: Hashable) -> list[Hashable]:
        """The workers alive on ``device``, least recently used first."""
        with self._lock:
            return list(self._live.get(device, ()))

    def to_close_before_start(self, device: Hashable) -> list[Hashable]:
        """The idle workers to close so that one more can start on ``device`` (least recent first).

        Fewer than needed when too many are busy: the device then holds more than its budget for a
        while, which is better than waiting on work that may itself wait for a new worker.
        """
        with self._lock:
            live = self._live.get(device, OrderedDict())
            excess = len(live) + 1 - self.per_device
            idle = [worker for worker in live if worker not in self._busy]
            return idle[: max(0, excess)]

    def started(self, device: Hashable, worker: Hashable) -> None:
        with self._lock:
            self._live.setdefault(device, OrderedDict())[worker] = None

    def closed(self, device: Hashable, worker: Hashable) -> None:
        with self._lock:
            self._live.get(device, OrderedDict()).pop(worker, None)
            self._busy.discard(worker)

    @contextlib.contextmanager
    def using(self, device: Hashable, worker: Hashable) -> Iterator[None]:
        """Marks ``worker`` busy for the duration, and most recently used."""
        with self._lock:
            self._busy.add(worker)
            live = self._live.setdefault(device, OrderedDict())
            if worker in live:
                live.move_to_end(worker)
        try:
            yield
        finally:
            with self._lock:
                self._busy.discard(worker)


def timing_subgroups(submissions: Sequence[Item], workers_per_device: int) -> list[list[Item]]:
    """A lane's submissions cut into groups timed one after another, each beside the baseline.

    Each group holds at most ``workers_per_device - 1`` submissions (the baseline's worker is the
    last one). Groups are as even as possible, so no submission is timed beside far fewer
    neighbours than another.
    """
    size = workers_per_device - 1
    if size < 1:
        raise ValueError(f"workers_per_device must be at least 2, not {workers_per_device}")
    if not submissions:
        return []
    count = -(-len(submissions) // size)
    base, extra = divmod(len(submissions), count)
    groups, start = [], 0
    for number in range(count):
        length = base + (1 if number < extra else 0)
        groups.append(list(submissions[start : start + length]))
        start += length
    return groups
