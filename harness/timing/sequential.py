"""When to stop timing: repeated confidence intervals at a per-look level calibrated for all looks.

The round loop looks at a submission's paired runtime ratio after every round and stops as soon as
the verdict is clear. A plain 95% t-interval looked at after each of many rounds is not a 95%
interval any more: the more looks, the more chances that one of them strays and stops the run on a
wrong verdict. This module keeps the error rate by making every look's interval wider, by just as
much as all the looks together need.

Method: *repeated confidence intervals* (Jennison & Turnbull, "Group Sequential Methods with
Applications to Clinical Trials", Chapman & Hall 2000, chapter 9) with a constant nominal level
per look, as in Pocock's boundary (Pocock, "Group sequential methods in the design and analysis of
clinical trials", Biometrika 64(2), 1977). The looks are at rounds ``min_rounds .. max_rounds``;
each look's interval is a Student's t interval on the mean per-round log ratio at level
``1 - p``, and ``p`` is chosen so that, for independent normal per-round log ratios, the chance
that *any* look's interval misses the true ratio is ``alpha`` (:func:`per_look_alpha`). Then the
interval at whichever round the loop stops at, however that round was chosen from the data,
covers the truth with probability at least ``1 - alpha``, and a verdict on the wrong side of the
limit (which needs the interval to miss on one side) has probability at most ``alpha / 2``.

The t statistics of the looks are pivotal (their joint law does not depend on the true ratio or
the noise), so ``p`` depends only on the looks and ``alpha``; it is found by a seeded Monte Carlo
of that joint law, once per plan. Bonferroni's ``alpha / looks`` is the bound it never goes
under: it ignores that the looks share their rounds, and with the defaults (26 looks) its
intervals missed in 1.6% of simulated runs, not 5%, at the price of intervals about 20% wider
at 20 to 30 rounds. The Monte Carlo tests in ``tests/test_sequential.py`` check both error rates
with simulations of their own.

The per-round log ratios are assumed independent and roughly normal about the true log ratio (the
per-round ratio is a median of per-image ratios, so a single disturbed image does not move it).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from harness.errors import HarnessError
from harness.timing.rounds import _t_quantile

StopReason = Literal["decided", "resolution", "cap"]


_quantile = functools.lru_cache(maxsize=256)(_t_quantile)  # one per (level, rounds): a loop asks again


# The Monte Carlo that calibrates the per-look level: simulated runs (in chunks, to bound memory)
# and its seed, fixed so that a plan's intervals are the same on every machine and every run.
_CALIBRATION_RUNS = 200_000
_CALIBRATION_CHUNK = 25_000
_CALIBRATION_SEED = 1977


@functools.lru_cache(maxsize=64)
def per_look_alpha(min_rounds: int, max_rounds: int, confidence: float) -> float:
    """The two-sided error level ``p`` of each look's t interval such that, for independent normal
    per-round values, all looks from ``min_rounds`` to ``max_rounds`` cover together with
    probability ``confidence``.

    A run misses at level ``p`` when the smallest two-sided p-value of its looks' t statistics is
    under ``p``; so ``p`` is the ``alpha`` quantile of that smallest p-value over simulated runs of
    standard normal values (the t statistics are pivotal). It is never under Bonferroni's
    ``alpha / looks``, which is valid whatever the looks share. With one look it is ``alpha``.
    """
    import numpy as np  # here, as SciPy below: the workers import this package and need neither
    from scipy.special import stdtr  # Student's t distribution function

    alpha = 1 - confidence
    looks = max_rounds - min_rounds + 1
    if looks == 1:
        return alpha
    rng = np.random.default_rng(_CALIBRATION_SEED)
    rounds = np.arange(1, max_rounds + 1)
    smallest: list[np.ndarray] = []
    for _ in range(_CALIBRATION_RUNS // _CALIBRATION_CHUNK):
        values = rng.standard_normal((_CALIBRATION_CHUNK, max_rounds))
        means = np.cumsum(values, axis=1) / rounds
        squares = np.cumsum(values**2, axis=1)
        chunk = np.ones(_CALIBRATION_CHUNK)
        for n in range(min_rounds, max_rounds + 1):
            variance = (squares[:, n - 1] - n * means[:, n - 1] ** 2) / (n - 1)
            statistic = np.abs(means[:, n - 1]) / np.sqrt(variance / n)
            chunk = np.minimum(chunk, 2 * stdtr(n - 1, -statistic))
        smallest.append(chunk)
    level = float(np.quantile(np.concatenate(smallest), alpha))
    return max(level, alpha / looks)


@dataclass(frozen=True)
class SequentialPlan:
    """The stopping rule's settings, fixed before the first round (the spending depends on them).

    ``resolution`` is a relative half-width: 0.01 stops once the interval is within about ±1% of
    the estimate. ``limit`` is the runtime-ratio limit the verdict is taken against (None: no limit,
    only resolution and cap stop).
    """

    limit: float | None = None
    resolution: float = 0.01
    min_rounds: int = 5
    max_rounds: int = 30
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.min_rounds < 2:
            raise HarnessError(
                f"min rounds must be at least 2 (an interval needs two rounds), got {self.min_rounds}"
            )
        if self.max_rounds < self.min_rounds:
            raise HarnessError(f"max rounds ({self.max_rounds}) is under min rounds ({self.min_rounds})")
        if not 0 < self.confidence < 1:
            raise HarnessError(f"confidence must lie between 0 and 1, got {self.confidence}")
        if not self.resolution > 0:
            raise HarnessError(f"resolution must be positive, got {self.resolution}")
        if self.limit is not None and not (math.isfinite(self.limit) and self.limit > 0):
            raise HarnessError(f"limit must be a positive number, got {self.limit}")

    @property
    def looks(self) -> int:
        """How many looks the alpha is spread over: one after each round from min to max rounds."""
        return self.max_rounds - self.min_rounds + 1

    @property
    def look_confidence(self) -> float:
        """Each look's confidence level: ``1 - p``, ``p`` calibrated over all looks (:func:`per_look_alpha`)."""
        return 1 - per_look_alpha(self.min_rounds, self.max_rounds, self.confidence)


