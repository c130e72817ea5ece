"""PSNR and SSIM on RGB and on the BT.601 luma, as the NTIRE 2022 ESR protocol measures them.

Conventions, all taken from the official evaluation code (``utils/utils_image.py``) and MATLAB:

* Inputs are uint8 images on the 0..255 scale: HxWx3 RGB, or HxW planes such as the Y planes of
  :func:`rgb_to_y`. They are cropped by ``border`` pixels on every side.
* PSNR is ``20 * log10(255 / sqrt(MSE))`` with the MSE over all cropped pixels and channels;
  identical images give ``inf``. The sum of squared differences of integers is computed exactly in
  int64, so the MSE is the exact rational the official float64 mean also reaches (its partial
  sums are integers below 2**53): the same value on every machine.
* SSIM uses an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, and
  averages the SSIM map over the "valid" region only (5 pixels trimmed on every side after the
  border crop). RGB SSIM is the mean of the three per-channel SSIMs. It is computed in float64.

This is the CPU implementation. The Gaussian filtering runs through OpenCV's separable SIMD filter
(as BasicSR does), several times faster than SciPy's ``correlate1d``, on bands of rows that stay in
cache, with the elementwise algebra in place (``benchmarks/metrics_speed.py`` measures it against
the previous implementation). ``harness.metrics.device`` computes the same figures in torch on the
GPU that produced the image.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from harness.errors import HarnessError

WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
PEAK = 255.0
C1 = (0.01 * PEAK) ** 2
C2 = (0.03 * PEAK) ** 2

# MATLAB rgb2ycbcr's Y row scaled to integers: Y = (65481 R + 128553 G + 24966 B) / 255000 + 16.
Y_WEIGHTS = (65481, 128553, 24966)
Y_DENOMINATOR = 255_000
Y_OFFSET = 16 * Y_DENOMINATOR


def gaussian_window() -> np.ndarray:
    """The 1-D Gaussian whose outer product is the 11x11 SSIM window (weights sum to 1)."""
    offsets = np.arange(WINDOW_SIZE, dtype=np.float64) - (WINDOW_SIZE - 1) / 2
    weights = np.exp(-(offsets**2) / (2 * WINDOW_SIGMA**2))
    return weights / weights.sum()


_WINDOW_1D = gaussian_window()
_BAND_ROWS = 32  # SSIM map rows computed at a time (see _ssim_plane)


def _require_uint8(img: object, what: str) -> np.ndarray:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        dtype = getattr(img, "dtype", type(img).__name__)
        raise HarnessError(f"{what} must be a uint8 image (0..255), got {dtype}")
    return img


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Return the BT.601 luma (16..235) of a uint8 HxWx3 RGB image as a uint8 HxW plane.

    ``Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16``, as MATLAB's ``rgb2ycbcr``, rounded to whole
    grey levels as MATLAB does on uint8 images and as the official ``rgb2ycbcr(img, only_y=True)``
    does (the rounding moves PSNR-Y by a few hundredths of a dB, so it is part of the protocol).

    The value is computed exactly, in integers, as ``(65481 R + 128553 G + 24966 B + 4080000) /
    255000``, and rounded half to even on that exact rational, so every machine gives the same Y.
    Float code cannot promise that: of the 16.7 M colours, exactly 194 have a Y exactly halfway
    between two grey levels, and float arithmetic lands a rounding error away from the half, on a
    side that depends on the summation order. The official ``np.dot`` form rounds 24 of those 194
    to the other level than half-to-even on an x86-64 OpenBLAS build, a plain left-to-right sum 31;
    MATLAB's round-half-away-from-zero differs on 80 (the ties whose lower level is even). Those 194
    colours are the only ones where any of these can differ.
    """
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
        raise HarnessError(f"rgb_to_y needs an HxWx3 RGB image, got shape {getattr(img, 'shape', None)}")
    _require_uint8(img, "rgb_to_y's input")
    channels = img.astype(np.int32)
    numerator = (
        Y_WEIGHTS[0] * channels[..., 0]
        + Y_WEIGHTS[1] * channels[..., 1]
        + Y_WEIGHTS[2] * channels[..., 2]
        + Y_OFFSET
    )
    level, remainder = np.divmod(numerator, Y_DENOMINATOR)
    twice = 2 * remainder
    level += (twice > Y_DENOMINATOR) | ((twice == Y_DENOMINATOR) & (level % 2 == 1))
    return level.astype(np.uint8)


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    """Refuse anything but two uint8 arrays of one HxW or HxWx3 shape."""
    for name, img in (("first image", a), ("second image", b)):
        if not isinstance(img, np.ndarray):
            raise HarnessError(f"{name} must be a numpy array, got {type(img).__name__}")
        if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
            raise HarnessError(f"{name} must be HxW or HxWx3, got shape {img.shape}")
        _require_uint8(img, name)
    if a.shape != b.shape:
        raise HarnessError(f"image shapes differ: {a.shape} vs {b.shape}")


