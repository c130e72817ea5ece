"""How a run shares a device: the cold call alone, a bounded number of live workers, timing subgroups.

Thread tests here wait on the gate's own state (a waiter registered), never on sleeps, so they
pass or fail the same way on a loaded machine.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
import torch

from harness.runner import evaluate_run
from harness.runner import messages as msg
from harness.runner.device_sharing import DeviceGate, WorkerBudget, timing_subgroups
from harness.runner.lanes import LocalExecutor
from tests.test_workers import _config, _pairs, _write_submission


def _wait_until(gate: DeviceGate, predicate) -> None:
    with gate._condition:
        assert gate._condition.wait_for(predicate, timeout=60)


def test_a_cold_call_waits_for_running_accuracy_work_and_blocks_new_work_until_it_is_done() -> None:
    gate = DeviceGate()
    order: list[str] = []
    release_shard = threading.Event()

    def shard() -> None:
        with gate.sharing("cuda:0"):
            order.append("shard starts")
            release_shard.wait()
            order.append("shard ends")

    def cold_call() -> None:
        with gate.alone("cuda:0"):
            order.append("cold call")

    def later_shard() -> None:
        with gate.sharing("cuda:0"):
            order.append("later shard")

    first = threading.Thread(target=shard)
    first.start()
    _wait_until(gate, lambda: gate._sharing.get("cuda:0") == 1)
    cold = threading.Thread(target=cold_call)
    cold.start()
    _wait_until(gate, lambda: gate._waiting_alone.get("cuda:0") == 1)
    later = threading.Thread(target=later_shard)
    later.start()
    assert order == ["shard starts"]  # neither the cold call nor a new shard got in
    release_shard.set()
    for thread in (first, cold, later):
        thread.join(timeout=60)
    assert order == ["shard starts", "shard ends", "cold call", "later shard"]


def test_work_on_another_device_is_not_held_up_by_a_cold_call() -> None:
    gate = DeviceGate()
    with gate.alone("cuda:0"), gate.sharing("cuda:1"), gate.sharing("cuda:1"):
        assert gate._sharing["cuda:1"] == 2


def test_a_full_device_closes_its_least_recently_used_idle_worker_first() -> None:
    budget = WorkerBudget(per_device=3)
    for worker in ("a", "b", "c"):
        budget.started("cuda:0", worker)
    budget.started("cuda:1", "x")
    with budget.using("cuda:0", "a"):  # a is now the most recent, and busy
        assert budget.to_close_before_start("cuda:0") == ["b"]
    with budget.using("cuda:0", "b"), budget.using("cuda:0", "c"):
        assert budget.to_close_before_start("cuda:0") == ["a"]
    budget.closed("cuda:0", "a")
    assert budget.live("cuda:0") == ["b", "c"]
    assert budget.to_close_before_start("cuda:0") == []
    assert budget.to_close_before_start("cuda:1") == []


def test_busy_workers_are_never_closed_even_when_the_device_is_over_its_budget() -> None:
    budget = WorkerBudget(per_device=2)
    budget.started("cpu", "a")
    budget.started("cpu", "b")
    with budget.using("cpu", "a"), budget.using("cpu", "b"):
        assert budget.to_close_before_start("cpu") == []


def test_a_budget_below_a_submission_and_its_baseline_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        WorkerBudget(per_device=1)


@pytest.mark.parametrize(
    ("count", "per_device", "sizes"),
    [
        (0, 8, []),
        (3, 8, [3]),
        (7, 8, [7]),
        (8, 8, [4, 4]),
        (15, 8, [5, 5, 5]),
        (44, 8, [7, 7, 6, 6, 6, 6, 6]),
    ],
)
def test_timing_subgroups_fit_the_budget_beside_the_baseline_and_are_even(
    count: int, per_device: int, sizes: list[int]
) -> None:
    names = [f"s{number}" for number in range(count)]
    groups = timing_subgroups(names, per_device)
    assert [len(group) for group in groups] == sizes
    assert [name for group in groups for name in group] == names  # each once, in order


# -- the rules in a real run: worker processes on CPU lanes, watched through their executor ---------


class _Watched:
    """A worker handle that logs each request's start and end, and its close, in one event list."""

    def __init__(self, handle, events: list, lane, name: str, lock: threading.Lock) -> None:
        self.handle, self.events, self.lane, self.name, self.lock = handle, events, lane, name, lock
        self.retries = handle.retries

    def request(self, request, on_progress=None, doing=""):
        cold = isinstance(request, msg.Accuracy) and request.time_first_call
        with self.lock:
            self.events.append(("start", self.lane.exclusive, self.name, cold))
        try:
            return self.handle.request(request, on_progress=on_progress, doing=doing)
        finally:
            with self.lock:
                self.events.append(("end", self.lane.exclusive, self.name, cold))

    def request_copying_output(self, request, into, doing="", keep=True):
        with self.lock:
            self.events.append(("start", self.lane.exclusive, self.name, False))
        try:
            return self.handle.request_copying_output(request, into, doing=doing, keep=keep)
        finally:
            with self.lock:
                self.events.append(("end", self.lane.exclusive, self.name, False))

    def kill(self) -> None:
        self.handle.kill()

    def cpu_seconds(self) -> float | None:
        return self.handle.cpu_seconds()

    def close(self) -> None:
        with self.lock:
            self.events.append(("close", self.lane.exclusive, self.name, False))
        self.handle.close()


