"""The performance pass of one lane's subgroup: interleaved rounds, until decided or the count is reached.

The loop speaks to the subgroup's workers only through :class:`TimedWorkers` (copy the inputs to
the device, warm up, time one image), so the coordinator drives it with real workers and the tests
with an in-process fake of deterministic latencies.

Each round, every open submission warms up, then they take turns image by image
(:func:`harness.timing.rounds.turn_order`) in the round's shuffled order. The orders of every
possible round are drawn at once, so a seed gives the same order to round k whether the run stops
early or not; a round skips the names that stopped. With ``rounds`` unset (``--rounds auto``) the
loop looks after every round: a submission whose runtime verdict is decided (or whose interval is
narrow enough, or which hit the cap) stops being timed, while the baseline is timed as long as any
submission beside it is open. Every call's input is dithered from a seed derived from the round's
(recorded in its log), the submission and the image; a round measured again after a worker was
restarted gets new seeds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from harness.protocols import TimingSettings
from harness.runner import messages as msg
from harness.runner.audit import REPEATED_CALLS, TimingAudit
from harness.runner.dither import derive_seed
from harness.runner.entries import SubgroupTimings
from harness.timing.rounds import paired_round_ratios, round_orders, turn_order
from harness.timing.sequential import SequentialPlan, look

# A lane's subgroup n > 0 gets its round orders from the run's seed offset by n times this prime.
_SUBGROUP_SEED_STRIDE = 1_000_003


class TimedWorkers(Protocol):
    """The workers of one subgroup, by submission name, as the round loop speaks to them.

    A request that fails marks its submission failed (``failed`` then says so) and answers None.
    """

    def prepare(self, name: str, doing: str) -> None:
        """Put every input on the device (again, after a restart)."""
        ...

    def renew(self, name: str) -> None:
        """End the submission's worker and start a fresh one (``--fresh-workers``); not a restart."""
        ...

    def warm_up(self, name: str, request: msg.WarmUp, doing: str) -> int | None:
        """The forward passes the warm-up took; None when the submission failed."""
        ...

    def time_image(self, name: str, request: msg.TimeImage, doing: str) -> msg.ImageTimed | None:
        """The image's latency (the median of its repeats) in ms; None when the submission failed.
        Its output is copied out of the worker's output slot as soon as the reply is read, as
        :meth:`time_keeping_output`'s is, and dropped."""
        ...

    def time_keeping_output(
        self, name: str, request: msg.TimeImage, doing: str
    ) -> tuple[msg.ImageTimed, np.ndarray | str] | None:
        """As :meth:`time_image` (the worker is sent the same request, and its output is copied the
        same way), and that output kept: float32 values of the expected shape, or a one-line reason
        why they are not there; None when the submission failed."""
        ...

    def reserve_outputs(self, calls: Sequence[tuple[str, int]], kept: Sequence[tuple[str, int]]) -> None:
        """Before a round: make room for the outputs of its (name, image) ``calls``, of which it will
        keep those in ``kept``, so that their copies inside the round write memory already in place."""
        ...

    def output_pixels(self, name: str, values: np.ndarray) -> np.ndarray:
        """Kept ``values`` as uint8 pixels; the values are not used after this."""
        ...

    def failed(self, name: str) -> bool: ...

    def cpu_seconds(self, name: str) -> float | None:
        """The CPU time the worker's processes used so far, read from outside them; None where the
        kernel's count cannot be read from here."""
        ...

    def restarts(self, name: str) -> int:
        """How often the submission's worker was lost and restarted so far."""
        ...


@dataclass(frozen=True)
class Subgroup:
    """One lane's subgroup: ``names`` in the group's order, the baseline among them (or not)."""

    lane: int
    number: int  # which of the lane's subgroups
    label: str  # the lane, for people
    names: list[str]
    baseline: str | None  # the baseline's name when it is timed in this subgroup

    @property
    def key(self) -> tuple[int, int]:
        return (self.lane, self.number)


Progress = Callable[[str, str, int, int], None]  # (name, doing, done, total)


