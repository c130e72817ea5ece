"""Fidelity metrics against independent references: scikit-image, hand computations, plain re-statements."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from harness.errors import HarnessError
from harness.metrics import fidelity, psnr, rgb_to_y, ssim, to_tensor, to_uint8

TOL = 1e-6


def _real_images() -> dict[str, np.ndarray]:
    """Photographs shipped with scikit-image, each paired below with a noisy or shifted copy."""
    return {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "coffee": data.coffee()}


def _noisy(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0.0, sigma, img.shape), 0, 255).round().astype(np.uint8)


def _pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    pairs = [
        (
            "random",
            rng.integers(0, 256, (67, 53, 3), dtype=np.uint8),
            rng.integers(0, 256, (67, 53, 3), dtype=np.uint8),
        )
    ]
    for name, img in _real_images().items():
        pairs.append((f"{name}-noise5", img, _noisy(img, 5.0, 1)))
        pairs.append((f"{name}-noise25", img, _noisy(img, 25.0, 2)))
    return pairs


def _y_reference(img: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr luma for uint8 input in exact integers, rounded half to even.

    ``Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16`` is ``n / 255000`` with the integer
    ``n = 65481 R + 128553 G + 24966 B + 4080000``. Rounding half up is ``(2n + 255000) // 510000``;
    an exact tie (a zero remainder there) that landed on an odd level goes down to the even one.
    """
    r, g, b = (img[..., c].astype(np.int64) for c in range(3))
    twice = 2 * (65481 * r + 128553 * g + 24966 * b + 4080000) + 255000
    level, remainder = twice // 510000, twice % 510000
    return (level - ((remainder == 0) & (level % 2 == 1))).astype(np.uint8)


def _crop(img: np.ndarray, border: int) -> np.ndarray:
    return img[border : img.shape[0] - border, border : img.shape[1] - border] if border else img


def _skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """scikit-image SSIM with MATLAB's settings; it also averages over the window-valid region only."""
    return structural_similarity(
        a.astype(np.float64),
        b.astype(np.float64),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=2 if a.ndim == 3 else None,
    )


# ---------------------------------------------------------------- agreement with scikit-image


@pytest.mark.parametrize("border", [0, 4])
@pytest.mark.parametrize(("name", "a", "b"), _pairs(), ids=[p[0] for p in _pairs()])
def test_psnr_matches_skimage_on_rgb_and_y(name: str, a: np.ndarray, b: np.ndarray, border: int) -> None:
    expected_rgb = peak_signal_noise_ratio(_crop(a, border), _crop(b, border), data_range=255)
    assert psnr(a, b, border=border) == pytest.approx(expected_rgb, abs=TOL)
    ya, yb = _y_reference(a), _y_reference(b)
    expected_y = peak_signal_noise_ratio(_crop(ya, border), _crop(yb, border), data_range=255)
    assert psnr(rgb_to_y(a), rgb_to_y(b), border=border) == pytest.approx(expected_y, abs=TOL)


@pytest.mark.parametrize("border", [0, 4])
@pytest.mark.parametrize(("name", "a", "b"), _pairs(), ids=[p[0] for p in _pairs()])
def test_ssim_matches_skimage_on_rgb_and_y(name: str, a: np.ndarray, b: np.ndarray, border: int) -> None:
    assert ssim(a, b, border=border) == pytest.approx(
        _skimage_ssim(_crop(a, border), _crop(b, border)), abs=TOL
    )
    ya, yb = _y_reference(a), _y_reference(b)
    expected_y = _skimage_ssim(_crop(ya, border), _crop(yb, border))
    assert ssim(rgb_to_y(a), rgb_to_y(b), border=border) == pytest.approx(expected_y, abs=TOL)


def test_rgb_ssim_is_the_mean_of_the_channel_ssims() -> None:
    a = data.astronaut()
    b = _noisy(a, 15.0, 3)
    per_channel = [_skimage_ssim(a[..., c], b[..., c]) for c in range(3)]
    assert ssim(a, b, border=0) == pytest.approx(sum(per_channel) / 3, abs=TOL)


def test_fidelity_bundles_the_four_figures() -> None:
    hr = data.coffee()
    sr = _noisy(hr, 10.0, 4)
    got = fidelity(sr, hr, border=4)
    assert set(got) == {"psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y"}
    ya, yb = _crop(_y_reference(sr), 4), _crop(_y_reference(hr), 4)
    assert got["psnr_rgb"] == pytest.approx(
        peak_signal_noise_ratio(_crop(sr, 4), _crop(hr, 4), data_range=255)
    )
    assert got["psnr_y"] == pytest.approx(peak_signal_noise_ratio(ya, yb, data_range=255), abs=TOL)
    assert got["ssim_rgb"] == pytest.approx(_skimage_ssim(_crop(sr, 4), _crop(hr, 4)), abs=TOL)
    assert got["ssim_y"] == pytest.approx(_skimage_ssim(ya, yb), abs=TOL)
    assert all(isinstance(v, float) for v in got.values())


