"""What shapes a run besides the submissions and the data: timing settings and the run's options."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class TimingSettings:
    """How latencies are taken; the protocol fixes the defaults, the command line may change some.

    ``rounds`` is a fixed count of timing rounds, or None for rounds until decided
    (:mod:`harness.timing.sequential`): at least ``min_rounds``, at most ``max_rounds`` and, once
    ``max_timing_seconds`` of one lane's timing have passed, no new round. ``ratio_limit`` is the
    runtime ratio each submission's verdict is taken against (None: stop on ``resolution`` or cap).
    """

    warmup_seconds: float = 1.0
    warmup_min_passes: int = 1
    warmup_max_passes: int = 50
    repeats: int = 1
    cudnn_benchmark: bool = False
    rounds: int | None = 5
    min_rounds: int = 5
    max_rounds: int = 30
    max_timing_seconds: float | None = None
    ratio_limit: float | None = None
    resolution: float = 0.01
    timeout_seconds: float = 3600.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunConfig:
    """Everything that shapes a run besides the submissions and the data."""

    protocol_name: str
    protocol_version: int
    border: int
    device: torch.device
    flop_counter: str = "ntire2022"
    timing: TimingSettings = field(default_factory=TimingSettings)
    cache_dir: Path = Path("results/runs/cache")
    force: bool = False
    save_images_dir: Path | None = None
    log_dir: Path | None = None
    weights: Path | None = None
    model_zoo: Path | None = None
    weights_cache_dir: Path | None = None
    trust_weights: bool = False
    quiet: bool = False
    threads: int | None = None
    seed: int | None = None


def worker_threads(requested: int | None, device: torch.device) -> int:
    """The torch threads of each worker: as asked, else all cores on a GPU run and half on a CPU one.

    On the CPU a forward pass is split over threads that wait for each other at every operation, so
    other work taking one core stalls them all: a measurement that uses every core of a shared
    machine measures the machine's load as much as the model. Leaving half the cores free makes CPU
    runtimes, and above all their ratios, hold while other work comes and goes.
    """
    if requested is not None:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores if device.type == "cuda" else max(1, cores // 2)
