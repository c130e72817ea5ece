"""Who does what in a run, decided without a worker: shards, the accuracy queue, the lane groups.

Every expected assignment is written out by hand from the rules in the module's docstring.
"""

from __future__ import annotations

from collections import deque

from harness.runner.scheduling import (
    ShardQueue,
    assign_lanes,
    next_submission,
    shard_count,
    shards,
    worth_helping,
)


def test_shards_are_contiguous_nearly_equal_and_never_empty() -> None:
    assert shards(list(range(10)), 4) == [(0, 1, 2), (3, 4, 5), (6, 7), (8, 9)]
    assert shards([3, 5, 9], 5) == [(3,), (5,), (9,)]  # never more shards than images
    assert shards([4, 7], 1) == [(4, 7)]
    assert shards([1, 2], 0) == [(1, 2)]  # at least one


def test_one_lane_scores_a_submission_in_one_shard_several_in_two_per_lane() -> None:
    assert [shard_count(lanes) for lanes in (1, 2, 3)] == [1, 4, 6]


def test_the_queue_cuts_each_submissions_images_for_the_lanes() -> None:
    queue = ShardQueue.of({"big": range(8), "small": [5, 6], "done": []}, lanes=2)
    assert queue.order == ["big", "small", "done"]
    assert queue.pending == {
        "big": deque([(0, 1), (2, 3), (4, 5), (6, 7)]),
        "small": deque([(5,), (6,)]),
        "done": deque(),
    }
    assert queue.lanes_on == {"big": set(), "small": set(), "done": set()}


def _run(
    queue: ShardQueue, lanes: list[int], start_seconds: list[float]
) -> list[tuple[int, str, tuple[int, ...]]]:
    """Lanes asking in turn until none has anything left: (lane, submission, shard) in order."""
    taken = []
    idle: set[int] = set()
    while len(idle) < len(lanes):
        for lane in lanes:
            name = next_submission(queue, lane, failed=(), start_seconds=start_seconds)
            if name is None:
                idle.add(lane)
                continue
            taken.append((lane, name, queue.take(name, lane)))
    return taken


def test_a_lane_keeps_to_its_submission_then_starts_another_and_helps_no_one_unmeasured() -> None:
    queue = ShardQueue.of({"big": range(8), "small": range(2)}, lanes=2)
    # Nothing measured yet: no lane helps another, each finishes what it started.
    assert _run(queue, [0, 1], start_seconds=[]) == [
        (0, "big", (0, 1)),
        (1, "small", (0,)),
        (0, "big", (2, 3)),
        (1, "small", (1,)),
        (0, "big", (4, 5)),
        (0, "big", (6, 7)),
    ]
    assert queue.lanes_on == {"big": {0}, "small": {1}}


def test_a_lane_helps_when_the_time_saved_exceeds_a_worker_start() -> None:
    queue = ShardQueue.of({"big": range(8), "small": range(2)}, lanes=2)
    assert (queue.take("big", 0), queue.take("small", 1), queue.take("small", 1)) == ((0, 1), (0,), (1,))
    queue.scored("big", 1.0)  # 1 s per image
    # Left on big: 3 shards of 2 images = 6 s; one more lane saves 6 / 2 = 3 s.
    assert not worth_helping(queue, "big", start_seconds=[2.0, 4.0])  # 3 s is not more than their mean, 3 s
    assert worth_helping(queue, "big", start_seconds=[2.5])
    assert next_submission(queue, 1, failed=(), start_seconds=[2.5]) == "big"
    assert next_submission(queue, 1, failed=(), start_seconds=[3.5]) is None


def test_an_unmeasured_submission_is_judged_by_every_submissions_time_per_image() -> None:
    queue = ShardQueue.of({"a": range(4), "b": range(4)}, lanes=2)
    queue.take("a", 0)
    queue.scored("b", 2.0)  # only b measured
    # a: 3 shards of 1 image left at b's 2 s per image = 6 s, shared by 2 lanes = 3 s saved.
    assert worth_helping(queue, "a", start_seconds=[2.9])
    assert not worth_helping(queue, "a", start_seconds=[3.1])


def test_a_failed_submission_gets_no_more_shards() -> None:
    queue = ShardQueue.of({"a": range(4), "b": range(4)}, lanes=2)
    assert next_submission(queue, 0, failed={"a"}, start_seconds=[]) == "b"
    assert next_submission(queue, 0, failed={"a", "b"}, start_seconds=[]) is None


def test_submissions_go_to_the_lanes_in_turn_and_the_baseline_beside_each() -> None:
    names = ["a", "base", "b", "c"]
    assert assign_lanes(names, "base", 2) == {0: ["a", "c", "base"], 1: ["b", "base"]}
    assert assign_lanes(names, "base", 1) == {0: ["a", "b", "c", "base"]}
    assert assign_lanes(["a", "base"], "base", 3) == {0: ["a", "base"]}  # idle lanes time nothing


def test_the_baseline_alone_is_timed_on_lane_0_and_a_missing_one_nowhere() -> None:
    assert assign_lanes(["base"], "base", 2) == {0: ["base"]}
    assert assign_lanes(["a", "b"], "base", 2) == {0: ["a"], 1: ["b"]}  # the baseline failed
    assert assign_lanes(["a", "b", "c"], None, 2) == {0: ["a", "c"], 1: ["b"]}
