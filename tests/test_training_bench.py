"""`esr bench train`: the JSON it writes, and the verdict on issue 5's targets.

The real measurement is slow (and its ratios only mean something on an idle machine), so the CLI
test runs the smallest case end to end — two child processes on the CPU — and checks the shape of
the record and that both forms reach the same loss; the verdict is tested on hand-made records.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness.cli import main
from harness.training.bench import target_verdicts


def test_bench_train_writes_the_documented_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench.json"
    code = main(["bench", "train", "--patch", "12", "--batch", "1", "--steps", "1", "--device", "cpu",
                 "--json", str(out)])  # fmt: skip
    assert code == 0
    record = json.loads(out.read_text())
    assert set(record) == {"device", "results"}
    results = record["results"]
    assert [(r["patch"], r["batch"], r["mode"]) for r in results] == [(12, 1, "explicit"), (12, 1, "online")]
    for r in results:
        assert r["step_ms"] > 0 and math.isfinite(r["loss"])
        # Whole-process peak RSS of the child, never below the footprint it had before step 1.
        assert r["peak_memory_mb"] >= r["baseline_memory_mb"] > 0
    # Same seed, same batch, same function and gradients: the same loss after the same steps.
    assert results[0]["loss"] == pytest.approx(results[1]["loss"], rel=1e-5)
    printed = capsys.readouterr().out
    assert "12x12, batch 1: speed-up" in printed and "same loss PASS" in printed


def _record(mode: str, step_ms: float, peak: float, baseline: float | None, loss: float = 0.4) -> dict:
    record = {"patch": 64, "batch": 8, "mode": mode, "step_ms": step_ms, "peak_memory_mb": peak, "loss": loss}
    if baseline is not None:
        record["baseline_memory_mb"] = baseline
    return record


def test_verdict_judges_whole_process_and_above_footprint_memory_separately() -> None:
    # 4x faster; whole process 1200/2100 = 0.57 (fails), above the footprint 500/1400 = 0.36 (passes).
    lines = target_verdicts([_record("explicit", 8000, 2100, 700), _record("online", 2000, 1200, 700)])
    assert lines[1] == (
        "  64x64, batch 8: speed-up 4.00x PASS; peak memory 0.57 FAIL "
        "(above the footprint 0.36 PASS); same loss PASS"
    )


def test_verdict_on_cuda_records_and_boundaries() -> None:
    # Exactly 2x and exactly half pass; a loss differing beyond 1e-4 (relative) fails.
    lines = target_verdicts(
        [_record("explicit", 100, 1000, None, 0.5), _record("online", 50, 500, None, 0.5001)]
    )
    assert lines[1] == "  64x64, batch 8: speed-up 2.00x PASS; peak memory 0.50 PASS; same loss FAIL"
    assert lines[0].startswith("Targets, online against explicit: >= 2x faster")


def test_verdict_skips_a_patch_with_one_form_only() -> None:
    assert target_verdicts([_record("online", 50, 500, None)]) == []
