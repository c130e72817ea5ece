"""What the coordinator observes of one timing subgroup's calls, and the integrity checks made from it.

The round loop tells a :class:`TimingAudit` about every timed call as it sees it from outside the
worker: the latency the worker reported and the coordinator's own clock around the request. For the
calls it drew (one per image, in a round every submission takes part in; drawn from the run's seed
and never told to the worker) it also keeps the output, which the coordinator copies out of the worker's output slot
(:mod:`harness.runner.output_slot`) right after the reply, as it copies every timed call's. After
the rounds it asks for two kinds of extra requests, both plain timed requests to the worker:

* a re-run of each audited call (the same image and dither seed): its output must equal the timed
  one (:func:`harness.integrity.output_audit`);
* a short round on one image that alternates its identical input with freshly dithered ones: the
  identical calls must not be more than 10% faster (:func:`harness.integrity.repeated_input_check`).

The clocks: on the coordinator's host, the span the worker read around its timed passes must lie
inside the coordinator's window around the request (exact); and the reported times are compared
against that window less the overhead the baseline's requests show in the same subgroup (the
baseline is the organisers' code, timed beside every submission). The baseline itself is not
clock-checked, for want of a reference. Under ``--clock cpu`` the workers report CPU time, which
a loaded machine makes smaller than the coordinator's wall clock and several threads larger: the
sizes are compared with the kernel's count of the CPU time the worker's processes used over each
request instead (:mod:`harness.runner.cpu_usage`), and where that count cannot be read only the
spans are checked, and the check's detail says so.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harness.integrity import (
    CallWindow,
    Check,
    clock_check,
    draw_audited_rounds,
    idle_work_check,
    output_audit,
    outputs_agree,
    repeated_input_check,
    windows_outside,
)
from harness.runner.dither import derive_seed

__all__ = [
    "REPEATED_CALLS",
    "SCORE_ABSOLUTE_ROOM",
    "SCORE_RELATIVE_ROOM",
    "TimingAudit",
    "cpu_time_spans_check",
    "threads_check",
    "timed_score_check",
]

#: Pairs (identical input, fresh input) in the round that repeats one image.
REPEATED_CALLS = 9

#: An audited timed output's squared error may exceed the accuracy pass's by this fraction of it ...
SCORE_RELATIVE_ROOM = 0.10
#: ... plus this many uint8 levels squared: a ±1-level dither has a variance of 2/3 level², which a
#: network that sharpens passes on amplified (imdn_baseline lost 0.28 dB on one Set14 image).
SCORE_ABSOLUTE_ROOM = 8.0


@dataclass
class _Seen:
    """One submission's calls as the coordinator saw them."""

    reported_ms: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))  # by image
    observed_ms: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    kept: dict[int, tuple[str, int, np.ndarray]] = field(default_factory=dict)  # image: label, seed, output
    reruns: list[tuple[str, bool, str]] = field(default_factory=list)
    scores_db: dict[int, tuple[str, float]] = field(
        default_factory=dict
    )  # image: label, PSNR of timed output
    repeated_ms: list[float] = field(default_factory=list)
    fresh_ms: list[float] = field(default_factory=list)  # beside each repeated call, a fresh input's
    threads_left: int = 0  # the most Python threads one timed call left running
    windows: list[CallWindow] = field(default_factory=list)  # on a shared clock only
    idle_cpu_ms: list[float] = field(default_factory=list)  # CPU used between two timed calls of a round
    last_cpu: tuple[int, float] | None = None  # (round, CPU seconds) when its last reply arrived
    cpu_uncounted: bool = False  # a call whose CPU time the kernel's count did not give


