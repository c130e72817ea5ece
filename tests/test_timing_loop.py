"""The round loop driven by an in-process null worker: fake latencies, exact expectations, no processes.

The null worker answers every timed image with a latency of its own table (a function of the round
and the image), so the runtime ratios, and with them each stop, are known in advance. The round
orders and the dither seeds are checked against the rules written out here (a first place cycling
through a shuffle of the names, the rest shuffled, each image's turns rotated by its index; every
seed derived from the run's, the lane, the subgroup, the round and the attempt).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

import numpy as np
import pytest

from harness.protocols import TimingSettings
from harness.runner import messages as msg
from harness.runner.audit import TimingAudit
from harness.runner.dither import derive_seed
from harness.runner.entries import SubgroupTimings
from harness.runner.lanes import Lane
from harness.runner.timing_loop import Subgroup, time_rounds

LANE = Lane(2, "cpu", "cpu", exclusive="cpu", node="local")
RUN_SEED = 41


class NullWorkers:
    """Workers that do nothing: ``latency[name](round, image)`` ms, every call written to ``calls``.

    ``round`` is the name's count of warm-ups so far, minus one. ``restart`` = (name, round,
    image): that call restarts the worker (its count of restarts goes up, the call still answers).
    ``fail`` = (name, round, image): that call fails the submission.
    """

    def __init__(
        self,
        latency: dict[str, Callable[[int, int], float]],
        restart: tuple[str, int, int] | None = None,
        fail: tuple[str, int, int] | None = None,
    ) -> None:
        self.latency = latency
        self.restart = restart
        self.fail = fail
        self.calls: list[tuple[str, str, object]] = []
        self.warmups = dict.fromkeys(latency, 0)
        self.restart_count = dict.fromkeys(latency, 0)
        self.failed_names: set[str] = set()

    def prepare(self, name: str, doing: str) -> None:
        self.calls.append(("prepare", name, doing))

    def renew(self, name: str) -> None:
        self.calls.append(("renew", name, None))

    def warm_up(self, name: str, request: msg.WarmUp, doing: str) -> int | None:
        if name in self.failed_names:
            return None
        self.calls.append(("warm_up", name, request.dither_seed))
        self.warmups[name] += 1
        return 3

    def time_image(self, name: str, request: msg.TimeImage, doing: str) -> msg.ImageTimed | None:
        if name in self.failed_names:
            return None
        self.calls.append(("time_image", name, (request.index, request.dither_seed)))
        where = (name, self.warmups[name] - 1, request.index)
        if where == self.fail:
            self.failed_names.add(name)
            return None
        if where == self.restart:
            self.restart = None
            self.restart_count[name] += 1
        return msg.ImageTimed(request.index, self.latency[name](self.warmups[name] - 1, request.index))

    def reserve_outputs(self, calls, kept) -> None:
        """Nothing to make room in."""

    def failed(self, name: str) -> bool:
        return name in self.failed_names

    def restarts(self, name: str) -> int:
        return self.restart_count[name]

    def cpu_seconds(self, name: str) -> float | None:
        return None  # as a worker in the coordinator's own process


def constant(ms: float) -> Callable[[int, int], float]:
    return lambda round_index, image: ms


def _run(
    workers: NullWorkers,
    names: list[str],
    baseline: str | None,
    timing: TimingSettings,
    *,
    images: int = 3,
    number: int = 0,
    clock: Callable[[], float] | None = None,
) -> tuple[dict[str, SubgroupTimings], list[dict]]:
    timings = {name: SubgroupTimings(LANE, number) for name in names}
    logs: list[dict] = []
    ticks = itertools.count()
    time_rounds(
        workers,
        Subgroup(lane=LANE.index, number=number, label=LANE.label, names=names, baseline=baseline),
        timings,
        timing,
        run_seed=RUN_SEED,
        images=images,
        on_round=logs.append,
        progress=lambda name, doing, done, total: None,
        clock=clock or (lambda: float(next(ticks))),
    )
    return timings, logs


def _orders(names: list[str], rounds: int, seed: int) -> list[list[str]]:
    """The rule of the round orders, written out: a first place cycling through a shuffle of the
    names, then the others shuffled, from one random.Random(seed)."""
    rng = random.Random(seed)
    firsts = list(names)
    rng.shuffle(firsts)
    orders = []
    for index in range(rounds):
        rest = [name for name in names if name != firsts[index % len(names)]]
        rng.shuffle(rest)
        orders.append([firsts[index % len(names)], *rest])
    return orders


@pytest.mark.parametrize("number", [0, 1])
def test_fixed_rounds_warm_everyone_up_then_interleave_images_in_each_rounds_shuffled_order(
    number: int,
) -> None:
    names = ["a", "b", "base"]
    workers = NullWorkers({"a": constant(5.0), "b": constant(7.0), "base": constant(10.0)})
    timings, logs = _run(workers, names, "base", TimingSettings(rounds=3), images=2, number=number)
    orders = _orders(names, 3, RUN_SEED + LANE.index + 1_000_003 * number)
    expected: list[tuple[str, str]] = [("prepare", name) for name in names]
    for order in orders:
        expected += [("warm_up", name) for name in order]
        expected += [("time_image", name) for name in order]  # image 0: the round's order
        expected += [("time_image", name) for name in [*order[1:], order[0]]]  # image 1: rotated by one
    assert [(kind, name) for kind, name, _ in workers.calls] == expected
    assert [log["order"] for log in logs] == orders
    assert all(log["lane"] == "cpu" for log in logs)
    assert all(("subgroup" in log) == (number > 0) for log in logs)
    assert timings["a"].latencies == [[5.0, 5.0]] * 3
    assert timings["base"].warmup_passes == [3, 3, 3]
    assert [log["timed_ms"] for log in logs] == [44.0] * 3  # (5 + 7 + 10) ms for each of 2 images


def test_fresh_workers_replace_every_open_submissions_worker_before_each_round_after_the_first() -> None:
    names = ["a", "b", "base"]
    workers = NullWorkers({"a": constant(5.0), "b": constant(7.0), "base": constant(10.0)})
    _, logs = _run(workers, names, "base", TimingSettings(rounds=3, fresh_workers=True), images=2)
    orders = [log["order"] for log in logs]
    expected: list[tuple[str, str]] = [("prepare", name) for name in names]
    for number, order in enumerate(orders):
        if number > 0:  # a fresh process, its inputs copied, before the round's warm-up
            expected += [(kind, name) for name in order for kind in ("renew", "prepare")]
        expected += [("warm_up", name) for name in order]
        expected += [("time_image", name) for name in order]
        expected += [("time_image", name) for name in [*order[1:], order[0]]]
    assert [(kind, name) for kind, name, _ in workers.calls] == expected
    # The same rounds without it: no worker is replaced.
    plain = NullWorkers({"a": constant(5.0), "base": constant(10.0)})
    _run(plain, ["a", "base"], "base", TimingSettings(rounds=3), images=2)
    assert not [call for call in plain.calls if call[0] == "renew"]


def test_every_call_gets_a_dither_seed_derived_from_the_recorded_round_seed() -> None:
    workers = NullWorkers({"a": constant(5.0), "base": constant(10.0)})
    _, logs = _run(workers, ["a", "base"], "base", TimingSettings(rounds=2), images=2, number=1)
    round_seeds = [derive_seed(RUN_SEED, "dither", LANE.index, 1, round_index, 0) for round_index in range(2)]
    assert [log["dither_seed"] for log in logs] == round_seeds
    assert len(set(round_seeds)) == 2
    warm_ups = [(name, seed) for kind, name, seed in workers.calls if kind == "warm_up"]
    assert sorted(warm_ups) == sorted(
        (name, derive_seed(seed, name, "warm-up")) for seed in round_seeds for name in ("a", "base")
    )
    timed = [(name, call) for kind, name, call in workers.calls if kind == "time_image"]
    assert sorted(timed) == sorted(
        (name, (image, derive_seed(seed, name, image)))
        for seed in round_seeds
        for name in ("a", "base")
        for image in range(2)
    )


def _until_decided(limit: float | None, **changes: object) -> TimingSettings:
    return TimingSettings(rounds=None, min_rounds=3, max_rounds=6, ratio_limit=limit, **changes)


def test_a_decided_submission_stops_while_the_baseline_is_timed_beside_the_open_one() -> None:
    # fast: 0.5 x the baseline every round, an interval of zero width under the limit from round 3.
    # close: 0.9 and 1.1 x in turn, an interval astride 1.0 until the cap of 6 rounds.
    workers = NullWorkers(
        {
            "fast": constant(5.0),
            "close": lambda round_index, image: 9.0 if round_index % 2 == 0 else 11.0,
            "base": constant(10.0),
        }
    )
    timings, logs = _run(workers, ["fast", "close", "base"], "base", _until_decided(1.0))
    assert len(logs) == 6
    assert [len(timings[name].latencies) for name in ("fast", "close", "base")] == [3, 6, 6]
    assert (timings["fast"].stop_reason, timings["close"].stop_reason) == ("decided", "cap")
    assert [look.stop for look in timings["fast"].looks] == [None, None, "decided"]
    assert [look.stop for look in timings["close"].looks] == [None] * 5 + ["cap"]
    assert timings["fast"].looks[-1].ratio == pytest.approx(0.5)
    assert timings["fast"].looks[-1].interval == pytest.approx((0.5, 0.5))
    assert timings["base"].looks == [] and timings["base"].stop_reason is None
    assert all("fast" not in log["order"] for log in logs[3:])
    assert all(sorted(log["order"]) == ["base", "close"] for log in logs[3:])


def test_without_a_limit_a_narrow_interval_stops_on_resolution_and_the_baseline_with_it() -> None:
    workers = NullWorkers({"fast": constant(5.0), "base": constant(10.0)})
    timings, logs = _run(workers, ["fast", "base"], "base", _until_decided(None))
    assert len(logs) == 3
    assert timings["fast"].stop_reason == "resolution"
    assert len(timings["base"].latencies) == 3


def test_past_the_time_limit_an_open_submission_stops_at_the_cap_after_min_rounds() -> None:
    workers = NullWorkers(
        {"close": lambda round_index, image: 9.0 if round_index % 2 == 0 else 11.0, "base": constant(10.0)}
    )
    # The fake clock moves one second per reading: the limit is passed after the first round.
    timings, logs = _run(workers, ["close", "base"], "base", _until_decided(1.0, max_timing_seconds=1.0))
    assert len(logs) == 3
    assert timings["close"].stop_reason == "cap"
    # The looks are the rule's answers; the time limit, not the rule, stopped it.
    assert [look.stop for look in timings["close"].looks] == [None, None, None]


def test_without_a_baseline_everyone_is_timed_the_minimum_rounds_and_nothing_is_decided() -> None:
    workers = NullWorkers({"a": constant(5.0), "b": constant(6.0)})
    timings, logs = _run(workers, ["a", "b"], None, _until_decided(1.0))
    assert len(logs) == 3
    assert all(len(timings[name].latencies) == 3 and not timings[name].looks for name in ("a", "b"))


def test_a_round_with_a_restarted_worker_is_measured_again_with_new_seeds() -> None:
    workers = NullWorkers({"a": constant(5.0), "base": constant(10.0)}, restart=("a", 1, 1))
    timings, logs = _run(workers, ["a", "base"], "base", TimingSettings(rounds=2), images=2)
    assert len(logs) == 2
    assert logs[1]["repeated_after_restart"] == ["a"]
    assert logs[1]["dither_seed"] == derive_seed(RUN_SEED, "dither", LANE.index, 0, 1, 1)
    assert [(kind, name) for kind, name, _ in workers.calls if kind == "prepare"] == [
        ("prepare", "a"),
        ("prepare", "base"),
        ("prepare", "a"),
    ]
    # The first attempt's figures are dropped: one list per round, one warm-up per round.
    assert timings["a"].latencies == [[5.0, 5.0], [5.0, 5.0]]
    assert timings["base"].warmup_passes == [3, 3]


def test_a_submission_that_fails_stops_being_timed_and_the_others_go_on() -> None:
    workers = NullWorkers({"a": constant(5.0), "b": constant(5.0), "base": constant(10.0)}, fail=("b", 0, 0))
    timings, logs = _run(workers, ["a", "b", "base"], "base", _until_decided(1.0))
    assert timings["a"].stop_reason == "decided"
    assert timings["b"].stop_reason is None and timings["b"].looks == []
    assert all("b" not in log["order"] for log in logs[1:])


class SeenByWorkers(NullWorkers):
    """Null workers that also keep outputs: each request a worker receives is written to ``seen``,
    whether the coordinator keeps that call's output or not (which only ``kept`` records).

    An output is the image's shape filled with a value made from the request's dither seed; the
    reply says its shape, as a worker's does.
    """

    SHAPE = (1, 3, 8, 8)

    def __init__(self, names: list[str]) -> None:
        super().__init__({name: constant(10.0) for name in names})
        self.seen: list[tuple[str, object]] = []
        self.kept: list[tuple[str, int, int]] = []

    def prepare(self, name: str, doing: str) -> None:
        self.seen.append((name, msg.PrepareTiming()))

    def warm_up(self, name: str, request: msg.WarmUp, doing: str) -> int | None:
        self.seen.append((name, request))
        return super().warm_up(name, request, doing)

    def _values(self, request: msg.TimeImage) -> np.ndarray:
        return np.full(self.SHAPE, (request.dither_seed % 251) / 251, np.float32)

    def time_image(self, name: str, request: msg.TimeImage, doing: str) -> msg.ImageTimed | None:
        self.seen.append((name, request))
        reply = super().time_image(name, request, doing)
        assert reply is not None
        return msg.ImageTimed(request.index, reply.milliseconds, 0, None, self.SHAPE)

    def time_keeping_output(
        self, name: str, request: msg.TimeImage, doing: str
    ) -> tuple[msg.ImageTimed, np.ndarray | str] | None:
        reply = self.time_image(name, request, doing)  # what the worker receives: the same request
        assert reply is not None
        self.kept.append((name, request.index, request.dither_seed))
        return reply, self._values(request)

    def output_pixels(self, name: str, values: np.ndarray) -> np.ndarray:
        return np.round(values[0].transpose(1, 2, 0) * 255).astype(np.uint8)


def test_a_worker_receives_the_same_requests_whichever_calls_the_audit_draws() -> None:
    names, images, rounds = ["a", "base"], 4, 3
    timing = TimingSettings(rounds=rounds)
    streams, draws = [], []
    for seed in (1, 2):
        audit = TimingAudit(seed=seed, images=images, min_rounds=rounds, baseline="base")
        workers = SeenByWorkers(names)
        time_rounds(
            workers,
            Subgroup(lane=LANE.index, number=0, label=LANE.label, names=names, baseline="base"),
            {name: SubgroupTimings(LANE, 0) for name in names},
            timing,
            run_seed=RUN_SEED,
            images=images,
            on_round=lambda log: None,
            progress=lambda name, doing, done, total: None,
            audit=audit,
        )
        # The rounds' requests: each name's prepare, then per round its warm-up and its images.
        # (The audit's own requests come after every round, when the draws no longer matter.)
        streams.append(workers.seen[: len(names) * (1 + rounds * (1 + images))])
        # Each name's call of each image was kept in the round drawn for that image.
        in_rounds = workers.kept[: len(names) * images]
        drawn = {
            (name, image, derive_seed(derive_seed(RUN_SEED, "dither", LANE.index, 0, draw, 0), name, image))
            for image, draw in audit.audited_round.items()
            for name in names
        }
        assert set(in_rounds) == drawn and len(in_rounds) == len(drawn)
        draws.append(audit.audited_round)
    assert draws[0] != draws[1]  # the two runs keep different calls
    assert streams[0] == streams[1]  # and every worker received exactly the same requests
