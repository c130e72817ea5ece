"""When to stop timing: repeated confidence intervals with Bonferroni spending of alpha over looks.

The round loop looks at a submission's paired runtime ratio after every round and stops as soon as
the verdict is clear. A plain 95% t-interval looked at after each of many rounds is not a 95%
interval any more: the more looks, the more chances that one of them strays and stops the run on a
wrong verdict. This module keeps the error rate by spending the error probability ``alpha`` over all
the looks that can happen.

Method: *repeated confidence intervals* (Jennison & Turnbull, "Group Sequential Methods with
Applications to Clinical Trials", Chapman & Hall 2000, chapter 9), with the simplest valid spending
rule, Bonferroni's: the looks are at rounds ``min_rounds .. max_rounds``, ``L`` of them, and each
look's interval is a Student's t interval on the mean per-round log ratio at level
``1 - alpha / L``. By the union bound, the chance that *any* look's interval misses the true ratio is
at most ``alpha``, so the interval at whichever round the loop stops at, however that round was
chosen from the data, covers the truth with probability at least ``1 - alpha``; and the chance of a
verdict on the wrong side of the limit (which needs the interval to miss the truth on one side) is at
most ``alpha / 2``. The price is a wider interval per look than a single fixed-count interval; the
Monte Carlo test in ``tests/test_sequential.py`` checks both error rates.

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
        """Each look's confidence level: ``1 - alpha / looks`` (Bonferroni)."""
        return 1 - (1 - self.confidence) / self.looks


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
