"""Integrity checks of a submission's measurements, made outside its process, and their record.

The measured code is untrusted: what its worker reports (a forward time, an output) is checked by
trusted code that the worker cannot reach. Each check ends in a :class:`Check` (a name, ``pass`` or
``fail``, one line of detail); a record's ``integrity`` holds them with the worker's confinement
(``sandbox``) and an overall verdict. One failed check makes the submission invalid: it is listed,
not ranked, and ``esr evaluate`` exits 1 (``docs/integrity.md`` has the threat model).

The checks here are pure functions of what the coordinator observed, so each has a unit test with
the arithmetic written out:

* :func:`output_audit` (as MLPerf's TEST01): a timed call's output equals the output of an untimed
  re-run on the same input, within :data:`OUTPUT_TOLERANCE` (kernels need not be deterministic).
* :func:`clock_check`: the worker's clock reads inside the coordinator's window around each timed
  request (one host, one clock: exact), and the forward times it reports agree with that window less
  the request's overhead measured in the same run.
* :func:`idle_work_check`: the worker's processes, whose CPU time the kernel counts, do not compute
  between its timed calls more than the baseline's do.
* :func:`repeated_input_check` (as MLPerf's TEST04): a round that repeats one image identically is
  not more than 10% faster than the dithered rounds, interval included.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "CLOCK_FLOOR_MS",
    "CLOCK_MARGIN",
    "IDLE_FLOOR_MS",
    "IDLE_SHARE",
    "OUTPUT_TOLERANCE",
    "REPEAT_SPEEDUP_LIMIT",
    "CallWindow",
    "Check",
    "OutputTolerance",
    "clock_check",
    "draw_audited_rounds",
    "idle_work_check",
    "integrity_failure",
    "integrity_record",
    "output_audit",
    "outputs_agree",
    "repeated_input_check",
    "windows_outside",
]

CheckVerdict = Literal["pass", "fail"]


@dataclass(frozen=True)
class Check:
    """One integrity check's outcome: ``detail`` is one line a reader can act on."""

    name: str
    verdict: CheckVerdict
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "verdict": self.verdict, "detail": self.detail}


def integrity_record(sandbox: Mapping[str, Any], checks: Sequence[Check]) -> dict[str, Any]:
    """A record's ``integrity``: how its worker was confined, each check, and fail if one failed."""
    return {
        "sandbox": dict(sandbox),
        "checks": [check.as_dict() for check in checks],
        "verdict": "fail" if any(check.verdict == "fail" for check in checks) else "pass",
    }


def integrity_failure(record: Mapping[str, Any]) -> str | None:
    """The one-line reason a record failed its integrity checks; None when it did not (or none ran)."""
    integrity = record.get("integrity")
    if not isinstance(integrity, Mapping) or integrity.get("verdict") != "fail":
        return None
    failed = [check for check in integrity.get("checks", []) if check.get("verdict") == "fail"]
    return "integrity: " + "; ".join(f"{check['name']}: {check['detail']}" for check in failed)


# -- timed outputs (TEST01) --------------------------------------------------------------------


@dataclass(frozen=True)
class OutputTolerance:
    """Two uint8 outputs agree when at least ``min_fraction`` of their values differ by at most
    ``max_level_difference`` (GPU kernels may pick another summation order from call to call)."""

    max_level_difference: int = 1
    min_fraction: float = 0.999

    def describe(self) -> str:
        return f"within {self.max_level_difference} level on {self.min_fraction:.1%} of values"


OUTPUT_TOLERANCE = OutputTolerance()


def outputs_agree(
    timed: np.ndarray, untimed: np.ndarray, tolerance: OutputTolerance = OUTPUT_TOLERANCE
) -> tuple[bool, str]:
    """Whether a timed call's uint8 output agrees with its untimed re-run, and how far apart they are."""
    if timed.shape != untimed.shape:
        return False, f"shape {tuple(timed.shape)} differs from the re-run's {tuple(untimed.shape)}"
    difference = np.abs(timed.astype(np.int16) - untimed.astype(np.int16))
    within = float(np.count_nonzero(difference <= tolerance.max_level_difference)) / max(difference.size, 1)
    largest = int(difference.max()) if difference.size else 0
    agree = within >= tolerance.min_fraction
    return (
        agree,
        f"{within:.4%} of values within {tolerance.max_level_difference} level (largest difference {largest})",
    )


