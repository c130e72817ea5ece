"""How latencies are taken: one frozen type for a protocol's timing and for a run's, checked once.

A protocol file states every field (``timing:`` in ``<name>.yaml``); a run takes the protocol's
settings with the few the command line may change (:meth:`TimingSettings.overridden`). Either way
the values are checked when the object is made, so no later step re-checks them, and a bad value
raises :class:`TimingValueError` naming the field, which the caller turns into its file key or flag.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from harness.errors import HarnessError

__all__ = ["OVERRIDABLE", "PROTOCOL_FIELDS", "TimingSettings", "TimingValueError"]

#: The fields a run may change from the protocol's value (command-line options, and the ratio
#: limit ``--rounds auto`` decides against, which the command takes from the protocol's constraints).
OVERRIDABLE = (
    "warmup_seconds",
    "repeats",
    "rounds",
    "timeout_seconds",
    "min_rounds",
    "max_rounds",
    "max_timing_seconds",
    "ratio_limit",
    "resolution",
    "clock",
    "fresh_workers",
)

#: The fields a protocol file states; the others belong to a run (rounds until decided).
PROTOCOL_FIELDS = (
    "warmup_seconds",
    "warmup_min_passes",
    "warmup_max_passes",
    "repeats",
    "cudnn_benchmark",
    "rounds",
    "timeout_seconds",
    "statistic",
)

_RANGES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("warmup_seconds", lambda v: v >= 0, "zero or more"),
    ("warmup_min_passes", lambda v: v >= 1, "at least 1"),
    ("warmup_max_passes", lambda v: v >= 1, "at least 1"),
    ("repeats", lambda v: v >= 1, "at least 1"),
    ("rounds", lambda v: v is None or v >= 1, "at least 1"),
    ("timeout_seconds", lambda v: v > 0, "positive"),
    ("min_rounds", lambda v: v >= 2, "at least 2"),
    ("max_timing_seconds", lambda v: v is None or v > 0, "positive"),
    ("ratio_limit", lambda v: v is None or v > 0, "positive"),
    ("resolution", lambda v: 0 < v < 1, "between 0 and 1"),
    ("clock", lambda v: v in ("wall", "cpu"), "wall or cpu"),
    ("fresh_workers", lambda v: isinstance(v, bool), "true or false"),
)


class TimingValueError(HarnessError):
    """A timing field outside its range; ``field`` names it so the caller can name its source."""

    def __init__(self, field: str, expected: str, value: Any) -> None:
        super().__init__(f"timing.{field}: must be {expected}, got {value}")
        self.field = field
        self.expected = expected
        self.value = value


@dataclass(frozen=True)
class TimingSettings:
    """How latencies are taken. The defaults are the ntire2022 protocol's (for tests and tools)."""

    warmup_seconds: float = 1.0  # warm-up time of each submission before each round
    warmup_min_passes: int = 1  # fewest warm-up forward passes
    warmup_max_passes: int = 50  # most warm-up forward passes
    repeats: int = 1  # timed calls per image, the median kept
    cudnn_benchmark: bool = False  # cuDNN autotuning during timing
    rounds: int | None = 5  # interleaved performance rounds per run; None: until decided (a run's)
    timeout_seconds: float = 3600.0  # time limit of one submission's worker
    statistic: Literal["mean", "median"] = "mean"  # the runtime figure constraints compare
    # Rounds until decided (harness.timing.sequential), set by a run, not by a protocol file:
    min_rounds: int = 5  # rounds before the first look
    max_rounds: int = 30  # the cap
    max_timing_seconds: float | None = None  # no new round after one lane has timed this long
    ratio_limit: float | None = None  # the runtime ratio each verdict is decided against
    resolution: float = 0.01  # stop once the interval is within this fraction either side
    # What the latencies are read on, set by a run: wall (the protocol's clocks) or cpu (the CPU
    # time a CPU run's forward pass consumed, harness.timing.ProcessCpuTimer; never the protocol's).
    clock: Literal["wall", "cpu"] = "wall"
    # Set by a run: every timed submission's worker is started afresh before each round after the
    # first, so that what a process keeps for its life (memory layout, placement) varies between
    # rounds and widens the interval instead of biasing the ratio (harness.runner.timing_loop).
    fresh_workers: bool = False

    def __post_init__(self) -> None:
        for field, valid, expected in _RANGES:
            value = getattr(self, field)
            if not valid(value):
                raise TimingValueError(field, expected, value)
        if self.max_rounds < self.min_rounds:
            raise TimingValueError("max_rounds", f"at least min_rounds ({self.min_rounds})", self.max_rounds)
        if self.warmup_min_passes > self.warmup_max_passes:
            raise TimingValueError(
                "warmup_min_passes",
                f"at most warmup_max_passes ({self.warmup_max_passes})",
                self.warmup_min_passes,
            )

    def overridden(self, **changes: Any) -> TimingSettings:
        """These settings with ``changes`` (None: keep this value); only :data:`OVERRIDABLE` fields."""
        unknown = sorted(set(changes) - set(OVERRIDABLE))
        if unknown:
            raise ValueError(f"timing fields a run may not change: {', '.join(unknown)}")
        return dataclasses.replace(
            self, **{key: value for key, value in changes.items() if value is not None}
        )

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