# ---------------------------------------------------------------- hand-computed cases


def test_psnr_of_constant_images_with_known_mse() -> None:
    a = np.full((20, 30, 3), 100, np.uint8)
    b = np.full((20, 30, 3), 110, np.uint8)  # MSE = 100
    assert psnr(a, b, border=0) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-12)
    c = a.copy()
    c[0, 0, 0] = 104  # one error of 4 among 1800 values: MSE = 16 / 1800
    assert psnr(a, c, border=0) == pytest.approx(10 * math.log10(255**2 * 1800 / 16), abs=1e-12)


def test_ssim_of_constant_images_is_the_luminance_term() -> None:
    # Constant planes have zero variance and covariance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    c1 = (0.01 * 255) ** 2
    a = np.full((32, 32), 100, np.uint8)
    b = np.full((32, 32), 140, np.uint8)
    assert ssim(a, b, border=0) == pytest.approx((2 * 100 * 140 + c1) / (100**2 + 140**2 + c1), abs=1e-12)


def test_y_of_known_colours() -> None:
    img = np.array([[[0, 0, 0], [255, 255, 255], [100, 150, 200], [255, 0, 0]]], np.uint8)
    # 100,150,200: (6548.1 + 19282.95 + 4993.2) / 255 + 16 = 136.879...; red: 65.481 + 16 = 81.481
    np.testing.assert_array_equal(rgb_to_y(img), [[16, 235, 137, 81]])
    assert rgb_to_y(img).dtype == np.uint8


def test_y_of_colours_exactly_halfway_between_two_levels() -> None:
    # 65481*22 + 128553*206 = 27922500; (27922500 + 4080000) / 255000 = 125.5 exactly -> 126 (even).
    # 65481*35 + 128553*47 + 24966*39 = 9307500; + 4080000 = 13387500; / 255000 = 52.5 -> 52 (even);
    # the official float np.dot form gives 52.50000000000001 there and rounds it up to 53.
    img = np.array([[[22, 206, 0], [35, 47, 39]]], np.uint8)
    np.testing.assert_array_equal(rgb_to_y(img), [[126, 52]])
    weights = (Fraction("65.481"), Fraction("128.553"), Fraction("24.966"))
    exact = [
        sum(w * c for w, c in zip(weights, colour, strict=True)) / 255 + 16 for colour in img[0].tolist()
    ]
    assert exact == [Fraction(251, 2), Fraction(105, 2)]


def test_psnr_is_exact_integer_arithmetic() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (37, 41, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (37, 41, 3), dtype=np.uint8)
    sse = sum(
        (int(x) - int(y)) ** 2 for x, y in zip(a[2:-2, 2:-2].ravel(), b[2:-2, 2:-2].ravel(), strict=True)
    )
    count = 33 * 37 * 3
    assert psnr(a, b, border=2) == 20 * math.log10(255 / math.sqrt(sse / count))


def test_metrics_refuse_images_that_are_not_uint8() -> None:
    img = np.zeros((16, 16), np.float64)
    with pytest.raises(HarnessError, match="uint8"):
        psnr(img, img, border=0)


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_y_is_rounded_like_matlab_uint8_rgb2ycbcr(name: str) -> None:
    img = _real_images()[name]
    y = rgb_to_y(img)
    np.testing.assert_array_equal(y, _y_reference(img))
    assert y.min() >= 16 and y.max() <= 235


def test_identical_images_give_inf_psnr_and_unit_ssim() -> None:
    img = data.chelsea()
    assert psnr(img, img.copy(), border=4) == math.inf
    assert psnr(rgb_to_y(img), rgb_to_y(img), border=4) == math.inf
    assert ssim(img, img.copy(), border=4) == pytest.approx(1.0, abs=1e-12)
    assert fidelity(img, img.copy(), border=4)["psnr_y"] == math.inf


def test_border_pixels_are_excluded() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    b = a.copy()
    b[:4] = 0
    b[:, -4:] = 255  # differences only inside a 4-pixel rim
    assert math.isfinite(psnr(a, b, border=3))
    assert psnr(a, b, border=4) == math.inf
    assert ssim(a, b, border=3) < 1.0
    assert ssim(a, b, border=4) == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------- bad input


def test_shape_mismatch_names_both_shapes() -> None:
    a = np.zeros((16, 16, 3), np.uint8)
    b = np.zeros((16, 20, 3), np.uint8)
    for metric in (psnr, ssim, fidelity):
        with pytest.raises(HarnessError, match=r"\(16, 16, 3\) vs \(16, 20, 3\)"):
            metric(a, b, border=0)


def test_bad_border_and_too_small_images_are_refused() -> None:
    img = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(HarnessError, match="border"):
        psnr(img, img, border=-1)
    with pytest.raises(HarnessError, match="too small for border 10"):
        psnr(img, img, border=10)
    with pytest.raises(HarnessError, match="too small for border 5"):
        ssim(img, img, border=5)  # 10 pixels remain, fewer than the 11x11 window


