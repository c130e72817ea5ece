"""The torch (device) metrics against the NumPy ones and against scikit-image, on CPU and on CUDA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from harness.errors import HarnessError
from harness.metrics import fidelity, fidelity_tensor, rgb_to_y, rgb_to_y_tensor, to_uint8, to_uint8_tensor

PSNR_TOL = 1e-6  # dB
SSIM_TOL = 1e-7

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.cuda,
            pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
        ],
    ),
]


def _pair(name: str, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    hr = getattr(data, name)()[:180, :200]
    rng = np.random.default_rng(int(sigma))
    sr = np.clip(hr + rng.normal(0.0, sigma, hr.shape), 0, 255).round().astype(np.uint8)
    return sr, hr


def _chw(img: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("name", "sigma"), [("astronaut", 5.0), ("coffee", 25.0), ("chelsea", 2.0)])
def test_device_fidelity_equals_the_numpy_reference(device: str, name: str, sigma: float) -> None:
    sr, hr = _pair(name, sigma)
    expected = fidelity(sr, hr, border=4)
    got = fidelity_tensor(_chw(sr, device), _chw(hr, device), border=4)
    assert got["psnr_rgb"] == pytest.approx(expected["psnr_rgb"], abs=PSNR_TOL)
    assert got["psnr_y"] == pytest.approx(expected["psnr_y"], abs=PSNR_TOL)
    assert got["ssim_rgb"] == pytest.approx(expected["ssim_rgb"], abs=SSIM_TOL)
    assert got["ssim_y"] == pytest.approx(expected["ssim_y"], abs=SSIM_TOL)
    # And against scikit-image directly, for RGB (an implementation that is not ours).
    crop = (slice(4, -4), slice(4, -4))
    assert got["psnr_rgb"] == pytest.approx(
        peak_signal_noise_ratio(sr[crop], hr[crop], data_range=255), abs=1e-6
    )
    reference_ssim = structural_similarity(
        sr[crop].astype(np.float64),
        hr[crop].astype(np.float64),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=2,
    )
    assert got["ssim_rgb"] == pytest.approx(reference_ssim, abs=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_device_y_is_the_exact_y_on_every_colour_level(device: str) -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    img[0, :2] = [[22, 206, 0], [35, 47, 39]]  # two exact ties (see test_metrics)
    got = rgb_to_y_tensor(_chw(img, device)).cpu().numpy()[0]
    np.testing.assert_array_equal(got, rgb_to_y(img))


def _conversion_data(input_range: float) -> np.ndarray:
    """Model outputs around ``[0, input_range]``, with exact halves of grey levels in the first row."""
    rng = np.random.default_rng(11)
    out = rng.uniform(-0.2, 1.2, (1, 3, 40, 36)).astype(np.float32) * np.float32(input_range)
    # Include exact halves of a grey level, where rounding half to even matters.
    halves = (
        (np.arange(256, dtype=np.float32) + np.float32(0.5)) * np.float32(input_range) / np.float32(255.0)
    )
    out[0, 0, 0, :36] = halves[:36]
    out[0, 1, 0, :36] = halves[36:72]
    out[0, 2, 0, :36] = halves[72:108]
    return out


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("input_range", [1.0, 255.0])
def test_device_uint8_conversion_is_bit_identical_to_the_official_one(
    device: str, input_range: float
) -> None:
    out = _conversion_data(input_range)
    expected = to_uint8(torch.from_numpy(out), input_range)
    got = to_uint8_tensor(torch.from_numpy(out).to(device), input_range)
    assert got.dtype == torch.uint8 and got.device.type == device
    np.testing.assert_array_equal(got.cpu().numpy().transpose(1, 2, 0), expected)


def test_device_identical_images_and_too_small_images() -> None:
    img = _chw(data.chelsea()[:40, :40], "cpu")
    scores = fidelity_tensor(img, img.clone(), border=4)
    assert scores["psnr_rgb"] == math.inf and scores["ssim_y"] == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(HarnessError, match="too small for border 4"):
        fidelity_tensor(img[:, :18, :18], img[:, :18, :18], border=4)


def test_the_conversion_data_tells_true_division_from_a_reciprocal_multiply() -> None:
    """The uint8 test above can catch CUDA's divide-by-scalar shortcut: on its own data, multiplying
    by the float32 reciprocal of 255 (what CUDA does for ``tensor / python_float``) lands some
    pixels one grey level away from true division. Both are computed here in NumPy float32."""
    out = _conversion_data(255.0)
    scaled = np.clip(out, 0, 255).astype(np.float32) * np.float32(255.0)
    true_division = np.round(scaled / np.float32(255.0))
    reciprocal_multiply = np.round(scaled * (np.float32(1.0) / np.float32(255.0)))
    differing = int(np.count_nonzero(true_division != reciprocal_multiply))
    assert differing > 0
    assert np.abs(true_division - reciprocal_multiply).max() == 1
