"""Cells on the CPU: ONNX Runtime matches eager, bf16's drop is what the test computes, failures are reasons."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.cells import CellUnavailable, build_cell, cell_fidelity, parse_cells
from harness.submissions.loading import load_model
from harness.submissions.registry import resolve_submission

SET5 = Path(os.environ.get("ESR_DATA", "/work/shared/datasets")) / "Set5" / "image_SRF_4"
ZOO = os.environ.get("ESR_MODEL_ZOO")


def _psnr(a: np.ndarray, b: np.ndarray, border: int) -> float:
    """Independent RGB PSNR on uint8 images with a border crop."""
    x = a[border:-border, border:-border].astype(np.float64)
    y = b[border:-border, border:-border].astype(np.float64)
    return float(10 * np.log10(255.0**2 / np.mean((x - y) ** 2)))


def _to_uint8(out: torch.Tensor, input_range: float) -> np.ndarray:
    scaled = out.squeeze(0).clamp(0, input_range) * (255.0 / input_range)
    return scaled.round().to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    """A 32x32 LR crop of Set5's first image and its 128x128 HR crop."""
    if not SET5.is_dir():
        pytest.skip("Set5 not available")
    lr = np.asarray(Image.open(SET5 / "img_001_SRF_4_LR.png").convert("RGB"))[:32, :32]
    hr = np.asarray(Image.open(SET5 / "img_001_SRF_4_HR.png").convert("RGB"))[:128, :128]
    return lr, hr


def _load(name: str):
    if ZOO is None:
        pytest.skip("ESR_MODEL_ZOO not set")
    sub = resolve_submission(name)
    return sub, load_model(sub, model_zoo=Path(ZOO), allow_download=False).model


def _lr_tensor(lr: np.ndarray, input_range: float) -> torch.Tensor:
    # One division by 255 / input_range, as the official uint2tensor4: multiplying by its inverse
    # gives other last bits for some levels, and a sharpening network can carry them to a pixel's level.
    return torch.from_numpy(lr.transpose(2, 0, 1).copy()).float().unsqueeze(0) / (255.0 / input_range)


@pytest.mark.parametrize("name", ["clb_imdn", "imdn_baseline"])
def test_onnxruntime_matches_eager(name: str, sample) -> None:
    pytest.importorskip("onnxruntime", reason="the [deploy] extra is not installed")
    lr, hr = sample
    sub, model = _load(name)
    x = _lr_tensor(lr, sub.input_range)
    with torch.no_grad():
        eager = model(x)
    out = build_cell("onnxruntime", model, x)(x)
    p_eager = _psnr(_to_uint8(eager, sub.input_range), hr, 4)
    p_onnx = _psnr(_to_uint8(out, sub.input_range), hr, 4)
    assert abs(p_eager - p_onnx) < 0.01


@pytest.mark.parametrize("name", ["clb_imdn", "imdn_baseline"])
def test_bf16_drop_matches_independent_scores(name: str, sample) -> None:
    lr, hr = sample
    sub, model = _load(name)
    x = _lr_tensor(lr, sub.input_range)
    with torch.no_grad():
        eager = model(x)
        expected_bf16 = model.to(torch.bfloat16)(x.to(torch.bfloat16)).float()
        model.float()
    forward = build_cell("bf16", model, x)
    with torch.no_grad():
        out = forward(x)
    fields = cell_fidelity([out], [eager], [hr], input_range=sub.input_range, border=4)
    expected = _psnr(_to_uint8(eager, sub.input_range), hr, 4) - _psnr(
        _to_uint8(expected_bf16, sub.input_range), hr, 4
    )
    assert fields["psnr_drop"] == pytest.approx(expected, abs=1e-6)
    assert np.isfinite(fields["ssim_drop"])