def test_options_are_keyword_only() -> None:
    img = np.zeros((16, 16), np.uint8)
    with pytest.raises(TypeError):
        psnr(img, img, 4)  # type: ignore[misc]


def test_rgb_to_y_refuses_non_rgb() -> None:
    with pytest.raises(HarnessError, match="HxWx3"):
        rgb_to_y(np.zeros((8, 8), np.uint8))
    with pytest.raises(HarnessError, match="uint8"):
        rgb_to_y(np.zeros((8, 8, 3), np.float32))


# ---------------------------------------------------------------- tensor conversions


def _to_tensor_reference(img: np.ndarray, input_range: float) -> np.ndarray:
    """uint2tensor4 re-stated in NumPy: float32 values divided by the float32 of 255 / range."""
    return (img.astype(np.float32) / np.float32(255.0 / input_range)).transpose(2, 0, 1)[None]


def _to_uint8_reference(out: np.ndarray, input_range: float) -> np.ndarray:
    """tensor2uint re-stated in NumPy float32: clamp, times 255, divided by the range, round half to even."""
    hwc = np.clip(out[0].astype(np.float32), 0, np.float32(input_range)).transpose(1, 2, 0)
    return np.round(hwc * np.float32(255.0) / np.float32(input_range)).astype(np.uint8)


@pytest.mark.parametrize("input_range", [1.0, 255.0])
def test_to_tensor_matches_the_official_arithmetic(input_range: float) -> None:
    img = (np.arange(256 * 3).reshape(16, 16, 3) % 256).astype(np.uint8)
    got = to_tensor(img, input_range)
    assert got.dtype == torch.float32 and tuple(got.shape) == (1, 3, 16, 16)
    np.testing.assert_array_equal(got.numpy(), _to_tensor_reference(img, input_range))


def test_to_tensor_divides_rather_than_multiplies_by_the_reciprocal() -> None:
    # x * (1/255) differs from x / 255 in float32 for many grey levels; the official code divides.
    img = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    reciprocal = img.astype(np.float32) * np.float32(1.0 / 255.0)
    got = to_tensor(img, 1.0)[0].permute(1, 2, 0).numpy()
    assert (got != reciprocal).any()
    np.testing.assert_array_equal(got, img.astype(np.float32) / np.float32(255.0))


@pytest.mark.parametrize("input_range", [1.0, 255.0])
def test_round_trip_is_lossless(input_range: float) -> None:
    img = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    np.testing.assert_array_equal(to_uint8(to_tensor(img, input_range), input_range), img)


@pytest.mark.parametrize("input_range", [1.0, 255.0])
def test_to_uint8_clamps_and_rounds_like_the_official_code(input_range: float) -> None:
    rng = np.random.default_rng(11)
    out = rng.uniform(-0.2, 1.2, (1, 3, 24, 20)).astype(np.float32) * np.float32(input_range)
    got = to_uint8(torch.from_numpy(out), input_range)
    assert got.dtype == np.uint8 and got.shape == (24, 20, 3)
    np.testing.assert_array_equal(got, _to_uint8_reference(out, input_range))


def test_to_uint8_edge_values() -> None:
    # Range 255: halves round to even, out-of-range values are clamped.
    out = torch.tensor([-3.0, 0.5, 1.5, 2.5, 254.5, 300.0]).reshape(1, 3, 1, 2)
    np.testing.assert_array_equal(to_uint8(out, 255.0).transpose(2, 0, 1).ravel(), [0, 0, 2, 2, 254, 255])
    # Range 1: 1.5 clamps to 1 -> 255; 0.5 -> 127.5 -> 128 (even); -1 -> 0.
    out = torch.tensor([1.5, 0.5, -1.0]).reshape(1, 3, 1, 1)
    np.testing.assert_array_equal(to_uint8(out, 1.0).ravel(), [255, 128, 0])


def test_to_uint8_accepts_half_precision_and_gradients() -> None:
    out = torch.full((1, 3, 4, 4), 0.25, dtype=torch.float16, requires_grad=True)
    np.testing.assert_array_equal(to_uint8(out, 1.0), np.full((4, 4, 3), 64, np.uint8))


def test_conversion_errors() -> None:
    with pytest.raises(HarnessError, match="uint8 HxWx3"):
        to_tensor(np.zeros((8, 8, 3), np.float32), 1.0)
    with pytest.raises(HarnessError, match="uint8 HxWx3"):
        to_tensor(np.zeros((8, 8), np.uint8), 1.0)
    with pytest.raises(HarnessError, match="input_range"):
        to_tensor(np.zeros((8, 8, 3), np.uint8), 0)
    with pytest.raises(HarnessError, match="NaN or Inf"):
        to_uint8(torch.tensor([float("nan")]).reshape(1, 1, 1, 1).expand(1, 3, 2, 2), 1.0)
    with pytest.raises(HarnessError, match=r"1x3xHxW, got \(2, 3, 4, 4\)"):
        to_uint8(torch.zeros(2, 3, 4, 4), 1.0)
