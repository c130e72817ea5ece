"""Scale-out: the accuracy pass of four submissions on Set14 with 2 Ray workers against 1.

Each configuration starts a local Ray instance with N worker lanes and times the coordinator's
accuracy pass alone (workers started, models loaded, every image forwarded and scored), first with
one torch thread per worker, so that the comparison measures the executor rather than intra-op
threading, then with the default thread count, for the record. A first run (1 lane) is not
counted: on a fresh machine it pays for cold file caches. Then the configurations alternate
(1, 2, 1, 2, 1, 2), so that a disturbance falls on both, and the median of each is compared.

    ESR_MODEL_ZOO=../shared/model_zoo ESR_DATA=../shared/datasets \\
        .venv/bin/python benchmarks/ray_accuracy_speedup.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from harness.data import open_dataset
from harness.runner import RunConfig, worker_threads
from harness.runner.coordinator import Coordinator, Entry
from harness.runner.ray_lanes import RayExecutor
from harness.submissions import resolve_submission

SUBMISSIONS = ("clb_imdn", "imdn_baseline", "rfdn_baseline", "bicubic")


def accuracy_seconds(workers: int, threads: int | None, data: Path, zoo: Path) -> float:
    """Wall time of the accuracy pass of SUBMISSIONS with ``workers`` Ray lanes."""
    device = torch.device("cpu")
    threads = worker_threads(threads, device)
    dataset = open_dataset(str(data), scale=4)
    with tempfile.TemporaryDirectory(prefix="esr-speedup-") as scratch:
        config = RunConfig(
            protocol_name="ntire2022",
            protocol_version=1,
            border=4,
            device=device,
            cache_dir=Path(scratch) / "cache",
            model_zoo=zoo,
            quiet=True,
            threads=threads,
            log_dir=Path(scratch) / "logs",
        )
        entries = [Entry(resolve_submission(name), "submission", None) for name in SUBMISSIONS]
        executor = RayExecutor(address=None, workers=workers, device_type="cpu", threads=threads)
        coordinator = Coordinator(dataset, config, entries, None, executor, threads)
        try:
            coordinator.prepare()
            started = time.perf_counter()
            coordinator.accuracy_pass()
            elapsed = time.perf_counter() - started
            failed = [entry.name for entry in entries if not entry.ok]
            if failed:
                raise SystemExit(f"failed: {failed}")
        finally:
            coordinator.close()
            executor.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("ESR_DATA", "../shared/datasets")) / "Set14"
    )
    parser.add_argument(
        "--model-zoo", type=Path, default=Path(os.environ.get("ESR_MODEL_ZOO", "../shared/model_zoo"))
    )
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    for label, threads in (("one torch thread per worker", 1), (f"torch's default threads ({cores})", cores)):
        accuracy_seconds(1, threads, args.data, args.model_zoo)  # not counted: cold caches
        times: dict[int, list[float]] = {1: [], 2: []}
        for workers in (1, 2) * 3:
            times[workers].append(accuracy_seconds(workers, threads, args.data, args.model_zoo))
        one, two = statistics.median(times[1]), statistics.median(times[2])
        runs = "; ".join(
            f"{count} worker{'s' * (count > 1)} " + ", ".join(f"{t:.1f}" for t in times[count])
            for count in (1, 2)
        )
        print(
            f"{label}: median 1 worker {one:.1f} s, 2 workers {two:.1f} s, ratio {two / one:.2f} (runs: {runs})",
            flush=True,
        )


if __name__ == "__main__":
    main()
