"""How a run shares a device: the cold call alone, a bounded number of live workers, timing subgroups.

Thread tests here wait on the gate's own state (a waiter registered), never on sleeps, so they
pass or fail the same way on a loaded machine.
"""

from __future__ import annotations

import threading

import pytest

from harness.runner.device_sharing import DeviceGate, WorkerBudget, timing_subgroups


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
