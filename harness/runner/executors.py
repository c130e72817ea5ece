"""The executors a run can use, in one table: what ``--executor`` offers and how each is made.

Each makes the run's lanes and starts its workers (:class:`harness.runner.lanes.Executor`): local
processes (the default), actors of a Ray cluster that each run such a process (both sandbox their
workers), or the coordinator's own process for tests and debugging (:mod:`harness.runner.in_process`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from harness.runner.in_process import InProcessExecutor
from harness.runner.lanes import Executor, LocalExecutor
from harness.runner.sandbox import OFF, Sandbox


@dataclass(frozen=True)
class ExecutorSettings:
    """What an executor is made from: the devices of the run and the options of its kind."""

    devices: Sequence[torch.device]  # one lane each (Ray: only their kind counts)
    sandbox: Sandbox = OFF
    threads: int = 1  # each worker's torch threads (a Ray CPU lane's bundle has as many CPUs)
    ray_address: str | None = None  # a Ray cluster to join (None: start one for this run)
    ray_workers: int | None = None  # Ray lanes (None: every GPU of the cluster, or 1 on CPUs)


@dataclass(frozen=True)
class ExecutorKind:
    """One row of the table: how to make the executor, what it is, whether it sandboxes its workers."""

    make: Callable[[ExecutorSettings], Executor]
    description: str
    sandboxes: bool


def _local(settings: ExecutorSettings) -> Executor:
    return LocalExecutor(settings.devices, sandbox=settings.sandbox)


def _ray(settings: ExecutorSettings) -> Executor:
    from harness.runner.ray_lanes import RayExecutor  # Ray is an optional extra

    return RayExecutor(
        address=settings.ray_address,
        workers=settings.ray_workers,
        device_type=settings.devices[0].type,
        threads=settings.threads,
        sandbox=settings.sandbox,
    )


def _in_process(settings: ExecutorSettings) -> Executor:
    return InProcessExecutor(settings.devices)


EXECUTORS: dict[str, ExecutorKind] = {
    "local": ExecutorKind(_local, "processes of this machine, one lane per device", sandboxes=True),
    "ray": ExecutorKind(_ray, "actors of a Ray cluster, each running a local worker", sandboxes=True),
    "inprocess": ExecutorKind(
        _in_process, "this process, for tests and debugging (no isolation, no time limit)", sandboxes=False
    ),
}


def make_executor(kind: str, settings: ExecutorSettings) -> Executor:
    """The executor ``kind`` names in :data:`EXECUTORS`, made from ``settings``."""
    return EXECUTORS[kind].make(settings)
