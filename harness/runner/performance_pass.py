"""The performance pass: each submission timed on one lane, beside the baseline timed on that lane.

Submissions go to the lanes in turn (:func:`harness.runner.scheduling.assign_lanes`). Lanes on
distinct devices time at the same time; lanes that share a device (CPU lanes of one machine) one
after another, so a performance round never shares its device with other work of the run. A lane's
submissions are timed in subgroups small enough for the device's worker budget, one after another,
each beside the baseline (whose worker stays up throughout), in the rounds of
:mod:`harness.runner.timing_loop`. Then the worker of the lane that timed a submission counts its
complexity.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from harness.metrics import score_pixels, sr_pixels
from harness.runner import messages as msg
from harness.runner import scheduling
from harness.runner.audit import TimingAudit
from harness.runner.device_sharing import timing_subgroups
from harness.runner.dither import derive_seed
from harness.runner.entries import AccuracyState, Entry, SubgroupTimings
from harness.runner.fan_out import on_threads
from harness.runner.lanes import Lane
from harness.runner.output_slot import output_shape
from harness.runner.progress import Progress
from harness.runner.scorer import scoring_device
from harness.runner.timing_loop import Subgroup, time_rounds
from harness.runner.worker_pool import WorkerPool


class PerformancePass:
    """The performance pass of one run on ``lanes``; every round's log goes to ``round_log``."""

    def __init__(
        self,
        pool: WorkerPool,
        lanes: list[Lane],
        progress: Progress,
        *,
        baseline_name: str | None,
        seed: int,
        round_log: list[dict[str, Any]],
    ) -> None:
        self.pool = pool
        self.lanes = lanes
        self.progress = progress
        self.baseline_name = baseline_name
        self.seed = seed
        self.round_log = round_log

    def _assign_lanes(self, entries: list[Entry]) -> dict[int, list[Entry]]:
        """Each submission to a lane, in turn; the baseline to every lane that times something."""
        by_name = {entry.name: entry for entry in entries if entry.ok}
        groups = scheduling.assign_lanes(list(by_name), self.baseline_name, len(self.lanes))
        for index, names in groups.items():
            for name in names:
                by_name[name].lane = self.lanes[0 if name == self.baseline_name else index]
        return {index: [by_name[name] for name in names] for index, names in groups.items()}

    def run(self, entries: list[Entry]) -> None:
        """Time every entry that has not failed; lanes of distinct devices at the same time."""
        groups = self._assign_lanes(entries)
        # Workers no lane times any more (accuracy shards elsewhere) are closed first.
        for entry in entries:
            for index in [i for i in entry.workers if i not in groups or entry not in groups[i]]:
                entry.workers.pop(index).close()
        by_device: dict[str, list[Lane]] = defaultdict(list)
        for index in groups:
            by_device[self.lanes[index].exclusive].append(self.lanes[index])

        def time_lanes_of_one_device(lanes: list[Lane]) -> None:
            for lane in lanes:
                baseline = [entry for entry in groups[lane.index] if entry.name == self.baseline_name]
                others = [entry for entry in groups[lane.index] if entry.name != self.baseline_name]
                subgroups = timing_subgroups(others, self.pool.budget.per_device) or [[]]
                for number, subgroup in enumerate(subgroups):
                    self._time_lane(lane, subgroup + baseline, number)

        on_threads(time_lanes_of_one_device, list(by_device.values()))

    def _time_lane(self, lane: Lane, group: list[Entry], number: int = 0) -> None:
        """Subgroup ``number`` of ``lane``: interleaved rounds of its submissions and the baseline."""
        assert self.pool.split is not None
        key = (lane.index, number)
        for entry in group:
            entry.timings[key] = SubgroupTimings(lane, number)
            if entry.lane is lane and entry.timing_key is None:
                entry.timing_key = key
        by_name = {entry.name: entry for entry in group}
        subgroup = Subgroup(
            lane=lane.index,
            number=number,
            label=lane.label,
            names=list(by_name),
            baseline=self.baseline_name if self.baseline_name in by_name else None,
        )
        timing = self.pool.config.timing
        audit = TimingAudit(
            seed=derive_seed(self.seed, "audit", *key),
            images=len(self.pool.split),
            min_rounds=timing.rounds or timing.min_rounds,
            baseline=subgroup.baseline,
            score_db=self._psnr_on(lane),
            same_clock=lane.same_clock,
            reports_wall_time=timing.clock == "wall",
        )
        time_rounds(
            LaneWorkers(self.pool, lane, by_name),
            subgroup,
            {entry.name: entry.timings[key] for entry in group},
            timing,
            run_seed=self.seed,
            images=len(self.pool.split),
            on_round=self.round_log.append,
            progress=lambda name, doing, done, total: self.progress.show(
                name, lane.label, doing, done, total
            ),
            audit=audit,
        )
        for entry in group:
            if entry.ok:
                entry.timings[key].checks = audit.checks(entry.name, self._accuracy_psnr(entry))
        # Last: its forward pass at the counting size must not disturb the warm state timed above.
        for entry in group:
            if entry.lane is lane and entry.cached_record is None and entry.state.complexity is None:
                self._count_complexity(entry, lane)

    def _psnr_on(self, lane: Lane) -> Callable[[int, np.ndarray], float | None]:
        """The trusted scorer of an audited timed output: its RGB PSNR against the HR (None without)."""
        split = self.pool.split
        assert split is not None
        device = scoring_device(lane.device, lane.node)
        border = self.pool.config.border

        def psnr(index: int, pixels: np.ndarray) -> float | None:
            hr = split.hr(index)
            return score_pixels(pixels, hr, border=border, psnr_only=True, device=device)["psnr_rgb"]

        return psnr

    def _accuracy_psnr(self, entry: Entry) -> dict[int, float]:
        """The accuracy pass's RGB PSNR of each image of ``entry`` (this run's or its cached record's)."""
        split = self.pool.split
        assert split is not None
        state = entry.state if entry.cached_record is None else AccuracyState.from_record(entry.cached_record)
        index_of = {image.name: index for index, image in enumerate(split.images)}
        return {
            index_of[row["name"]]: row["psnr_rgb"]
            for row in state.per_image
            if row.get("psnr_rgb") is not None and row["name"] in index_of
        }

    def _count_complexity(self, entry: Entry, lane: Lane) -> None:
        """Params, FLOPs, activations and #conv, by the worker of the lane that times the entry."""
        request = msg.CountComplexity(self.pool.config.flop_counter)
        reply = self.pool.ask(entry, lane, request, "the complexity count")
        if isinstance(reply, msg.ComplexityCounted):
            with self.pool.lock:
                entry.state.complexity = reply.counts
                entry.checkpoint()


