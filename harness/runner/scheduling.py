"""Which lane does what: the accuracy pass's shards and the performance pass's lane groups.

Everything here decides on plain values (submission names, lane indices, measured seconds) and
starts nothing, so the decisions are tested without a worker. The coordinator asks, under its lock,
and carries the answers out.

Accuracy pass: each submission's images still to score are cut into shards (two per lane when there
are several lanes). A lane keeps to the submissions whose model it has loaded: it finishes the
shards of one it started, then starts one no lane has, and only then helps another lane, when the
time that saves (the work left, shared by one more lane) exceeds what it costs (starting a worker
and loading the model, as measured so far in this run). So lanes neither idle while one big
submission is scored nor load models for nothing.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

Shard = tuple[int, ...]


def shards(indices: Sequence[int], count: int) -> list[Shard]:
    """``indices`` cut into at most ``count`` contiguous, nearly equal shards (none empty)."""
    count = max(1, min(count, len(indices)))
    size, extra = divmod(len(indices), count)
    cut, start = [], 0
    for number in range(count):
        end = start + size + (1 if number < extra else 0)
        cut.append(tuple(indices[start:end]))
        start = end
    return cut


def shard_count(lanes: int) -> int:
    """Shards per submission: one for a single lane, else two per lane (so lanes can share the tail)."""
    return 1 if lanes == 1 else 2 * lanes


@dataclass
class ShardQueue:
    """The accuracy pass's work left and who works on what.

    ``order`` is the order submissions are started in (the coordinator puts the biggest weights
    first, so the small ones fill the lanes' last gaps).
    """

    order: list[str]
    pending: dict[str, deque[Shard]]
    lanes_on: dict[str, set[int]] = field(default_factory=dict)  # the lanes that scored some of it
    per_image_s: dict[str, list[float]] = field(default_factory=dict)  # scoring time per image, no loading

    @classmethod
    def of(cls, todo: dict[str, Sequence[int]], lanes: int) -> ShardQueue:
        """The queue of ``todo`` (submission -> images still to score), in that order."""
        return cls(
            order=list(todo),
            pending={
                name: deque(shards(images, shard_count(lanes)) if images else [])
                for name, images in todo.items()
            },
            lanes_on={name: set() for name in todo},
            per_image_s={name: [] for name in todo},
        )

    def take(self, name: str, lane: int) -> Shard:
        """``lane`` takes the next shard of ``name``."""
        self.lanes_on[name].add(lane)
        return self.pending[name].popleft()

    def scored(self, name: str, seconds_per_image: float) -> None:
        """A shard of ``name`` took this long per image on a worker that was already loaded."""
        self.per_image_s[name].append(seconds_per_image)


def worth_helping(queue: ShardQueue, name: str, start_seconds: Sequence[float]) -> bool:
    """Whether one more lane on ``name`` saves more time than starting its worker there costs.

    The time per image is ``name``'s own when measured, else every submission's so far;
    ``start_seconds`` are the worker starts (and loads) measured so far in the run. Without both
    measurements nobody helps.
    """
    measured = queue.per_image_s[name] or [t for times in queue.per_image_s.values() for t in times]
    if not measured or not start_seconds:
        return False
    left = sum(len(shard) for shard in queue.pending[name]) * statistics.fmean(measured)
    saved = left / (len(queue.lanes_on[name]) + 1)  # one more lane shares what is left
    return saved > statistics.fmean(start_seconds)


def next_submission(
    queue: ShardQueue, lane: int, *, failed: Collection[str], start_seconds: Sequence[float]
) -> str | None:
    """The submission ``lane`` scores a shard of next: one it started, else one nobody started,
    else one worth helping (in ``queue.order`` within each); None when it has nothing to do."""
    waiting = [name for name in queue.order if name not in failed and queue.pending[name]]
    mine = [name for name in waiting if lane in queue.lanes_on[name]]
    unstarted = [name for name in waiting if not queue.lanes_on[name]]
    helping = [name for name in waiting if worth_helping(queue, name, start_seconds)]
    return next(iter(mine or unstarted or helping), None)


def assign_lanes(names: Sequence[str], baseline: str | None, lanes: int) -> dict[int, list[str]]:
    """The performance pass's groups: lane index -> the names timed there, in timing order.

    Each submission (``names`` in order, the baseline left out) goes to the next lane in turn; the
    baseline is timed beside every lane's group, last, and on lane 0 alone when nothing else is
    timed.
    """
    groups: dict[int, list[str]] = {}
    others = [name for name in names if name != baseline]
    for number, name in enumerate(others):
        groups.setdefault(number % lanes, []).append(name)
    if baseline is not None and baseline in names:
        for index in groups or {0: []}:
            groups.setdefault(index, []).append(baseline)
    return groups
