"""PSNR and SSIM on RGB and on the BT.601 luma, as the NTIRE 2022 ESR protocol measures them.

Conventions, all taken from the official evaluation code (``utils/utils_image.py``) and MATLAB:

* Inputs are images on the 0..255 scale (uint8, or Y planes from :func:`rgb_to_y`); they are
  cropped by ``border`` pixels on every side, then computed in float64.
* PSNR is ``20 * log10(255 / sqrt(MSE))`` with the MSE over all cropped pixels and channels;
  identical images give ``inf``.
* SSIM uses an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, and
  averages the SSIM map over the "valid" region only (5 pixels trimmed on every side after the
  border crop). RGB SSIM is the mean of the three per-channel SSIMs.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import correlate1d

from harness.errors import HarnessError

_WINDOW_SIZE = 11
_WINDOW_SIGMA = 1.5
_PEAK = 255.0
_C1 = (0.01 * _PEAK) ** 2
_C2 = (0.03 * _PEAK) ** 2
# Rows of MATLAB's rgb2ycbcr matrix for Y, applied to values on the 0..255 scale.
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])


def _gaussian_window() -> np.ndarray:
    """The 1-D Gaussian whose outer product is the 11x11 SSIM window (weights sum to 1)."""
    offsets = np.arange(_WINDOW_SIZE, dtype=np.float64) - (_WINDOW_SIZE - 1) / 2
    weights = np.exp(-(offsets**2) / (2 * _WINDOW_SIGMA**2))
    return weights / weights.sum()


_WINDOW_1D = _gaussian_window()


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Return the BT.601 luma (16..235) of a uint8 HxWx3 RGB image as float64, rounded to integers.

    ``Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16`` with R, G, B in 0..255, as MATLAB's
    ``rgb2ycbcr``. Like MATLAB on a uint8 image, and like the official ``rgb2ycbcr(img,
    only_y=True)`` that the (commented-out) Y metrics of the challenge script call on the uint8 SR
    and HR images, the result is rounded to whole grey levels (half to even, NumPy's rule); the
    rounding changes PSNR-Y by a few hundredths of a dB, so it is part of the protocol. The values
    are returned as float64 rather than uint8 only to save a conversion in the metrics.

    The sum is formed by the same ``np.dot`` of the uint8 image as in the official code: 194 of
    the 16.7 M colours land within rounding error of a half grey level, where a different
    summation order (or MATLAB's round-half-away rule) can move Y by one level.
    """
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
        raise HarnessError(f"rgb_to_y needs an HxWx3 RGB image, got shape {getattr(img, 'shape', None)}")
    if img.dtype != np.uint8:
        raise HarnessError(f"rgb_to_y needs a uint8 image, got dtype {img.dtype}")
    return np.round(np.dot(img, _Y_WEIGHTS) / 255.0 + 16.0)


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    """Refuse anything but two arrays of one HxW or HxWx3 shape."""
    for name, img in (("first image", a), ("second image", b)):
        if not isinstance(img, np.ndarray):
            raise HarnessError(f"{name} must be a numpy array, got {type(img).__name__}")
        if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
            raise HarnessError(f"{name} must be HxW or HxWx3, got shape {img.shape}")
    if a.shape != b.shape:
        raise HarnessError(f"image shapes differ: {a.shape} vs {b.shape}")


def _prepare(a: np.ndarray, b: np.ndarray, border: int, min_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Check a metric's inputs, crop ``border`` pixels from every side and convert to float64."""
    _check_pair(a, b)
    if isinstance(border, bool) or not isinstance(border, (int, np.integer)) or border < 0:
        raise HarnessError(f"border must be a non-negative integer, got {border!r}")
    height, width = a.shape[:2]
    if min(height, width) - 2 * border < min_side:
        raise HarnessError(
            f"image of shape {a.shape} is too small for border {border}: "
            f"at least {min_side} pixels per side must remain"
        )
    crop = (slice(border, height - border), slice(border, width - border))
    return a[crop].astype(np.float64), b[crop].astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, *, border: int) -> float:
    """Peak signal-to-noise ratio in dB (peak 255) after cropping ``border`` pixels per side.

    Returns ``inf`` for identical crops.
    """
    x, y = _prepare(a, b, border, min_side=1)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return math.inf
    return 20.0 * math.log10(_PEAK / math.sqrt(mse))


def _filter_valid(plane: np.ndarray) -> np.ndarray:
    """Weighted 11x11 Gaussian mean around every pixel whose window lies inside the plane.

    The window is separable, so two 1-D passes do the work; the pass's edge handling only
    affects the 5-pixel rim, which is then discarded (the "valid" region).
    """
    rim = _WINDOW_SIZE // 2
    filtered = correlate1d(correlate1d(plane, _WINDOW_1D, axis=0), _WINDOW_1D, axis=1)
    return filtered[rim:-rim, rim:-rim]


def _ssim_plane(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM of two float64 planes over the valid region."""
    mu_x = _filter_valid(x)
    mu_y = _filter_valid(y)
    var_x = _filter_valid(x * x) - mu_x * mu_x
    var_y = _filter_valid(y * y) - mu_y * mu_y
    cov = _filter_valid(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + _C1) * (var_x + var_y + _C2)
    return float(np.mean(numerator / denominator))


def ssim(a: np.ndarray, b: np.ndarray, *, border: int) -> float:
    """Structural similarity (MATLAB / official definition) after cropping ``border`` pixels per side.

    For HxWx3 inputs this is the mean of the three per-channel SSIMs.
    """
    x, y = _prepare(a, b, border, min_side=_WINDOW_SIZE)
    if x.ndim == 2:
        return _ssim_plane(x, y)
    return float(np.mean([_ssim_plane(x[..., c], y[..., c]) for c in range(x.shape[2])]))


def fidelity(sr: np.ndarray, hr: np.ndarray, *, border: int) -> dict[str, float]:
    """All four protocol figures for one uint8 HxWx3 SR/HR pair.

    Keys: ``psnr_rgb`` (the figure the official script reports and ranks), ``psnr_y``,
    ``ssim_rgb`` and ``ssim_y``.
    """
    _check_pair(sr, hr)  # before the Y conversion, so a mismatch names the RGB shapes
    sr_y, hr_y = rgb_to_y(sr), rgb_to_y(hr)
    return {
        "psnr_rgb": psnr(sr, hr, border=border),
        "psnr_y": psnr(sr_y, hr_y, border=border),
        "ssim_rgb": ssim(sr, hr, border=border),
        "ssim_y": ssim(sr_y, hr_y, border=border),
    }
