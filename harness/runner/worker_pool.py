"""The run's workers: started on first use, one per submission and lane, within each device's budget.

Every request goes through :meth:`WorkerPool.ask`: it shares the lane's device with the run's other
work (or has it alone, for the cold first call), keeps the device's count of live workers within
its budget, and turns a lost worker or a failed reply into the entry's failure, so the coordinator
sees either a reply or a failed entry, never an exception of a submission.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harness.runner import messages as msg
from harness.runner.device_sharing import DeviceGate, WorkerBudget
from harness.runner.entries import Entry
from harness.runner.lanes import Executor, Lane, WorkerHandle
from harness.runner.process import WorkerLost
from harness.runner.settings import RunConfig
from harness.runner.shared_data import SharedSplit


class WorkerPool:
    """The workers of ``executor`` for one run; ``lock`` guards the entries' failures and states."""

    def __init__(self, executor: Executor, config: RunConfig, threads: int, lock: threading.Lock) -> None:
        self.executor = executor
        self.config = config
        self.threads = threads
        self.lock = lock
        self.split: SharedSplit | None = None  # set once the data is shared, before any worker starts
        self.logs: Path | None = config.log_dir
        self.start_seconds: list[float] = []  # how long starting a worker and loading took, so far
        self.gate = DeviceGate()  # the cold first call alone on its device
        self.budget = WorkerBudget(config.workers_per_device)

    def fail(self, entry: Entry, reason: str) -> None:
        """Mark ``entry`` failed (its first reason stands) and kill its workers."""
        with self.lock:
            if entry.failure is None:
                entry.failure = reason
        for worker in entry.workers.values():
            worker.kill()

    @contextlib.contextmanager
    def _on_device(self, entry: Entry, lane: Lane, *, alone: bool) -> Iterator[None]:
        """Within the device's worker budget, sharing it (or ``alone``); a lost worker fails the entry."""
        on_device = self.gate.alone(lane.exclusive) if alone else self.gate.sharing(lane.exclusive)
        try:
            with self.budget.using(lane.exclusive, (entry, lane.index)), on_device:
                yield
        except WorkerLost as lost:
            self.fail(entry, str(lost))

    def ask(
        self,
        entry: Entry,
        lane: Lane,
        request: msg.Request,
        doing: str,
        on_progress: Callable[[msg.ImageOutput], Any] | None = None,
        *,
        alone: bool = False,
    ) -> msg.Reply | None:
        """A request to the entry's worker on ``lane``; a failure marks the entry failed (None).

        The request shares the lane's device with the run's other work, or, ``alone``, waits until
        no other request runs there and keeps new ones out (the cold first call).
        """
        if not entry.ok:
            return None
        reply: msg.Reply | None = None
        with self._on_device(entry, lane, alone=alone):
            reply = self._worker(entry, lane).request(request, on_progress=on_progress, doing=doing)
        if isinstance(reply, msg.Failed):
            self.fail(entry, reply.reason)
            return None
        return reply

    def ask_copying_output(
        self, entry: Entry, lane: Lane, request: msg.TimeImage, into: np.ndarray, doing: str, keep: bool
    ) -> tuple[msg.Reply, np.ndarray | str | None] | None:
        """A timed request whose output is copied out of the worker's slot into ``into`` right after
        its reply (:meth:`WorkerHandle.request_copying_output`; ``keep``: whether the caller keeps
        it), as :meth:`ask` otherwise: None when it failed."""
        if not entry.ok:
            return None
        answered = None
        with self._on_device(entry, lane, alone=False):
            answered = self._worker(entry, lane).request_copying_output(request, into, doing, keep)
        if answered is not None and isinstance(answered[0], msg.Failed):
            self.fail(entry, answered[0].reason)
            return None
        return answered

    def load(self, entry: Entry, lane: Lane) -> None:
        """Start and load the entry's worker on ``lane`` (sharing the device), unless it is there."""
        if not entry.ok:
            return
        with self._on_device(entry, lane, alone=False):
            self._worker(entry, lane)

    def renew(self, entry: Entry, lane: Lane) -> None:
        """End the entry's worker on ``lane`` and start and load a fresh one in its place.

        Not a restart (nothing was lost, no retry is counted): ``--fresh-workers`` asks for it so
        that each timing round sees another process. A fresh worker that fails to load fails the
        entry, as any load does.
        """
        worker = entry.workers.pop(lane.index, None)
        if worker is not None:
            worker.close()
            self.budget.closed(lane.exclusive, (entry, lane.index))
        self.load(entry, lane)

    def _worker(self, entry: Entry, lane: Lane) -> WorkerHandle:
        """The entry's worker on ``lane``, started and loaded on first use."""
        worker = entry.workers.get(lane.index)
        if worker is not None:
            return worker
        assert self.split is not None and self.logs is not None
        config = self.config
        load = msg.Load(
            submission=entry.submission,
            weights=entry.weights,
            trust_weights=config.trust_weights,
            device=lane.device,
            settings=msg.TorchSettings(cudnn_benchmark=config.timing.cudnn_benchmark, threads=self.threads),
            split=self.split.inputs_only(),  # LR only: the ground truth stays with the scorer
            cell=entry.cell,
            clock=config.timing.clock,
        )
        in_cell = "" if entry.cell == "fp32" else f".{entry.cell}"
        log = self.logs / f"{entry.name.replace(':', '_')}{in_cell}.lane{lane.index}.log"
        self._make_room(lane)
        started = time.perf_counter()
        worker = self.executor.start(lane, entry.name, load, log, config.timing.timeout_seconds)
        entry.workers[lane.index] = worker
        self.budget.started(lane.exclusive, (entry, lane.index))
        reply = worker.request(load, doing=f"loading on {lane.label}")
        with self.lock:
            self.start_seconds.append(time.perf_counter() - started)
        if isinstance(reply, msg.Failed):
            raise WorkerLost(reply.reason)
        assert isinstance(reply, msg.Loaded)
        entry.loaded = entry.loaded or reply
        return worker

    def _make_room(self, lane: Lane) -> None:
        """Close the idle workers that one more would push over the device's budget (reloaded later
        if still needed: a model load is cheap beside a device out of memory)."""
        for entry, index in self.budget.to_close_before_start(lane.exclusive):
            worker = entry.workers.pop(index, None)
            if worker is not None:
                worker.close()
            self.budget.closed(lane.exclusive, (entry, index))

    def close_workers(self, entry: Entry, lanes: list[Lane]) -> None:
        """Stop every worker of ``entry`` (``lanes``: the run's, by index)."""
        for index, worker in entry.workers.items():
            worker.close()
            self.budget.closed(lanes[index].exclusive, (entry, index))
        entry.workers.clear()