def output_audit(
    comparisons: Sequence[tuple[str, bool, str]], tolerance: OutputTolerance = OUTPUT_TOLERANCE
) -> Check:
    """The TEST01 check from each audited call's (label, agreed, detail), e.g. ("round 3, 0801", ...)."""
    if not comparisons:
        return Check("timed_outputs", "fail", "no timed call was audited")
    disagreeing = [(label, detail) for label, agreed, detail in comparisons if not agreed]
    if disagreeing:
        label, detail = disagreeing[0]
        return Check(
            "timed_outputs",
            "fail",
            f"{len(disagreeing)} of {len(comparisons)} audited timed outputs differ from an untimed "
            f"re-run of the same input (first: {label}, {detail})",
        )
    return Check(
        "timed_outputs",
        "pass",
        f"{len(comparisons)} audited timed outputs equal their untimed re-runs ({tolerance.describe()})",
    )


def draw_audited_rounds(seed: int, images: int, rounds: int) -> dict[int, int]:
    """For each image, the round (0-based, under ``rounds``) whose timed call of it is audited.

    Drawn by the coordinator from the run's recorded seed and never told to the worker; ``rounds``
    is the number every submission is certain to take part in (the minimum), so each image has one.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    draw = random.Random(f"{seed}:output-audit")
    return {image: draw.randrange(rounds) for image in range(images)}


# -- clocks ----------------------------------------------------------------------------------

#: A submission's reported forward times may read at most this much under what the coordinator saw ...
CLOCK_MARGIN = 0.25
#: ... or this many milliseconds, whichever is more. An honest worker's request costs more than its
#: forward pass by what it frees afterwards and by how long the scheduler takes to wake it; on a
#: loaded 2-core machine (CI, with a neighbour that left work running) that was 2.9 ms more for
#: clb_imdn than for the baseline beside it, so the floor is above one scheduler time slice.
CLOCK_FLOOR_MS = 5.0


@dataclass(frozen=True)
class CallWindow:
    """One timed request on the host's monotonic clock (``time.perf_counter``, seconds).

    ``sent`` and ``answered`` are read by the coordinator around the request; ``started`` and
    ``ended`` are what the worker read before its first timed pass and after its last. On one host
    the clock is the kernel's, shared by every process, so an honest worker's span lies inside the
    coordinator's window without any margin: the worker reads it after the request arrived and
    before its answer left.
    """

    label: str
    sent: float
    answered: float
    started: float
    ended: float

    def contains_span(self) -> bool:
        return self.sent <= self.started <= self.ended <= self.answered


def windows_outside(windows: Sequence[CallWindow]) -> str | None:
    """Why the worker's clock is not the host's, or None when every span lies in its window."""
    outside = [window for window in windows if not window.contains_span()]
    if not outside:
        return None
    first = outside[0]
    return (
        f"clocks disagree: {len(outside)} of {len(windows)} timed calls ran, by the worker's clock, "
        f"outside the coordinator's window around them ({first.label}: worker {first.started:.6f}-"
        f"{first.ended:.6f} s, request {first.sent:.6f}-{first.answered:.6f} s): its clock is not the host's"
    )


def clock_check(
    reported_ms: Sequence[float],
    observed_ms: Sequence[float],
    overhead_ms: float | None,
    windows: Sequence[CallWindow] = (),
    margin: float = CLOCK_MARGIN,
    delay_ms: float = 0.0,
    seen_by: str = "coordinator",
) -> Check:
    """Compare the worker's forward times with the coordinator's clock around the same requests.

    Two tests, the exact one first. ``windows`` (calls on the coordinator's host) must each hold the
    worker's own span: a worker whose clocks were slowed or shifted reads times outside them, however
    loaded the machine. Then the sizes: ``observed_ms`` are the coordinator's times of the timed
    requests (sent to answered), and ``overhead_ms`` what such a request costs beyond its forward
    pass, measured in the same run (the baseline's requests). Honest workers report about
    ``observed - overhead``; one that forges its reported time reads less. The medians are compared,
    so one request delayed by the machine does not decide, and the margin is wide (25%, or 5 ms, or
    ``delay_ms``, what the machine added to one in ten of the baseline's requests in the same run:
    under heavy load a short forward pass is dwarfed by such delays): it catches a report that halves
    the time, not one that shaves a few percent. ``seen_by`` names what measured ``observed_ms`` (the
    coordinator's clock; under ``--clock cpu`` the kernel's count of the worker's CPU time). Without a measured
    overhead (``None``: no baseline beside it) only the windows are checked.
    """
    if not reported_ms or len(reported_ms) != len(observed_ms):
        raise ValueError("clock_check needs as many observed as reported times, at least one")
    reported = statistics.median(reported_ms)
    spans = f"{len(windows)} spans inside their windows" if windows else "no spans on this host's clock"
    if overhead_ms is None:
        sizes = f"reported {reported:.3g} ms (no baseline beside it to measure the overhead)"
        seen = 0.0
    else:
        seen = statistics.median(observed_ms) - overhead_ms
        sizes = f"reported {reported:.3g} ms, {seen_by} {seen:.3g} ms beyond {overhead_ms:.3g} ms of overhead (medians)"
    outside = windows_outside(windows)
    if outside is not None:
        return Check("clocks", "fail", f"{outside}; {sizes}")
    room = max(margin * seen, CLOCK_FLOOR_MS, delay_ms)
    if seen <= 0 or seen - reported <= room:
        return Check("clocks", "pass", f"{sizes}; {spans}")
    return Check(
        "clocks",
        "fail",
        f"clocks disagree: the worker reported {reported:.3g} ms per forward pass, the {seen_by} saw "
        f"{seen:.3g} ms beyond {overhead_ms:.3g} ms of overhead (medians; room {room:.3g} ms: {margin:.0%}, "
        f"{CLOCK_FLOOR_MS:g} ms or the baseline's requests' delays, whichever is more)",
    )


# -- work between timed calls ----------------------------------------------------------------

#: A submission's processes may use, between two of its timed calls, at most the baseline's CPU time
#: there plus this share of its forward time ...
IDLE_SHARE = 0.10
#: ... or plus this many milliseconds, whichever is more: an honest worker waits on its pipe, but the
#: threads of a parallel region spin a moment before they sleep.
IDLE_FLOOR_MS = 2.0


def idle_work_check(
    idle_ms: Sequence[float], reference_ms: Sequence[float] | None, forward_ms: float
) -> Check:
    """Whether a worker's processes computed while it was not being timed.

    ``idle_ms`` is the CPU time (read from the kernel, outside the worker) its processes used
    between one timed reply and its next request in the same round, while the others were timed;
    ``reference_ms`` the baseline's in the same run (None for the baseline itself, or without one:
    the reference is then 0). Work left running
    after a reply, in a native thread or a process of its own, is work no timer saw, and it slows
    whoever is timed meanwhile. The means are compared, so work deferred in a few calls counts.
    """
    if not idle_ms:
        raise ValueError("idle_work_check needs the CPU time of one window at least")
    idle = statistics.fmean(idle_ms)
    reference = statistics.fmean(reference_ms) if reference_ms else 0.0
    allowed = reference + max(IDLE_SHARE * forward_ms, IDLE_FLOOR_MS)
    beside = f"the baseline {reference:.3g} ms, " if reference_ms else ""
    described = f"{idle:.3g} ms of CPU between timed calls ({len(idle_ms)} windows; {beside}its forward pass {forward_ms:.3g} ms)"
    if idle > allowed:
        return Check("idle_work", "fail", f"computes between its timed calls: {described}")
    return Check("idle_work", "pass", described)


# -- repeated inputs (TEST04) -----------------------------------------------------------------

#: Repeated identical inputs may be at most this much faster (ratio of times) before it is reported.
REPEAT_SPEEDUP_LIMIT = 0.90


def _median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """The median of ``values`` and a distribution-free interval for it (order statistics).

    The interval is [x(k), x(n+1-k)] of the sorted values for the largest k whose binomial coverage
    is at least ``confidence``; one value upset by the machine cannot move it.
    """
    ordered = sorted(values)
    n = len(ordered)
    k = 1
    while k < n // 2 and 1 - 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n >= confidence:
        k += 1
    return statistics.median(ordered), ordered[k - 1], ordered[n - k]


def repeated_input_check(repeated_ms: Sequence[float], dithered_ms: Sequence[float]) -> Check:
    """Whether calls repeating one input identically run faster than freshly dithered calls.

    The two kinds of call alternate back to back on one image (``repeated_ms[i]`` beside
    ``dithered_ms[i]``), so both see the same warm caches and the same load; each pair gives a
    ratio, and the check fails when the 95% interval of their median (order statistics, so one
    pair upset by the machine decides nothing) lies wholly under :data:`REPEAT_SPEEDUP_LIMIT`:
    a model that answers repeated inputs from a cache.
    """
    if len(repeated_ms) < 6 or len(repeated_ms) != len(dithered_ms):
        raise ValueError("repeated_input_check needs six pairs of repeated and dithered times at least")
    ratios = [repeated / dithered for repeated, dithered in zip(repeated_ms, dithered_ms, strict=True)]
    median, low, high = _median_interval(ratios)
    described = f"repeated / dithered {median:.3f} [{low:.3f}, {high:.3f}]"
    if high < REPEAT_SPEEDUP_LIMIT:
        return Check("repeated_inputs", "fail", f"speeds up on repeated inputs: {described}")
    return Check("repeated_inputs", "pass", f"no speed-up on repeated inputs: {described}")