class TimingAudit:
    """The integrity observations of one subgroup (its submissions and the baseline beside them)."""

    def __init__(
        self,
        seed: int,
        images: int,
        min_rounds: int,
        baseline: str | None,
        score_db: Callable[[int, np.ndarray], float | None] | None = None,
        same_clock: bool = True,
        reports_wall_time: bool = True,
    ) -> None:
        """``score_db``: the trusted scorer, an image's output to its PSNR against the HR (None
        without HR); with it each audited timed output is also scored (:meth:`checks`).
        ``same_clock``: the workers run on the coordinator's host, so their ``time.perf_counter``
        is the coordinator's and their spans must lie inside its windows (a Ray lane on another
        node has its own clock). ``reports_wall_time``: the latencies are wall time (the protocol's
        clocks), comparable in size with the coordinator's; false under ``--clock cpu``."""
        self.seed = seed
        self.same_clock = same_clock
        self.reports_wall_time = reports_wall_time
        self.score_db = score_db
        self.audited_round = draw_audited_rounds(seed, images, max(min_rounds, 1))
        self.baseline = baseline
        self._seen: dict[str, _Seen] = defaultdict(_Seen)

    def keeps(self, round_index: int, image: int) -> bool:
        """Whether the output of this round's call of ``image`` is kept for its re-run."""
        return self.audited_round.get(image) == round_index

    def observe(
        self,
        name: str,
        *,
        round_index: int,
        image: int,
        dither_seed: int,
        reported_ms: float,
        observed_ms: float,
        threads_left: int = 0,
        window: tuple[float, float] | None = None,
        span: tuple[float, float] | None = None,
        cpu: tuple[float | None, float | None] = (None, None),
    ) -> None:
        """One timed call: what the worker reported, what the coordinator's clock saw (``window``:
        sent and answered; the worker's own ``span``), how many Python threads it
        left running, and the CPU seconds its processes had used before the request and after the
        reply (``cpu``, read from the kernel): what they used since its previous reply in the same
        round is work done while it was not being timed."""
        seen = self._seen[name]
        before, after = cpu
        if before is not None and seen.last_cpu is not None and seen.last_cpu[0] == round_index:
            seen.idle_cpu_ms.append((before - seen.last_cpu[1]) * 1000.0)
        seen.last_cpu = (round_index, after) if after is not None else None
        seen.threads_left = max(seen.threads_left, threads_left)
        seen.reported_ms[image].append(reported_ms)
        if not self.reports_wall_time:  # CPU time: compared with the kernel's count of the request
            kernel_ms = (after - before) * 1000.0 if before is not None and after is not None else None
            seen.cpu_uncounted = seen.cpu_uncounted or kernel_ms is None
            observed_ms = kernel_ms if kernel_ms is not None else observed_ms
        seen.observed_ms[image].append(observed_ms)
        if self.same_clock and window is not None and span is not None:
            seen.windows.append(
                CallWindow(_label(round_index, image), window[0], window[1], span[0], span[1])
            )

    def keep_output(
        self, name: str, round_index: int, image: int, dither_seed: int, output: np.ndarray | str
    ) -> None:
        """The output of a drawn call (:meth:`keeps`) as uint8 pixels, for its re-run; or why what the
        worker left in its output slot cannot stand for the call's output."""
        label = _label(round_index, image)
        seen = self._seen[name]
        if isinstance(output, str):
            seen.reruns.append((label, False, output))
        elif self.keeps(round_index, image):
            seen.kept[image] = (label, dither_seed, output)

    def reruns(self, name: str) -> list[tuple[int, int]]:
        """(image, dither seed) of each kept call of ``name``, to request again after the rounds."""
        return [(image, seed) for image, (_, seed, _) in sorted(self._seen[name].kept.items())]

    def rerun_output(self, name: str, image: int, output: np.ndarray | str) -> None:
        """The output of a re-run: compared with the kept timed output, which is then dropped."""
        seen = self._seen[name]
        label, _, timed = seen.kept.pop(image)
        if isinstance(output, str):
            seen.reruns.append((f"the re-run of {label}", False, output))
            return
        agreed, detail = outputs_agree(timed, output)
        seen.reruns.append((label, agreed, detail))
        score = self.score_db(image, timed) if self.score_db is not None else None
        if score is not None:
            seen.scores_db[image] = (label, score)

    def repeated_request(self) -> tuple[int, int]:
        """(image, dither seed) of the round that repeats one image identically: the first image."""
        return 0, derive_seed(self.seed, "repeated-input audit")

    def fresh_seed(self, number: int) -> int:
        """The seed of the ``number``-th freshly dithered call beside the repeated ones."""
        return derive_seed(self.seed, "repeated-input audit", "fresh", number)

    def repeated(self, name: str, repeated_ms: float, dithered_ms: float) -> None:
        """One pair of the repeated round: the identical input's latency, then a fresh one's."""
        seen = self._seen[name]
        seen.repeated_ms.append(repeated_ms)
        seen.fresh_ms.append(dithered_ms)

    def _cpu_counted(self, name: str) -> bool:
        """Whether the kernel counted the CPU time of every timed call of ``name`` and of the baseline."""
        return self.baseline in self._seen and not (
            self._seen[name].cpu_uncounted or self._seen[self.baseline].cpu_uncounted
        )

    def _overhead_ms(self) -> tuple[float, float] | None:
        """What a timed request costs beyond its forward pass (the baseline's median gap, per image),
        and how much more the machine made one cost: the 90th percentile of the baseline's gaps,
        call by call, less their median."""
        if self.baseline is None or self.baseline not in self._seen:
            return None
        seen = self._seen[self.baseline]
        gaps = [
            statistics.median(seen.observed_ms[image]) - statistics.median(seen.reported_ms[image])
            for image in seen.reported_ms
        ]
        if not gaps:
            return None
        calls = sorted(
            observed - reported
            for image in seen.reported_ms
            for observed, reported in zip(seen.observed_ms[image], seen.reported_ms[image], strict=True)
        )
        delay = calls[min(len(calls) - 1, math.ceil(0.9 * len(calls)) - 1)] - statistics.median(calls)
        return max(statistics.median(gaps), 0.0), max(delay, 0.0)

    def checks(self, name: str, accuracy_db: dict[int, float] | None = None) -> list[Check]:
        """The integrity checks of ``name`` from what was observed.

        With ``accuracy_db`` (the accuracy pass's PSNR per image, scored the same way), each audited
        timed output must score as well, within the dither's room (:func:`timed_score_check`): a model that computes less
        in timed calls than in the accuracy pass fails, even one that does so consistently (its
        re-runs then agree with its timed outputs).
        """
        seen = self._seen[name]
        checks = []
        if seen.reruns:
            checks.append(output_audit(seen.reruns))
        if accuracy_db is not None and seen.scores_db:
            checks.append(timed_score_check(seen.scores_db, accuracy_db))
        overhead = self._overhead_ms()
        if not self.reports_wall_time and not (overhead is not None and self._cpu_counted(name)):
            if name != self.baseline and seen.windows:
                checks.append(cpu_time_spans_check(seen.windows))
        elif name != self.baseline and (overhead is not None or seen.windows) and seen.reported_ms:
            reported = [statistics.median(times) for _, times in sorted(seen.reported_ms.items())]
            observed = [statistics.median(times) for _, times in sorted(seen.observed_ms.items())]
            overhead_ms, delay_ms = overhead if overhead is not None else (None, 0.0)
            seen_by = "coordinator" if self.reports_wall_time else "kernel's count of its CPU time"
            checks.append(
                clock_check(reported, observed, overhead_ms, seen.windows, delay_ms=delay_ms, seen_by=seen_by)
            )
        if len(seen.repeated_ms) >= 6:
            checks.append(repeated_input_check(seen.repeated_ms, seen.fresh_ms))
        if seen.reported_ms:
            checks.append(threads_check(seen.threads_left))
        if seen.idle_cpu_ms:
            beside = self.baseline in self._seen and name != self.baseline
            reference = self._seen[self.baseline].idle_cpu_ms if beside else None
            forward_ms = statistics.median(t for times in seen.reported_ms.values() for t in times)
            checks.append(idle_work_check(seen.idle_cpu_ms, reference, forward_ms))
        return checks


