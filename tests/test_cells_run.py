"""Cells in a run: every submission measured again in each cell, beside the baseline in that cell.

The record's ``cells`` are checked against references computed here: ratios by exact arithmetic,
drops from the two records' own figures, a failed export or a GPU-only cell as a reason while the
other cells still run.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.cells import cell_record, unavailable
from harness.runner import evaluate_run
from harness.terminal_summary import cells_summary
from tests.test_workers import _config, _pairs, _write_submission

# A tiny x4 model whose forward uses an FFT: eager and bf16-free cells run it, ONNX cannot export it.
FFT_MODEL = """
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))

    def forward(self, x):
        x = torch.fft.ifft2(torch.fft.fft2(x)).real
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest") * self.gain
"""


def test_a_cell_s_ratio_is_the_geometric_mean_of_its_rounds_and_its_drop_is_fp32_minus_the_cell() -> None:
    fp32 = {"psnr_rgb": 30.5, "psnr_y": 31.0, "ssim_rgb": 0.9, "ssim_y": math.inf}
    in_cell = {
        "status": "ok",
        "psnr_rgb": 30.25,
        "psnr_y": 31.0,
        "ssim_rgb": 0.875,
        "ssim_y": math.inf,
        "runtime_ms": {"mean": 12.5},
        "pairing": {"round_ratios": [1.0, 1.21]},  # geometric mean 1.1
    }
    entry = cell_record(in_cell, fp32)
    assert entry["drop"] == pytest.approx({"psnr_rgb": 0.25, "psnr_y": 0.0, "ssim_rgb": 0.025, "ssim_y": 0.0})
    assert entry["runtime_ratio"] == pytest.approx(1.1, rel=1e-12)
    low, high = entry["runtime_interval"]
    assert low < 1.1 < high
    assert entry["runtime_ms"] == 12.5 and entry["reason"] is None
    failed = cell_record({"status": "failed", "error": "UnsupportedOperatorError: fft"}, fp32)
    assert failed == unavailable("UnsupportedOperatorError: fft")
    assert failed["psnr_rgb"] is None and failed["runtime_ratio"] is None


def test_a_run_with_cells_measures_each_beside_its_own_baseline_and_says_why_a_cell_did_not_run(
    tmp_path: Path,
) -> None:
    pytest.importorskip("onnxruntime", reason="the [deploy] extra is not installed")
    plain = _write_submission(tmp_path / "plain", "plain")
    fft = _write_submission(tmp_path / "fft", "fft", model_source=FFT_MODEL)
    baseline = _write_submission(tmp_path / "base", "base")
    config = _config(tmp_path, cells=("fp32", "onnxruntime", "fp16"))
    run = evaluate_run([plain, fft], _pairs(3), config, baseline=baseline)
    assert run["cells"] == ["fp32", "onnxruntime", "fp16"]
    records = {record["submission"]: record for record in run["results"]}
    assert all(record["status"] == "ok" for record in records.values())  # fp32 eager untouched
    for name in ("plain", "fft", "base"):
        assert set(records[name]["cells"]) == {"onnxruntime", "fp16"}
        assert records[name]["cells"]["fp16"]["reason"] == "needs a GPU"
    onnx = records["plain"]["cells"]["onnxruntime"]
    assert onnx["reason"] is None
    # Nearest upscaling in ONNX Runtime gives the same pixels as eager: no drop at all.
    assert onnx["psnr_rgb"] == records["plain"]["psnr_rgb"] and onnx["drop"]["psnr_rgb"] == 0.0
    assert onnx["runtime_ratio"] > 0 and len(onnx["runtime_interval"]) == 2
    assert "fft" in records["fft"]["cells"]["onnxruntime"]["reason"].lower()
    text = cells_summary(run)
    assert text is not None and "needs a GPU" in text and "onnxruntime" in text


def test_a_run_without_cells_has_no_cell_columns(tmp_path: Path) -> None:
    plain = _write_submission(tmp_path / "plain", "plain")
    run = evaluate_run([plain], _pairs(2), _config(tmp_path))
    assert run["cells"] == ["fp32"] and "cells" not in run["results"][0]
    assert cells_summary(run) is None