class LaneWorkers:
    """The round loop's view of one lane's workers (:class:`harness.runner.timing_loop.TimedWorkers`)."""

    def __init__(self, pool: WorkerPool, lane: Lane, by_name: dict[str, Entry]) -> None:
        self.pool = pool
        self.lane = lane
        self.by_name = by_name
        split = pool.split
        assert split is not None
        self.lr_sizes = split.lr_sizes()
        # Float32 buffers for kept outputs, by length, each touched once: on a virtual machine the
        # first touch of 10 MB took 28 ms, which must not fall between two timed calls.
        self.spare: dict[int, list[np.ndarray]] = defaultdict(list)
        # Where the outputs no audit keeps are copied to (and dropped): one buffer for the largest.
        self.scratch = np.zeros(0, np.float32)

    def _output_shape(self, name: str, image: int) -> tuple[int, int, int, int]:
        return output_shape(self.lr_sizes[image], self.by_name[name].submission.scale)

    def reserve_outputs(self, calls: Sequence[tuple[str, int]], kept: Sequence[tuple[str, int]]) -> None:
        lengths = [math.prod(self._output_shape(name, image)) for name, image in calls]
        if max(lengths, default=0) > self.scratch.size:
            self.scratch = np.zeros(max(lengths), np.float32)  # zeros: touched now, outside the round
        wanted = Counter(math.prod(self._output_shape(name, image)) for name, image in kept)
        for length, count in wanted.items():
            while len(self.spare[length]) < count:
                buffer = np.empty(length, np.float32)
                buffer.fill(0.0)  # touched now, outside the round
                self.spare[length].append(buffer)

    def prepare(self, name: str, doing: str) -> None:
        self.pool.ask(self.by_name[name], self.lane, msg.PrepareTiming(), doing)

    def renew(self, name: str) -> None:
        self.pool.renew(self.by_name[name], self.lane)

    def warm_up(self, name: str, request: msg.WarmUp, doing: str) -> int | None:
        reply = self.pool.ask(self.by_name[name], self.lane, request, doing)
        return reply.passes if isinstance(reply, msg.WarmedUp) else None

    def time_image(self, name: str, request: msg.TimeImage, doing: str) -> msg.ImageTimed | None:
        length = math.prod(self._output_shape(name, request.index))
        if length > self.scratch.size:  # a call no round reserved for (the audit's extra requests)
            self.scratch = np.zeros(length, np.float32)
        answered = self._time(name, request, self.scratch[:length], doing, keep=False)
        return answered[0] if answered is not None else None

    def time_keeping_output(
        self, name: str, request: msg.TimeImage, doing: str
    ) -> tuple[msg.ImageTimed, np.ndarray | str] | None:
        length = math.prod(self._output_shape(name, request.index))
        into = self.spare[length].pop() if self.spare[length] else np.empty(length, np.float32)
        return self._time(name, request, into, doing, keep=True)

    def _time(
        self, name: str, request: msg.TimeImage, into: np.ndarray, doing: str, keep: bool
    ) -> tuple[msg.ImageTimed, np.ndarray | str] | None:
        """The timed request, and its output copied out of the worker's slot into ``into`` as soon
        as the reply is read (every timed call's, whether kept or not: the worker sees no
        difference), or a one-line reason why it cannot stand for the call's output."""
        expected = self._output_shape(name, request.index)
        answered = self.pool.ask_copying_output(self.by_name[name], self.lane, request, into, doing, keep)
        if answered is None or not isinstance(answered[0], msg.ImageTimed):
            return None
        reply, kept = answered
        if not (isinstance(reply.shape, tuple) and reply.shape == expected):  # the worker's own words
            return reply, f"its timed reply says the output is {reply.shape!r}, expected {expected}"
        if kept is None or isinstance(kept, str):
            return reply, kept or "the worker's output slot could not be read"
        return reply, kept.reshape(expected)

    def output_pixels(self, name: str, values: np.ndarray) -> np.ndarray:
        try:
            return sr_pixels(torch.from_numpy(values), self.by_name[name].submission.input_range)
        finally:  # its buffer serves the next round's kept outputs
            self.spare[values.size].append(values.reshape(-1))

    def failed(self, name: str) -> bool:
        return not self.by_name[name].ok

    def cpu_seconds(self, name: str) -> float | None:
        worker = self.by_name[name].workers.get(self.lane.index)
        return worker.cpu_seconds() if worker is not None else None

    def restarts(self, name: str) -> int:
        return len(self.by_name[name].retries)
