"""`esr evaluate` and `esr check` end to end: the acceptance values, the JSON schema, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.commands import run as esr

# Issue 4's acceptance table: what the official NTIRE 2022 protocol code gives for these weights on
# the SelfExSR Set5/Set14 pairs (PSNR in dB, border 4). An independent reference, not our output.
OFFICIAL = {
    ("clb_imdn", "Set5"): (30.2926, 32.1857, 0.89418),
    ("clb_imdn", "Set14"): (26.8475, 28.6580, 0.78253),
    ("imdn_baseline", "Set5"): (30.3373, 32.2294, 0.89485),
    ("imdn_baseline", "Set14"): (26.8779, 28.6847, 0.78317),
}

RESULT_KEYS = {
    "submission",
    "team",
    "weights_sha256",
    "status",
    "error",
    "psnr_rgb",
    "psnr_y",
    "ssim_rgb",
    "ssim_y",
    "runtime_ms",
    "max_memory_mb",
    "params",
    "flops",
    "activations",
    "num_conv",
    "constraints",
    "valid",
    "per_image",
}


def _common(tmp_path: Path, model_zoo: Path) -> list[str]:
    return [
        "--device",
        "cpu",
        "--quiet",
        "--model-zoo",
        str(model_zoo),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--warmup-seconds",
        "0",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["Set5", "Set14"])
def test_acceptance_values_of_the_official_protocol(
    dataset: str, tmp_path: Path, data_dir: Path, model_zoo_dir: Path
) -> None:
    out = tmp_path / "run"
    argv = ["evaluate", "clb_imdn", "imdn_baseline", "--data", str(data_dir / dataset), "--out", str(out)]
    assert esr(argv + ["--json", str(tmp_path / "run.json")] + _common(tmp_path, model_zoo_dir)) == 0
    document = json.loads((tmp_path / "run.json").read_text())
    assert document == json.loads((out / "results.json").read_text())
    assert {"protocol", "device", "dataset", "results"} <= set(document)
    assert {"name", "path", "split", "num_images", "scale"} <= set(document["dataset"])
    for record in document["results"]:
        assert set(record) >= RESULT_KEYS
        assert set(record["runtime_ms"]) >= {"mean", "median", "p90", "std"}
        psnr_rgb, psnr_y, ssim_y = OFFICIAL[(record["submission"], dataset)]
        assert record["psnr_rgb"] == pytest.approx(psnr_rgb, abs=5e-4)
        assert record["psnr_y"] == pytest.approx(psnr_y, abs=5e-4)
        assert record["ssim_y"] == pytest.approx(ssim_y, abs=5e-5)
        assert record["weights_sha256"] and record["status"] == "ok"
        for constraint in record["constraints"]:
            assert {"name", "value", "limit", "passed"} <= set(constraint)


def _tiny_benchmark_folder(root: Path) -> Path:
    """A BasicSR-style folder (HR/ + LR_bicubic/X4/) with two small real-looking images."""
    from skimage import data

    (root / "HR").mkdir(parents=True)
    (root / "LR_bicubic" / "X4").mkdir(parents=True)
    photo = data.astronaut()
    for index, (top, left) in enumerate([(100, 150), (260, 200)]):
        hr = np.ascontiguousarray(photo[top : top + 96, left : left + 96])
        lr = np.asarray(Image.fromarray(hr).resize((24, 24), Image.BICUBIC))
        Image.fromarray(hr).save(root / "HR" / f"im{index}.png")
        Image.fromarray(lr).save(root / "LR_bicubic" / "X4" / f"im{index}x4.png")
    return root


def test_check_passes_for_the_baseline_itself(tmp_path: Path, model_zoo_dir: Path, capsys) -> None:
    data = _tiny_benchmark_folder(tmp_path / "tiny")
    status = esr(["check", "imdn_baseline", "--data", str(data)] + _common(tmp_path, model_zoo_dir))
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "imdn_baseline: VALID" in printed and "FAIL" not in printed


def test_check_fails_a_model_over_the_parameter_limit(tmp_path: Path, model_zoo_dir: Path, capsys) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "big.py").write_text(
        "import torch\nfrom torch import nn\n\n\n"
        "class Big(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.unused = nn.Parameter(torch.zeros(1_000_000))\n"
        "        self.up = nn.Upsample(scale_factor=4, mode='nearest')\n\n"
        "    def forward(self, x):\n"
        "        return self.up(x)\n"
    )
    (folder / "submission.yaml").write_text(
        "name: big\nteam: test\ndescription: too many parameters\n"
        "model:\n  file: big.py\n  class: Big\ninput_range: 1.0\nscale: 4\n"
    )
    data = _tiny_benchmark_folder(tmp_path / "tiny")
    status = esr(["check", str(folder), "--data", str(data)] + _common(tmp_path, model_zoo_dir))
    printed = capsys.readouterr().out
    assert status == 1
    assert "big: NOT VALID" in printed
    params_line = next(line for line in printed.splitlines() if line.startswith("params "))
    assert "FAIL" in params_line and "1e+06" in params_line


def test_unknown_submission_is_one_clear_line(tmp_path: Path, capsys) -> None:
    status = esr(
        ["evaluate", "clb_imbn", "--device", "cpu", "--cache-dir", str(tmp_path), "--out", str(tmp_path)]
    )
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert error.startswith("esr: error:") and "clb_imbn" in error and "clb_imdn" in error
    assert len(error.splitlines()) == 1
    assert not (tmp_path / "results.json").exists()


def test_weights_flag_needs_a_single_submission(tmp_path: Path, capsys) -> None:
    argv = ["evaluate", "clb_imdn", "imdn_baseline", "--weights", str(tmp_path / "w.pth"), "--device", "cpu"]
    assert esr(argv + ["--out", str(tmp_path / "out")]) == 2
    assert "--weights" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cuda_without_a_gpu_is_refused(tmp_path: Path, capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert esr(["evaluate", "clb_imdn", "--device", "cuda", "--out", str(tmp_path / "out")]) == 2
    assert "no CUDA device" in capsys.readouterr().err


@pytest.mark.slow
def test_clb_imdn_beats_bicubic_on_every_sample(tmp_path: Path, model_zoo_dir: Path) -> None:
    out = tmp_path / "run"
    argv = ["evaluate", "clb_imdn", "bicubic", "--data", "samples", "--out", str(out)]
    assert esr(argv + _common(tmp_path, model_zoo_dir)) == 0
    document = json.loads((out / "results.json").read_text())
    by_name = {record["submission"]: record for record in document["results"]}
    assert by_name["imdn_baseline"]["role"] == "baseline"  # the protocol's reference came along
    model = {entry["name"]: entry["psnr_rgb"] for entry in by_name["clb_imdn"]["per_image"]}
    floor = {entry["name"]: entry["psnr_rgb"] for entry in by_name["bicubic"]["per_image"]}
    assert len(model) == document["dataset"]["num_images"] >= 6
    assert all(model[name] > floor[name] for name in model), (model, floor)


def _judged_document(ratios: list[float]) -> dict:
    """A run document whose submission ran at the given paired per-round ratios to the baseline."""

    def result(name: str, round_ratios: list[float], role: str) -> dict:
        mean_ratio = sum(round_ratios) / len(round_ratios)
        return {
            "submission": name,
            "role": role,
            "status": "ok",
            "error": None,
            "psnr_rgb": 30.0,
            "params": 500_000,
            "num_images": 5,
            "runtime_ms": {"mean": 50.0 * mean_ratio},
            "timing_session": "one",
            "pairing": {"baseline": "imdn_baseline", "baseline_mean_ms": 50.0, "round_ratios": round_ratios},
        }

    return {
        "baseline": "imdn_baseline",
        "dataset": {"name": "Set5", "num_images": 5, "expected_images": 5, "split": None},
        "results": [result("mine", ratios, "submission"), result("imdn_baseline", [1.0] * 5, "baseline")],
    }


@pytest.mark.parametrize(
    ("ratios", "status", "verdict"),
    [
        ([0.9, 0.91, 0.9, 0.89, 0.9], 0, "PASS"),
        ([1.2, 1.21, 1.2, 1.19, 1.2], 1, "FAIL"),
        ([0.95, 1.04, 0.95, 1.04, 0.95], 3, "INCONCLUSIVE"),
    ],
)
def test_check_exit_status_follows_the_three_valued_runtime_verdict(
    monkeypatch: pytest.MonkeyPatch, capsys, ratios: list[float], status: int, verdict: str
) -> None:
    from harness.commands import check
    from harness.constraints import apply_constraints
    from harness.protocols import load_protocol

    document = apply_constraints(_judged_document(ratios), load_protocol("ntire2022"))
    monkeypatch.setattr(check, "run_evaluation", lambda args: document)
    assert esr(["check", "mine"]) == status
    runtime_line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("runtime"))
    assert verdict in runtime_line
