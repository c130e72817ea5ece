"""A submission's accuracy state as the cache's partial slot keeps it, and a run's entries."""

from __future__ import annotations

from pathlib import Path

from harness.runner.cache import ResultCache
from harness.runner.entries import AccuracyState, make_entries
from tests.test_workers import _write_submission


def test_the_slot_keeps_the_same_json_object_as_before_the_state_was_typed(tmp_path: Path) -> None:
    state = AccuracyState(
        per_image=[{"name": "img0", "psnr_rgb": 30.5}],
        first_call_ms=12.5,
        max_memory_mb=3.0,
        complexity={"params": 7},
        resumed=True,
    )
    slot = ResultCache(tmp_path).open_partial("k")
    slot.save(state.to_slot())
    slot.release(remove=False)
    reopened = ResultCache(tmp_path).open_partial("k")
    assert reopened.state == {
        "per_image": [{"name": "img0", "psnr_rgb": 30.5}],
        "first_call_ms": 12.5,
        "max_memory_mb": 3.0,
        "complexity": {"params": 7},
        "resumed": True,
    }
    assert AccuracyState.from_slot(reopened.state) == state
    reopened.release(remove=True)


def test_a_new_slot_and_a_slot_written_before_resumed_was_kept_start_unresumed() -> None:
    assert AccuracyState.from_slot(None) == AccuracyState()
    older = {"per_image": [], "first_call_ms": None, "max_memory_mb": None, "complexity": None}
    assert AccuracyState.from_slot(older).resumed is False


def test_a_cached_record_gives_its_accuracy_figures_for_a_run_that_times_it_again() -> None:
    record = {
        "per_image": [{"name": "img0"}],
        "runtime_ms": {"first_call_ms": 4.0},
        "max_memory_mb": 2.0,
        "params": 10,
        "flops": 20,
        "activations": 30,
        "num_conv": 4,
        "resumed": False,
    }
    state = AccuracyState.from_record(record)
    assert (state.per_image, state.first_call_ms, state.max_memory_mb, state.resumed) == (
        [{"name": "img0"}],
        4.0,
        2.0,
        False,
    )
    assert {"params": 10, "flops": 20, "activations": 30, "num_conv": 4}.items() <= state.complexity.items()


def test_the_baseline_joins_the_entries_once_with_its_own_weights(tmp_path: Path) -> None:
    a = _write_submission(tmp_path / "a", "a")
    base = _write_submission(tmp_path / "base", "base")
    mine = tmp_path / "mine.pth"
    entries = make_entries([a], base, mine, cell="bf16")
    assert [(e.name, e.role, e.weights_argument, e.cell) for e in entries] == [
        ("a", "submission", mine, "bf16"),
        ("base", "baseline", None, "bf16"),
    ]
    both = make_entries([a, base], base, None)
    assert [(e.name, e.role) for e in both] == [("a", "submission"), ("base", "submission")]
