"""What shapes a run besides the submissions and the data: the run's options (timing: harness.protocols)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness.protocols import TimingSettings
from harness.runner.device_sharing import DEFAULT_WORKERS_PER_DEVICE
from harness.runner.sandbox import OFF, Sandbox


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
    workers_per_device: int = DEFAULT_WORKERS_PER_DEVICE  # live workers on one device at once
    # Deployment cells (harness.cells) measured beside the protocol's fp32 eager figure, never ranked.
    cells: tuple[str, ...] = ("fp32",)
    # Whether workers run under bwrap (harness.runner.sandbox.decide: probed once, by the command).
    sandbox: Sandbox = OFF


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