def cpu_time_spans_check(windows: list[CallWindow]) -> Check:
    """The clocks check of a ``--clock cpu`` run without the kernel's count of the worker's CPU time
    (a worker in the coordinator's process): the worker's wall-clock spans in the windows only.

    CPU time is honestly smaller than the coordinator's wall clock when other work holds the cores
    and larger when the pass runs on several threads, so comparing those sizes would fail honest
    submissions.
    """
    skipped = "sizes not compared: --clock cpu reports CPU time, not the wall time the coordinator sees"
    outside = windows_outside(windows)
    if outside is not None:
        return Check("clocks", "fail", f"{outside}; {skipped}")
    return Check("clocks", "pass", f"{len(windows)} spans inside their windows; {skipped}")


def _label(round_index: int, image: int) -> str:
    """A timed call as details name it."""
    return f"round {round_index + 1}, image {image + 1}"


def _mse(psnr_db: float) -> float:
    """The mean squared error (uint8 levels) that a PSNR with peak 255 stands for."""
    return 0.0 if math.isinf(psnr_db) else 255.0**2 / 10 ** (psnr_db / 10)


def timed_score_check(scores_db: dict[int, tuple[str, float]], accuracy_db: dict[int, float]) -> Check:
    """Each audited timed output's PSNR against the accuracy pass's of its image (``image: PSNR``).

    The timed input carries a ±1-level dither (variance 2/3 of a level squared), which an honest
    model passes on to its output, amplified where it sharpens: the check allows the timed
    output's squared error to exceed the accuracy pass's by :data:`SCORE_RELATIVE_ROOM` of it plus
    :data:`SCORE_ABSOLUTE_ROOM` levels squared. On DIV2K x4 (about 29 dB) that is about 0.8 dB: a
    model that skips its network in timed calls (bicubic: 2 dB and more) fails; one that saves a
    little less than that is not caught by this check.
    """
    compared = [(image, label, score) for image, (label, score) in scores_db.items() if image in accuracy_db]
    if not compared:
        return Check("timed_scores", "fail", "no audited timed output has an accuracy-pass score to compare")
    worst = None
    for image, label, score in compared:
        allowed = _mse(accuracy_db[image]) * (1 + SCORE_RELATIVE_ROOM) + SCORE_ABSOLUTE_ROOM
        excess = _mse(score) - allowed
        if worst is None or excess > worst[0]:
            worst = (excess, label, score - accuracy_db[image])
    assert worst is not None
    excess, label, drop_db = worst
    if excess > 0:
        return Check(
            "timed_scores",
            "fail",
            f"{label}: the timed output scores {-drop_db:.2f} dB under the accuracy pass, more than "
            "the input's dither explains: the timed calls compute something else",
        )
    return Check(
        "timed_scores",
        "pass",
        f"{len(compared)} audited timed outputs score as the accuracy pass, within the dither's room "
        f"(largest change {drop_db:+.3f} dB)",
    )


def threads_check(threads_left: int) -> Check:
    """A forward pass must not leave Python threads running: what they compute, no timer sees.

    The count comes from the worker (each timed call compares ``threading.active_count()``); a
    worker that hides its threads from it is still caught by the clocks or by its outputs.
    """
    if threads_left > 0:
        return Check(
            "threads",
            "fail",
            f"a timed forward pass left {threads_left} Python thread(s) running after it returned",
        )
    return Check("threads", "pass", "no timed forward pass left a Python thread running")
