"""Timed-loop purity: how much of a performance round is anything but the timed forward passes.

Two submissions whose forward pass sleeps 50 ms (no CPU use) and then upsamples cheaply are timed on
the embedded samples in interleaved rounds. A round's wall time, measured by the coordinator from
its first timed call to its last reply, is compared with the sum of the spans the workers timed:
whatever lies between (requests, replies, input dithers, each output's copy into the worker's output
slot and the coordinator's copy out of it) is the harness's overhead. Target: every round within
1.10x (issue 18; ``benchmarks/output_commitment.py`` times the pieces). ``tests/test_workers.py``
checks the same property structurally (what calls the model, which threads run beside it); this
script gives the figure, which ``make test`` must not assert on a shared machine.

    .venv/bin/python benchmarks/timed_loop_purity.py --rounds 5 [--breakdown]

``--breakdown`` also says, per round, how many outputs the coordinator copied out of the workers'
output slots (every timed call's) and how long that took, and the ratio without it.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from harness.data import open_dataset
from harness.runner import RunConfig, TimingSettings, evaluate_run
from harness.runner.output_slot import OutputSlot
from harness.runner.performance_pass import LaneWorkers
from harness.submissions import resolve_submission

SLEEPY_MODEL = """
import time

import torch
from torch import nn


class Sleepy(nn.Module):
    def __init__(self, sleep_ms: float) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))
        self.sleep_ms = sleep_ms

    def forward(self, x):
        time.sleep(self.sleep_ms / 1000.0)
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest") * self.gain
"""


def sleepy_submission(folder: Path, name: str, sleep_ms: float) -> object:
    """A submission folder whose model sleeps ``sleep_ms`` per forward pass."""
    folder.mkdir(parents=True)
    (folder / "sleepy.py").write_text(SLEEPY_MODEL)
    (folder / "submission.yaml").write_text(
        f"name: {name}\nteam: benchmark\ndescription: sleeps {sleep_ms:g} ms per forward pass\n"
        f"model:\n  file: sleepy.py\n  class: Sleepy\n  kwargs:\n    sleep_ms: {sleep_ms}\n"
        "input_range: 1.0\nscale: 4\n"
    )
    return resolve_submission(str(folder))


class SlotCopies:
    """The coordinator's time copying timed outputs out of the workers' slots, by round
    (``--breakdown``).

    The round loop copies every timed call's output out of its worker's slot right after the reply,
    inside the round (the quantisation of the outputs the audit keeps waits until the round's wall
    clock has stopped); this wraps the slot's copy (the coordinator's side, in this process) to time
    it, and :class:`LaneWorkers` to know which round asked last.
    """

    def __init__(self) -> None:
        self.round: int | None = None
        self.ms: dict[int, list[float]] = defaultdict(list)

    def install(self) -> None:
        time_image, time_keeping_output = LaneWorkers.time_image, LaneWorkers.time_keeping_output
        copy = OutputSlot.copy

        def in_round(doing: str) -> None:
            match = re.match(r"timing round (\d+) ", doing)
            self.round = int(match.group(1)) if match else None  # None: the audit's own requests

        def timed(workers: LaneWorkers, name: str, request: object, doing: str) -> object:
            in_round(doing)
            return time_image(workers, name, request, doing)

        def timed_keeping(workers: LaneWorkers, name: str, request: object, doing: str) -> object:
            in_round(doing)
            return time_keeping_output(workers, name, request, doing)

        def copied(slot: OutputSlot, into: object) -> object:
            start = time.perf_counter()
            values = copy(slot, into)
            if self.round is not None:
                self.ms[self.round].append((time.perf_counter() - start) * 1000.0)
            return values

        LaneWorkers.time_image, LaneWorkers.time_keeping_output = timed, timed_keeping
        OutputSlot.copy = copied


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sleep-ms", type=float, default=50.0)
    parser.add_argument("--breakdown", action="store_true", help="time the copies out of the slots per round")
    args = parser.parse_args()
    copies = SlotCopies()
    if args.breakdown:
        copies.install()
    with tempfile.TemporaryDirectory(prefix="esr-purity-") as scratch:
        root = Path(scratch)
        submissions = [
            sleepy_submission(root / name, name, args.sleep_ms) for name in ("sleepy_a", "sleepy_b")
        ]
        config = RunConfig(
            protocol_name="ntire2022",
            protocol_version=1,
            border=4,
            device=torch.device("cpu"),
            timing=TimingSettings(warmup_seconds=0.0, warmup_max_passes=1, rounds=args.rounds),
            cache_dir=root / "cache",
            quiet=True,
        )
        run = evaluate_run(submissions, open_dataset("samples"), config)
    worst = worst_without = 0.0
    for number, entry in enumerate(run["timing"]["round_log"], start=1):
        ratio = entry["wall_ms"] / entry["timed_ms"]
        worst = max(worst, ratio)
        line = (
            f"round {number}: wall {entry['wall_ms']:.1f} ms, timed spans {entry['timed_ms']:.1f} ms, "
            f"wall / timed {ratio:.4f}"
        )
        if args.breakdown:
            copied = copies.ms.get(number, [])
            without = (entry["wall_ms"] - sum(copied)) / entry["timed_ms"]
            worst_without = max(worst_without, without)
            line += (
                f"; {len(copied)} copies out of the slots, {sum(copied):.1f} ms; without them {without:.4f}"
            )
        print(line)
    rounds = run["timing"]["round_log"]
    whole = sum(entry["wall_ms"] for entry in rounds) / sum(entry["timed_ms"] for entry in rounds)
    print(f"whole run wall / timed {whole:.4f}; largest round {worst:.4f} (target: at most 1.10)")
    if args.breakdown:
        print(f"largest wall / timed without the copies out of the slots {worst_without:.4f}")


if __name__ == "__main__":
    main()