@dataclass(frozen=True)
class Look:
    """What the rule says after one round.

    ``interval`` is the repeated confidence interval of the ratio (None before min rounds);
    ``stop`` is None to keep going, else why timing stops.
    """

    rounds: int
    ratio: float
    interval: tuple[float, float] | None
    stop: StopReason | None

    def as_dict(self) -> dict[str, object]:
        return {
            "rounds": self.rounds,
            "ratio": self.ratio,
            "interval": list(self.interval) if self.interval is not None else None,
            "stop": self.stop,
        }


def look(log_ratios: Sequence[float], plan: SequentialPlan) -> Look:
    """The interval and the stopping decision after ``len(log_ratios)`` rounds.

    ``log_ratios`` are the natural logarithms of one submission's paired per-round ratios. Before
    ``min_rounds`` no look is taken (no alpha is spent there) and the answer is to keep going.
    """
    logs = [float(value) for value in log_ratios]
    if not logs or any(not math.isfinite(value) for value in logs):
        raise HarnessError(f"per-round log ratios must be finite numbers, got {list(log_ratios)!r}")
    rounds = len(logs)
    if rounds > plan.max_rounds:
        raise HarnessError(f"{rounds} rounds given, more than the plan's cap of {plan.max_rounds}")
    mean = sum(logs) / rounds
    if rounds < plan.min_rounds:
        return Look(rounds, math.exp(mean), None, None)
    sd = math.sqrt(sum((value - mean) ** 2 for value in logs) / (rounds - 1))
    half = _quantile(plan.look_confidence, rounds - 1) * sd / math.sqrt(rounds)
    low, high = math.exp(mean - half), math.exp(mean + half)
    stop: StopReason | None = None
    if plan.limit is not None and (high <= plan.limit or low > plan.limit):
        stop = "decided"
    elif half < math.log1p(plan.resolution):
        stop = "resolution"
    elif rounds == plan.max_rounds:
        stop = "cap"
    return Look(rounds, math.exp(mean), (low, high), stop)