class _Unexportable(torch.nn.Module):
    """Upsamples and adds a 2-D FFT statistic: ONNX has no operator for ``aten::fft_fft2``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=4) + torch.fft.fft2(x).real.mean()


def test_failed_export_gives_reason_and_other_cells_run() -> None:
    pytest.importorskip("onnxruntime", reason="the [deploy] extra is not installed")
    model = _Unexportable()
    x = torch.rand(1, 3, 8, 8)
    results: dict[str, str | torch.Tensor] = {}
    for name in ("onnxruntime", "fp32", "bf16", "fp16"):
        try:
            results[name] = build_cell(name, model, x)(x)
        except CellUnavailable as exc:
            results[name] = str(exc)
    assert results["fp16"] == "needs a GPU"
    assert isinstance(results["fp32"], torch.Tensor)
    assert torch.equal(results["fp32"], model(x))
    # bf16 is judged on its own: a tensor, or its own reason (no bf16 FFT kernel on some CPUs)
    assert isinstance(results["bf16"], torch.Tensor) or not results["bf16"].startswith("UnsupportedOperator")
    assert isinstance(results["onnxruntime"], str)
    assert results["onnxruntime"].startswith("UnsupportedOperatorError: ")
    assert "fft" in results["onnxruntime"] and "\n" not in results["onnxruntime"]


def test_parse_cells() -> None:
    assert parse_cells("fp32, bf16") == ("fp32", "bf16")
    with pytest.raises(ValueError, match="unknown cell 'fp8'"):
        parse_cells("fp32,fp8")


@pytest.mark.cuda
@pytest.mark.parametrize("cell", ["fp16", "tensorrt"])
def test_gpu_cells(cell: str, sample) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    lr, hr = sample
    sub, model = _load("clb_imdn")
    model = model.cuda()
    x = _lr_tensor(lr, sub.input_range).cuda()
    with torch.no_grad():
        eager = model(x)
        try:
            out = build_cell(cell, model, x)(x)
        except CellUnavailable as exc:
            pytest.skip(str(exc))
    fields = cell_fidelity([out.cpu()], [eager.cpu()], [hr], input_range=sub.input_range, border=4)
    assert fields["psnr_drop"] < 1.0


def test_uncollapsed_computes_clb_imdn(sample) -> None:
    """The training form built from the collapsed weights has the released model's function."""
    lr, _ = sample
    _, collapsed = _load("clb_imdn")
    _, uncollapsed = _load("clb_imdn_uncollapsed")
    assert sum(p.numel() for p in uncollapsed.parameters()) > sum(p.numel() for p in collapsed.parameters())
    x = _lr_tensor(lr[:16, :16], 1.0)
    with torch.no_grad():
        a, b = collapsed(x), uncollapsed(x)
    assert a.shape == b.shape == (1, 3, 64, 64)
    assert float((a - b).abs().max()) < 1e-4


def _worker_psnr(cell: str, sample, tmp_path: Path) -> tuple[object, list]:
    """Load clb_imdn in ``cell`` in an in-process worker and run its accuracy pass on one image."""
    from harness.runner import messages as msg
    from harness.runner.shared_data import share_dataset
    from harness.runner.worker import SubmissionWorker
    from harness.submissions.weights import resolve_weights

    if ZOO is None:
        pytest.skip("ESR_MODEL_ZOO not set")
    lr, hr = sample
    split = share_dataset([("img", lr, hr)], "0" * 64, tmp_path / "shared")
    sub = resolve_submission("clb_imdn")
    weights = resolve_weights(sub, model_zoo=Path(ZOO), allow_download=False)
    worker = SubmissionWorker()
    load = msg.Load(
        submission=sub,
        weights=weights,
        trust_weights=False,
        device="cpu",
        settings=msg.TorchSettings(cudnn_benchmark=False, threads=1),
        split=split.inputs_only(),
        cell=cell,
    )
    loaded = list(worker.handle(load))
    replies = list(worker.handle(msg.Accuracy(indices=(0,), time_first_call=False)))
    return loaded[0], replies


def test_worker_runs_its_cell(sample, tmp_path: Path) -> None:
    """A worker loaded in bf16 returns the bf16 forward: the PSNR the test computes from bf16 by hand."""
    lr, hr = sample
    _, fp32_replies = _worker_psnr("fp32", sample, tmp_path)
    _, bf16_replies = _worker_psnr("bf16", sample, tmp_path)
    fp32_psnr = _psnr(fp32_replies[0].pixels, hr, 4)
    bf16_psnr = _psnr(bf16_replies[0].pixels, hr, 4)
    _, model = _load("clb_imdn")
    x = _lr_tensor(lr, 1.0)
    with torch.no_grad():
        eager = model(x)
        by_hand = model.to(torch.bfloat16)(x.to(torch.bfloat16)).float()
    assert fp32_psnr == pytest.approx(_psnr(_to_uint8(eager, 1.0), hr, 4), abs=1e-9)
    assert bf16_psnr == pytest.approx(_psnr(_to_uint8(by_hand, 1.0), hr, 4), abs=1e-9)
