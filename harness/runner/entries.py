"""A run's submissions as the coordinator knows them: who each is, what its accuracy pass found so
far, and its timings per lane.

An :class:`Entry` starts with only its submission and role; the coordinator's steps fill it in
(weights, cache key, workers, timings) and mark it failed with one reason when anything goes wrong.
Its :class:`AccuracyState` is what the accuracy pass checkpoints in the cache's partial slot, so a
killed run resumes where it stopped; on disk it is a plain JSON object with the same five keys it
always had.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.complexity import RECORD_FIELDS
from harness.integrity import Check
from harness.runner import messages as msg
from harness.runner.cache import PartialSlot
from harness.runner.lanes import Lane, WorkerHandle
from harness.submissions import ResolvedWeights, Submission
from harness.timing.sequential import Look, StopReason


@dataclass
class AccuracyState:
    """What the accuracy pass (and the complexity count) found so far for one submission."""

    per_image: list[dict[str, Any]] = field(default_factory=list)  # as the worker scored each image
    first_call_ms: float | None = None  # the cold first call; None until image 0 is scored fresh
    max_memory_mb: float | None = None  # peak device memory over every shard
    complexity: dict[str, Any] | None = None  # params, FLOPs, ...; counted after the timing rounds
    resumed: bool = False  # some images were scored by an earlier, killed run

    @classmethod
    def from_slot(cls, saved: Mapping[str, Any] | None) -> AccuracyState:
        """The state a partial slot holds (empty for a new slot); slots of older runs may lack ``resumed``."""
        if saved is None:
            return cls()
        return cls(
            per_image=list(saved.get("per_image", [])),
            first_call_ms=saved.get("first_call_ms"),
            max_memory_mb=saved.get("max_memory_mb"),
            complexity=saved.get("complexity"),
            resumed=bool(saved.get("resumed")),
        )

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AccuracyState:
        """The accuracy figures of a complete cached record, for a run that times it again."""
        return cls(
            per_image=list(record["per_image"]),
            first_call_ms=record["runtime_ms"]["first_call_ms"],
            max_memory_mb=record["max_memory_mb"],
            complexity={key: record.get(key) for key in RECORD_FIELDS},
            resumed=bool(record.get("resumed")),
        )

    def to_slot(self) -> dict[str, Any]:
        """The JSON object a partial slot keeps (:meth:`from_slot` reads it back)."""
        return {
            "per_image": self.per_image,
            "first_call_ms": self.first_call_ms,
            "max_memory_mb": self.max_memory_mb,
            "complexity": self.complexity,
            "resumed": self.resumed,
        }


@dataclass(eq=False)
class SubgroupTimings:
    """One submission's measurements in one timing subgroup of one lane: per round, each image's latency."""

    lane: Lane
    group: int = 0  # which of the lane's timing subgroups (each beside the baseline)
    latencies: list[list[float]] = field(default_factory=list)
    warmup_passes: list[int] = field(default_factory=list)
    looks: list[Look] = field(default_factory=list)  # rounds until decided: the rule's answer per round
    stop_reason: StopReason | None = None
    checks: list[Check] = field(default_factory=list)  # the timing audit's integrity checks


@dataclass(eq=False)
class Entry:
    """One submission of the run and what is known about it so far."""

    submission: Submission
    role: str
    weights_argument: Path | None
    weights: ResolvedWeights | None = None
    key: str | None = None
    cached_record: dict[str, Any] | None = None  # its complete record from the cache, when there is one
    slot: PartialSlot | None = None  # where this run checkpoints the accuracy pass
    state: AccuracyState = field(default_factory=AccuracyState)
    workers: dict[int, WorkerHandle] = field(default_factory=dict)  # by lane index
    loaded: msg.Loaded | None = None
    lane: Lane | None = None  # where it is timed
    # By (lane index, timing subgroup); the baseline is timed in every subgroup of every lane.
    timings: dict[tuple[int, int], SubgroupTimings] = field(default_factory=dict)
    timing_key: tuple[int, int] | None = None  # where its own figures were taken
    failure: str | None = None
    cell: str = "fp32"  # how the model runs (harness.cells); fp32 eager is the protocol's

    @property
    def name(self) -> str:
        return self.submission.name

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def retries(self) -> list[str]:
        return [retry for worker in self.workers.values() for retry in worker.retries]

    def checkpoint(self) -> None:
        """Write the accuracy state to the entry's partial slot."""
        assert self.slot is not None
        self.slot.save(self.state.to_slot())


def make_entries(
    submissions: Sequence[Submission],
    baseline: Submission | None,
    weights: Path | None,
    cell: str = "fp32",
) -> list[Entry]:
    """The entries of a run: each submission (with ``weights`` in place of its own, when given),
    then the baseline with its own weights unless it is one of the submissions."""
    entries = [Entry(submission, "submission", weights, cell=cell) for submission in submissions]
    if baseline is not None and baseline.name not in {submission.name for submission in submissions}:
        entries.append(Entry(baseline, "baseline", None, cell=cell))
    return entries