def _crop(a: np.ndarray, b: np.ndarray, border: int, min_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Check a metric's inputs and crop ``border`` pixels from every side (views, no copies)."""
    _check_pair(a, b)
    check_border(a.shape[:2], border, min_side)
    height, width = a.shape[:2]
    crop = (slice(border, height - border), slice(border, width - border))
    return a[crop], b[crop]


def check_border(size: tuple[int, ...], border: int, min_side: int) -> None:
    """Refuse a bad border, or an image of ``size`` (height, width) too small to keep ``min_side``."""
    if isinstance(border, bool) or not isinstance(border, int | np.integer) or border < 0:
        raise HarnessError(f"border must be a non-negative integer, got {border!r}")
    if min(size) - 2 * border < min_side:
        raise HarnessError(
            f"image of size {tuple(size)} is too small for border {border}: "
            f"at least {min_side} pixels per side must remain"
        )


def psnr_from_sse(sse: int, count: int) -> float:
    """PSNR in dB from an exact sum of squared differences over ``count`` values (``inf`` for 0)."""
    if sse == 0:
        return math.inf
    return 20.0 * math.log10(PEAK / math.sqrt(sse / count))


def psnr(a: np.ndarray, b: np.ndarray, *, border: int) -> float:
    """Peak signal-to-noise ratio in dB (peak 255) after cropping ``border`` pixels per side.

    Returns ``inf`` for identical crops.
    """
    x, y = _crop(a, b, border, min_side=1)
    difference = x.astype(np.int32) - y.astype(np.int32)
    sse = int(np.square(difference).sum(dtype=np.int64))
    return psnr_from_sse(sse, difference.size)


def _filter_valid(plane: np.ndarray) -> np.ndarray:
    """Weighted 11x11 Gaussian mean around every pixel whose window lies inside the plane.

    The window is separable, so OpenCV runs two 1-D passes; the border mode only affects the
    5-pixel rim, which is then discarded (the "valid" region).
    """
    rim = WINDOW_SIZE // 2
    filtered = cv2.sepFilter2D(plane, cv2.CV_64F, _WINDOW_1D, _WINDOW_1D, borderType=cv2.BORDER_REFLECT)
    return filtered[rim:-rim, rim:-rim]


def _ssim_band_sum(a: np.ndarray, b: np.ndarray) -> float:
    """Sum of the SSIM map over the valid rows of a band of two uint8 planes, in float64.

    With the window means mu and the window second moments s, the map is
    ``(2 mu_ab + C1)(2 (s_ab - mu_ab) + C2) / ((mu_aa + mu_bb + C1)(s_aa + s_bb - mu_aa - mu_bb + C2))``
    where ``mu_ab = mu_a mu_b`` and so on; it is evaluated in place to keep memory traffic low.
    """
    x = a.astype(np.float64)
    y = b.astype(np.float64)
    mu_x = _filter_valid(x)
    mu_y = _filter_valid(y)
    s_xy = _filter_valid(x * y)
    s_sum = _filter_valid(np.multiply(x, x, out=x))
    s_sum += _filter_valid(np.multiply(y, y, out=y))
    mu_xy = mu_x * mu_y
    mu_sq = np.multiply(mu_x, mu_x, out=mu_x)
    mu_sq += np.multiply(mu_y, mu_y, out=mu_y)  # mu_x^2 + mu_y^2
    # numerator = (2 mu_xy + C1) * (2 s_xy - 2 mu_xy + C2)
    s_xy *= 2
    s_xy -= 2 * mu_xy
    s_xy += C2
    mu_xy *= 2
    mu_xy += C1
    mu_xy *= s_xy
    # denominator = (mu_sq + C1) * (s_sum - mu_sq + C2)
    s_sum -= mu_sq
    s_sum += C2
    mu_sq += C1
    mu_sq *= s_sum
    mu_xy /= mu_sq
    return float(mu_xy.sum())


def _ssim_plane(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two uint8 planes over the valid region.

    The plane is processed in bands of ``_BAND_ROWS`` output rows (each read with the 10 rows its
    windows reach into), so that every intermediate map stays in the processor's cache: on a
    2040x1356 image that made the whole computation about twice as fast as one pass over full
    planes. The band sums are added in a fixed order, so the result does not depend on timing.
    """
    reach = WINDOW_SIZE - 1
    rows = a.shape[0] - reach
    total = 0.0
    for top in range(0, rows, _BAND_ROWS):
        bottom = min(top + _BAND_ROWS, rows) + reach
        total += _ssim_band_sum(a[top:bottom], b[top:bottom])
    return total / (rows * (a.shape[1] - reach))


def ssim(a: np.ndarray, b: np.ndarray, *, border: int) -> float:
    """Structural similarity (MATLAB / official definition) after cropping ``border`` pixels per side.

    For HxWx3 inputs this is the mean of the three per-channel SSIMs.
    """
    x, y = _crop(a, b, border, min_side=WINDOW_SIZE)
    if x.ndim == 2:
        return _ssim_plane(x, y)
    return float(np.mean([_ssim_plane(x[..., c], y[..., c]) for c in range(x.shape[2])]))


def fidelity(
    sr: np.ndarray, hr: np.ndarray, *, border: int, hr_y: np.ndarray | None = None
) -> dict[str, float]:
    """All four protocol figures for one uint8 HxWx3 SR/HR pair.

    Keys: ``psnr_rgb`` (the figure the official script reports and ranks), ``psnr_y``,
    ``ssim_rgb`` and ``ssim_y``. ``hr_y`` is ``rgb_to_y(hr)`` when the caller already has it (a run
    computes each HR's Y plane once and shares it between submissions).
    """
    _check_pair(sr, hr)  # before the Y conversion, so a mismatch names the RGB shapes
    sr_y = rgb_to_y(sr)
    hr_y = rgb_to_y(hr) if hr_y is None else hr_y
    return {
        "psnr_rgb": psnr(sr, hr, border=border),
        "psnr_y": psnr(sr_y, hr_y, border=border),
        "ssim_rgb": ssim(sr, hr, border=border),
        "ssim_y": ssim(sr_y, hr_y, border=border),
    }
