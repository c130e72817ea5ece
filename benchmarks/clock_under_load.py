"""Wall clock or CPU clock: how much of a CPU runtime ratio's noise under load is the load itself.

On a shared CPU a single-threaded forward pass is preempted whenever more runnable threads than
cores exist; its wall time then measures the machine's queue as much as the model. The thread's CPU
time (``time.thread_time``) leaves out the time it waited. This script times the known-cost pair
(``KnownCost(100)`` and ``KnownCost(102)``, one torch thread, in this process), alternating which
goes first, with both clocks around every call, while ``benchmarks/load.py`` runs (3 s of a one-core
busy loop, 3 s of sleep), and prints for each clock the paired ratio, the spread of per-pair ratios
and of per-round ratios (the median of ``--per-round`` pairs, as the harness's rounds take the
median over images), and the rounds a 2% difference would need to be decided.

    .venv/bin/python benchmarks/clock_under_load.py --pairs 120
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from harness.models.known_cost import KnownCost

HERE = Path(__file__).resolve().parent
CLOCKS = {"wall (perf_counter)": time.perf_counter, "cpu (thread_time)": time.thread_time}


def _time(model: KnownCost, x: torch.Tensor) -> dict[str, float]:
    """Both clocks around one forward pass, in the same order every call."""
    with torch.inference_mode():
        start = {name: clock() for name, clock in CLOCKS.items()}
        model(x)
        return {name: clock() - start[name] for name, clock in CLOCKS.items()}


def _summary(ratios: list[float], per_round: int) -> str:
    logs = [math.log(r) for r in ratios]
    rounds = [
        statistics.median(ratios[i : i + per_round]) for i in range(0, len(ratios) - per_round + 1, per_round)
    ]
    round_sd = statistics.stdev(math.log(r) for r in rounds)
    # Rounds for a 95% interval (z 1.96) half as wide as log(1.02), at this per-round spread.
    needed = math.ceil((1.96 * round_sd / math.log(1.02)) ** 2)
    return (
        f"ratio {math.exp(statistics.fmean(logs)):.4f}, per-pair log sd {statistics.stdev(logs):.3f}, "
        f"per-round log sd {round_sd:.3f} ({len(rounds)} rounds), rounds to resolve 2%: ~{needed}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=120, help="paired calls (default 120)")
    parser.add_argument("--per-round", type=int, default=6, help="pairs per round (default 6)")
    parser.add_argument("--side", type=int, default=128, help="input side, LR pixels (default 128)")
    parser.add_argument("--no-load", action="store_true", help="run without the load generator")
    args = parser.parse_args()
    torch.set_num_threads(1)
    reference, slower = KnownCost(100), KnownCost(102)
    x = torch.rand(1, 3, args.side, args.side, generator=torch.Generator().manual_seed(0))
    for model in (reference, slower, reference, slower):
        _time(model, x)  # warm-up
    load = None
    if not args.no_load:
        load = subprocess.Popen([sys.executable, str(HERE / "load.py"), "--seconds", "3600"])
    ratios: dict[str, list[float]] = {name: [] for name in CLOCKS}
    try:
        for pair in range(args.pairs):
            if pair % 2 == 0:
                mine, theirs = _time(slower, x), _time(reference, x)
            else:
                theirs, mine = _time(reference, x), _time(slower, x)
            for name in CLOCKS:
                ratios[name].append(mine[name] / theirs[name])
    finally:
        if load is not None:
            load.terminate()
            load.wait()
    print(
        f"KnownCost(102) / KnownCost(100), {args.pairs} pairs, {'no load' if args.no_load else 'under load'}:"
    )
    for name, values in ratios.items():
        print(f"{name}: {_summary(values, args.per_round)}")


if __name__ == "__main__":
    main()