def time_rounds(
    workers: TimedWorkers,
    subgroup: Subgroup,
    timings: dict[str, SubgroupTimings],
    timing: TimingSettings,
    *,
    run_seed: int,
    images: int,
    on_round: Callable[[dict[str, Any]], None],
    progress: Progress,
    audit: TimingAudit | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    """Time ``subgroup`` in rounds into ``timings`` (by name); each round's log goes to ``on_round``.

    With ``audit``, every timed call is also shown to it (what the coordinator's clock saw, the
    output), and after the last round each submission gets the audit's extra requests
    (:func:`audit_requests`).
    """
    for name in subgroup.names:
        workers.prepare(name, f"the copy of the inputs to {subgroup.label}")
    open_names = set(subgroup.names)
    started = clock()
    # Subgroup 0 keeps the seed a lane always had, so a run that fits one subgroup is unchanged.
    seed = run_seed + subgroup.lane + _SUBGROUP_SEED_STRIDE * subgroup.number
    orders = round_orders(subgroup.names, timing.rounds or timing.max_rounds, seed)
    for round_index, every_order in enumerate(orders):
        order = [name for name in every_order if name in open_names]
        if timing.fresh_workers and round_index > 0:
            for name in order:
                workers.renew(name)
                workers.prepare(name, f"the copy of the inputs to {subgroup.label}")
        restarts_before = {name: workers.restarts(name) for name in subgroup.names}
        rounds_before = {name: len(timings[name].latencies) for name in subgroup.names}
        log = _time_round(
            workers, subgroup, timings, timing, order, round_index, run_seed, images, progress, clock, audit
        )
        restarted = [
            name
            for name in subgroup.names
            if not workers.failed(name) and workers.restarts(name) != restarts_before[name]
        ]
        if restarted:  # a worker was lost and restarted mid-round: that round is measured again
            for name in restarted:
                workers.prepare(name, f"the second copy of the inputs to {subgroup.label}")
            for name in subgroup.names:
                before = rounds_before[name]
                del timings[name].latencies[before:], timings[name].warmup_passes[before:]
            log = _time_round(
                workers,
                subgroup,
                timings,
                timing,
                order,
                round_index,
                run_seed,
                images,
                progress,
                clock,
                audit,
                attempt=1,
            )
            log["repeated_after_restart"] = restarted
        on_round(log)
        if timing.rounds is None:
            out_of_time = (
                timing.max_timing_seconds is not None and clock() - started >= timing.max_timing_seconds
            )
            baseline = (
                subgroup.baseline if subgroup.baseline and not workers.failed(subgroup.baseline) else None
            )
            failed = {name for name in subgroup.names if workers.failed(name)}
            stop_decided(
                timings,
                open_names,
                plan_of(timing),
                baseline=baseline,
                failed=failed,
                out_of_time=out_of_time,
            )
            if not open_names:
                break
    if audit is not None:
        audit_requests(workers, subgroup, timing, audit)


def audit_requests(
    workers: TimedWorkers, subgroup: Subgroup, timing: TimingSettings, audit: TimingAudit
) -> None:
    """After the rounds: each audited call again (its output compared with the timed one), then a
    short round on one image alternating an identical input with fresh ones (an input cache would
    answer the identical ones at once).

    These are ordinary timed requests; the worker cannot tell them from the rounds' but by their
    seeds (a re-run repeats a drawn call's seed: the draws are known to the worker from here on,
    once every timed round is over), and answering them from a cache is what the repeated round
    looks for.
    """
    for name in subgroup.names:
        if workers.failed(name):
            continue
        for image, seed in audit.reruns(name):
            request = msg.TimeImage(image, timing.repeats, seed)
            answered = workers.time_keeping_output(name, request, "the output audit")
            if answered is not None:
                audit.rerun_output(name, image, _pixels(workers, name, answered[1]))
        image, seed = audit.repeated_request()
        identical = msg.TimeImage(image, 1, seed)
        doing = "the repeated-input audit"
        if workers.time_image(name, identical, doing) is None:  # its first sight of this input
            continue
        for number in range(REPEATED_CALLS):
            again = workers.time_image(name, identical, doing)
            fresh = workers.time_image(name, msg.TimeImage(image, 1, audit.fresh_seed(number)), doing)
            if again is None or fresh is None:
                break
            audit.repeated(name, again.milliseconds, fresh.milliseconds)


def plan_of(timing: TimingSettings) -> SequentialPlan:
    """The stopping rule of ``--rounds auto`` under these settings."""
    return SequentialPlan(
        limit=timing.ratio_limit,
        resolution=timing.resolution,
        min_rounds=timing.min_rounds,
        max_rounds=timing.max_rounds,
    )


def stop_decided(
    timings: dict[str, SubgroupTimings],
    open_names: set[str],
    plan: SequentialPlan,
    *,
    baseline: str | None,
    failed: Collection[str],
    out_of_time: bool,
) -> None:
    """After a round: take out of ``open_names`` the submissions whose verdict is decided (or all,
    at the cap), recording each look and stop reason in ``timings``.

    ``baseline`` is the baseline's name while it is still timed without failure (None otherwise).
    The baseline is timed while any submission beside it is open; without a baseline there is no
    ratio to decide, so everyone is timed the minimum number of rounds.
    """
    for name, timed in timings.items():
        if name not in open_names or name == baseline:
            continue
        if name in failed:
            open_names.discard(name)
            continue
        if baseline is None:
            if len(timed.latencies) >= plan.min_rounds:
                open_names.discard(name)
            continue
        beside = timings[baseline].latencies[: len(timed.latencies)]
        ratios = paired_round_ratios(timed.latencies, beside)
        result = look([math.log(ratio) for ratio in ratios], plan)
        stop = result.stop
        if stop is None and out_of_time and result.rounds >= plan.min_rounds:
            stop = "cap"
        timed.looks.append(result)
        if stop is not None:
            timed.stop_reason = stop
            open_names.discard(name)
    # Alone (every submission beside it stopped, or none), the baseline still gets min rounds.
    if (
        baseline is not None
        and open_names <= {baseline}
        and len(timings[baseline].latencies) >= plan.min_rounds
    ):
        open_names.discard(baseline)


def _time_round(
    workers: TimedWorkers,
    subgroup: Subgroup,
    timings: dict[str, SubgroupTimings],
    timing: TimingSettings,
    order: Sequence[str],
    round_index: int,
    run_seed: int,
    images: int,
    progress: Progress,
    clock: Callable[[], float],
    audit: TimingAudit | None,
    attempt: int = 0,
) -> dict[str, Any]:
    """One round: everyone in ``order`` warms up, then they take turns image by image; its log."""
    rounds = timing.rounds or timing.max_rounds
    dither_seed = derive_seed(run_seed, "dither", *subgroup.key, round_index, attempt)
    calls = [(name, index) for index in range(images) for name in order]
    kept_calls = [
        (name, index) for name, index in calls if audit is not None and audit.keeps(round_index, index)
    ]
    workers.reserve_outputs(calls, kept_calls)
    for name in order:
        warmup = msg.WarmUp(
            timing.warmup_seconds,
            timing.warmup_min_passes,
            timing.warmup_max_passes,
            derive_seed(dither_seed, name, "warm-up"),
        )
        passes = workers.warm_up(name, warmup, f"the warm-up of timing round {round_index + 1}")
        if passes is not None:
            timings[name].warmup_passes.append(passes)
            timings[name].latencies.append([])
    timed_ms = 0.0
    drawn: list[tuple[str, int, int, np.ndarray | str]] = []  # quantised after the round
    started = clock()
    for index in range(images):
        for name in turn_order(order, index):
            doing = f"timing round {round_index + 1} at image {index + 1}/{images}"
            request = msg.TimeImage(index, timing.repeats, derive_seed(dither_seed, name, index))
            keep = audit is not None and audit.keeps(round_index, index)
            cpu_before = workers.cpu_seconds(name) if audit is not None else None  # for the audit only
            sent = clock()
            # Every call's output is copied out of the slot with its reply (inside this window), a
            # drawn call's into memory the audit keeps: the worker sees no difference.
            kept: np.ndarray | str | None = None
            if keep:
                answered_with = workers.time_keeping_output(name, request, doing)
                reply, kept = answered_with if answered_with is not None else (None, None)
            else:
                reply = workers.time_image(name, request, doing)
            answered = clock()
            observed_ms = (answered - sent) * 1000.0  # the coordinator's clock, outside the worker
            cpu_after = workers.cpu_seconds(name) if audit is not None else None
            if reply is not None:
                milliseconds = reply.milliseconds
                timings[name].latencies[-1].append(milliseconds)
                timed_ms += milliseconds
                if audit is not None:
                    if kept is not None:
                        drawn.append((name, index, request.dither_seed, kept))
                    audit.observe(
                        name,
                        round_index=round_index,
                        image=index,
                        dither_seed=request.dither_seed,
                        reported_ms=milliseconds,
                        observed_ms=observed_ms,
                        window=(sent, answered),
                        span=reply.span,
                        cpu=(cpu_before, cpu_after),
                        threads_left=reply.threads_left,
                    )
                done = round_index * images + index + 1
                progress(name, f"timing round {round_index + 1}/{rounds}", done, rounds * images)
    wall_ms = (clock() - started) * 1000.0
    # Quantised once the round's timed calls are over, so that between two of them only the copy
    # of an output out of its slot happens.
    if audit is not None:
        for name, index, seed, values in drawn:
            audit.keep_output(name, round_index, index, seed, _pixels(workers, name, values))
    log = {
        "lane": subgroup.label,
        "order": list(order),
        "wall_ms": wall_ms,
        "timed_ms": timed_ms,
        "dither_seed": dither_seed,
    }
    return log if subgroup.number == 0 else {**log, "subgroup": subgroup.number}


def _pixels(workers: TimedWorkers, name: str, kept: np.ndarray | str) -> np.ndarray | str:
    """A kept output as uint8 pixels, or the reason it cannot stand for the timed call's."""
    return kept if isinstance(kept, str) else workers.output_pixels(name, kept)