class _WatchingExecutor(LocalExecutor):
    """Local CPU lanes whose workers are watched, and whose NVML snapshots are logged events."""

    def __init__(self, lanes: int, device: str = "cpu") -> None:
        super().__init__([torch.device(device)] * lanes)
        self.events: list[tuple] = []
        self.lock = threading.Lock()

    def start(self, lane, name, load, log_path, budget_s):
        with self.lock:
            self.events.append(("open", lane.exclusive, name, False))
        return _Watched(
            super().start(lane, name, load, log_path, budget_s), self.events, lane, name, self.lock
        )

    def snapshot(self, lane):
        with self.lock:
            self.events.append(("snapshot", lane.exclusive, f"lane{lane.index}", False))
            return {"taken": len(self.events)}


def _tiny_run(
    tmp_path: Path, count: int, lanes: int, device: str = "cpu", **config
) -> tuple[dict, list[tuple]]:
    subs = [_write_submission(tmp_path / f"s{number}", f"s{number}") for number in range(count)]
    baseline = _write_submission(tmp_path / "base", "base")
    executor = _WatchingExecutor(lanes, device)
    run_config = dataclasses.replace(_config(tmp_path, **config), device=torch.device(device))
    run = evaluate_run(subs, _pairs(3), run_config, baseline=baseline, executor=executor)
    return run, executor.events


def test_live_workers_on_a_device_never_exceed_its_budget_and_each_subgroup_has_its_baseline(
    tmp_path: Path,
) -> None:
    run, events = _tiny_run(tmp_path, count=5, lanes=1, workers_per_device=3)
    live, most = 0, 0
    for kind, *_ in events:
        live += {"open": 1, "close": -1}.get(kind, 0)
        most = max(most, live)
    assert most == 3
    records = {record["submission"]: record for record in run["results"]}
    assert all(record["status"] == "ok" for record in records.values())
    # Five submissions, two per subgroup beside the baseline: subgroups 0, 0, 1, 1, 2.
    assert [entry.get("subgroup", 0) for entry in run["timing"]["round_log"]] == [0, 0, 1, 1, 2, 2]
    for number in range(5):
        pairing = records[f"s{number}"]["pairing"]
        assert pairing["baseline"] == "base" and len(pairing["round_ratios"]) == 2
        assert set(run["timing"]["round_log"][2 * (number // 2)]["order"]) >= {f"s{number}", "base"}


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda:0",
            marks=[
                pytest.mark.cuda,
                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
            ],
        ),
    ],
)
def test_a_cold_first_call_never_overlaps_other_work_on_its_device(tmp_path: Path, device: str) -> None:
    _, events = _tiny_run(tmp_path, count=3, lanes=2, device=device)  # --devices cuda:0,cuda:0
    running: set[tuple[str, bool]] = set()
    colds = 0
    for kind, device, name, cold in events:
        if kind == "start":
            if cold or any(is_cold for _, is_cold in running):
                assert not running, f"{name} started while {running} ran on {device}"
            running.add((name, cold))
            colds += cold
        elif kind == "end":
            running.discard((name, cold))
    assert colds == 4  # three submissions and the baseline, each cold once


def test_each_lane_s_device_state_is_taken_before_and_after_timing_while_its_workers_are_up(
    tmp_path: Path,
) -> None:
    run, events = _tiny_run(tmp_path, count=2, lanes=2)
    snapshots = [index for index, event in enumerate(events) if event[0] == "snapshot"]
    timed = [index for index, event in enumerate(events) if event[0] == "start"]
    first_close = next(index for index, event in enumerate(events) if event[0] == "close")
    assert len(snapshots) == 4
    assert snapshots[1] < timed[-1] and snapshots[-1] < first_close  # before timing ends / anything closes
    for lane in run["lanes"]:
        assert set(lane["device_state"]) == {"before", "after"}
        assert lane["device_state"]["before"]["taken"] < lane["device_state"]["after"]["taken"]
    assert run["device_state"] == run["lanes"][0]["device_state"]
