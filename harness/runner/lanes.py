"""Where workers run: lanes, one device each, provided by an executor (local processes or Ray).

A *lane* is one device on one machine: a GPU, or a machine's CPU. The coordinator spreads the
untimed accuracy work of a run over every lane, and times each lane's submissions beside a baseline
of their own on that lane, so every runtime ratio compares two measurements of one device. Lanes that
share a physical device (two CPU lanes of one machine) never time at the same moment.

An executor makes lanes and starts workers on them. :class:`LocalExecutor` runs each worker as a
process of this machine (:mod:`harness.runner.process`), one lane per ``--devices`` entry; the Ray
executor (:mod:`harness.runner.ray_lanes`) runs them as actors of a Ray cluster. Both hand back a
:class:`WorkerHandle` that speaks the requests of :mod:`harness.runner.messages`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from harness.runner import messages as msg
from harness.runner.output_slot import slot_values
from harness.runner.process import WorkerProcess
from harness.runner.sandbox import OFF, Sandbox
from harness.runner.sandboxed import SandboxedWorkerProcess
from harness.runner.shared_data import SharedSplit, copy_to_shared_memory
from harness.timing import device_fingerprint, nvml_snapshot


@dataclass(frozen=True)
class Lane:
    """One device workers run on: ``device`` is what a worker there is told (``cuda:1``, ``cpu``).

    ``label`` names it for people (``cuda:1``, ``ray lane 2 (10.0.0.7 GPU 3)``); lanes with the same
    ``exclusive`` key are one physical device and never time at the same moment. ``same_clock``: the
    lane is on the coordinator's host, whose monotonic clock its workers read too.
    """

    index: int
    label: str
    device: str
    exclusive: str
    node: str
    same_clock: bool = True


class WorkerHandle(Protocol):
    """A started worker: requests, and what was retried on the way (Ray restarts lost workers)."""

    retries: list[str]

    def request(
        self,
        request: msg.Request,
        on_progress: Callable[[msg.ImageOutput], Any] | None = None,
        doing: str = "",
    ) -> msg.Reply: ...

    def request_copying_output(
        self, request: msg.TimeImage, into: np.ndarray, doing: str = "", keep: bool = True
    ) -> tuple[msg.Reply, np.ndarray | str | None]:
        """A timed request: the reply, and ``into`` (a flat float32 array) filled with the first
        values of the worker's output slot before any other request reaches the worker (a reason
        when the slot cannot give them; None when the reply is not ImageTimed). Every timed
        request is sent this way, whether the caller keeps the values or not (``keep``: a remote
        handle copies them either way, and sends them back only when kept); the worker is sent
        exactly what :meth:`request` sends it."""
        ...

    def kill(self) -> None: ...

    def cpu_seconds(self) -> float | None:
        """CPU time the worker's processes used so far, read by the kernel (None where it cannot be
        read: a worker in the coordinator's process)."""
        ...

    def close(self) -> None: ...


class Executor(Protocol):
    """Makes lanes and starts workers on them."""

    lanes: Sequence[Lane]

    def start(self, lane: Lane, name: str, load: msg.Load, log_path: Path, budget_s: float) -> WorkerHandle:
        """A worker for submission ``name`` on ``lane``, its model being loaded by ``load`` (the first
        reply, Loaded or Failed, comes from ``handle.request`` of that same ``load``)."""
        ...

    def fingerprint(self, lane: Lane, threads: int) -> dict[str, Any]: ...

    def snapshot(self, lane: Lane) -> dict[str, Any] | None:
        """The lane's GPU clocks and temperature now (None where they cannot be read from here)."""
        ...

    def close(self) -> None: ...


def local_lanes(devices: Sequence[torch.device]) -> list[Lane]:
    """One lane per device of this machine; CPU lanes share the one CPU (their ``exclusive``)."""
    return [
        Lane(
            index,
            str(device),
            str(device),
            exclusive=str(device) if device.type == "cuda" else "cpu",
            node="local",
        )
        for index, device in enumerate(devices)
    ]


def output_slot_values(load: msg.Load) -> int:
    """The size of a worker's output slot: the largest output of its split, in float32 values."""
    return slot_values(load.split.lr_sizes(), load.submission.scale)


class LocalExecutor:
    """One lane per device of this machine; each worker is a process forked for it, or, with an
    enabled ``sandbox``, a fresh interpreter under ``bwrap`` that reads the run's images from a
    copy in shared memory (made at the first start, removed by :meth:`close`)."""

    def __init__(self, devices: Sequence[torch.device], sandbox: Sandbox = OFF) -> None:
        self.sandbox = sandbox
        self._shared: dict[Path, SharedSplit] = {}  # by the folder of the decoded images
        self.lanes = local_lanes(devices)

    def start(self, lane: Lane, name: str, load: msg.Load, log_path: Path, budget_s: float) -> WorkerHandle:
        values = output_slot_values(load)
        if not self.sandbox.enabled:
            return WorkerProcess(name, log_path, budget_s, values)
        assert self.sandbox.bwrap is not None
        if load.split.folder not in self._shared:
            self._shared[load.split.folder] = copy_to_shared_memory(load.split)
        split = self._shared[load.split.folder]
        return SandboxedWorkerProcess(
            name, log_path, budget_s, bwrap=self.sandbox.bwrap, load=load, split=split, slot_values=values
        )

    def fingerprint(self, lane: Lane, threads: int) -> dict[str, Any]:
        # The workers' thread count, not this process's, is what decides their runtimes.
        return {**device_fingerprint(lane.device), "num_threads": threads}

    def snapshot(self, lane: Lane) -> dict[str, Any] | None:
        return nvml_snapshot(lane.device)

    def close(self) -> None:
        """Remove the images copied to shared memory; each worker is closed by the coordinator."""
        for split in self._shared.values():
            shutil.rmtree(split.folder, ignore_errors=True)
        self._shared.clear()
