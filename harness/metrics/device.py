"""The protocol's PSNR, SSIM and Y computed in torch, on the device that produced the SR image.

On a GPU the SR output never has to travel to the host for scoring: it becomes uint8 there, with
the same float32 operations as the official ``tensor2uint`` (IEEE float32 multiply, divide and
round-half-to-even give the same bits on any device), and is scored against the HR image there.
The figures equal :mod:`harness.metrics.fidelity`'s: Y and PSNR are exact integer arithmetic in
both, SSIM is float64 in both (only the order of the filter sums differs, a few ulps).

Images here are uint8 tensors laid out CxHxW (C = 3 for RGB, 1 for a Y plane).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.metrics.fidelity import (
    C1,
    C2,
    WINDOW_SIZE,
    Y_DENOMINATOR,
    Y_OFFSET,
    Y_WEIGHTS,
    check_border,
    gaussian_window,
    psnr_from_sse,
)


def to_uint8_tensor(out: torch.Tensor, input_range: float) -> torch.Tensor:
    """A 1x3xHxW model output in ``input_range`` as a uint8 3xHxW tensor on the same device.

    The official order of operations: float32, clamp to ``[0, input_range]``, times 255.0, divided
    by the range, rounded half to even. The caller has checked shape and finiteness.

    The divisor is a tensor on the output's device, not a Python number: CUDA divides by a host
    scalar as a multiplication by its float32 reciprocal, which for ``input_range=255`` puts some
    pixels one grey level away from the official NumPy division. A device tensor takes CUDA's true
    division, the same IEEE operation NumPy performs.
    """
    chw = out.detach()[0].float().clamp(0, input_range)
    divisor = torch.tensor(input_range, dtype=torch.float32, device=chw.device)
    return chw.mul(255.0).div(divisor).round().to(torch.uint8)


def rgb_to_y_tensor(rgb: torch.Tensor) -> torch.Tensor:
    """The exact, half-to-even rounded BT.601 luma of a uint8 3xHxW tensor, as uint8 1xHxW.

    The same integer arithmetic as :func:`harness.metrics.fidelity.rgb_to_y`.
    """
    channels = rgb.to(torch.int64)
    numerator = (
        Y_WEIGHTS[0] * channels[0] + Y_WEIGHTS[1] * channels[1] + Y_WEIGHTS[2] * channels[2] + Y_OFFSET
    )
    level = torch.div(numerator, Y_DENOMINATOR, rounding_mode="floor")
    twice = 2 * (numerator - level * Y_DENOMINATOR)
    level += (twice > Y_DENOMINATOR) | ((twice == Y_DENOMINATOR) & (level % 2 == 1))
    return level.to(torch.uint8).unsqueeze(0)


def _crop(img: torch.Tensor, border: int) -> torch.Tensor:
    height, width = img.shape[-2:]
    return img[..., border : height - border, border : width - border]


def psnr_tensor(a: torch.Tensor, b: torch.Tensor, *, border: int) -> float:
    """PSNR of two uint8 CxHxW tensors after the border crop, from an exact int64 sum of squares."""
    difference = _crop(a, border).to(torch.int64) - _crop(b, border).to(torch.int64)
    sse = int(difference.square().sum().item())
    return psnr_from_sse(sse, difference.numel())


def ssim_tensor(a: torch.Tensor, b: torch.Tensor, *, border: int) -> float:
    """SSIM of two uint8 CxHxW tensors after the border crop: the mean of the per-channel SSIMs.

    The five window moments of every channel are filtered in one grouped, separable float64
    convolution without padding, which yields the "valid" region directly.
    """
    x = _crop(a, border).to(torch.float64)
    y = _crop(b, border).to(torch.float64)
    channels = x.shape[0]
    stacked = torch.cat([x, y, x * x, y * y, x * y]).unsqueeze(0)  # 1 x 5C x H x W
    window = torch.from_numpy(gaussian_window()).to(device=x.device, dtype=torch.float64)
    groups = stacked.shape[1]
    vertical = window.view(1, 1, WINDOW_SIZE, 1).expand(groups, 1, WINDOW_SIZE, 1)
    horizontal = window.view(1, 1, 1, WINDOW_SIZE).expand(groups, 1, 1, WINDOW_SIZE)
    moments = F.conv2d(F.conv2d(stacked, vertical, groups=groups), horizontal, groups=groups)[0]
    mu_x, mu_y, s_xx, s_yy, s_xy = moments.split(channels)
    mu_xy = mu_x * mu_y
    mu_sq = mu_x * mu_x + mu_y * mu_y
    numerator = (2 * mu_xy + C1) * (2 * (s_xy - mu_xy) + C2)
    denominator = (mu_sq + C1) * (s_xx + s_yy - mu_sq + C2)
    return float((numerator / denominator).mean(dim=(1, 2)).mean().item())


def fidelity_tensor(
    sr: torch.Tensor, hr: torch.Tensor, *, border: int, hr_y: torch.Tensor | None = None
) -> dict[str, float]:
    """``psnr_rgb``, ``psnr_y``, ``ssim_rgb`` and ``ssim_y`` of uint8 3xHxW tensors on one device."""
    check_border(tuple(sr.shape[-2:]), border, WINDOW_SIZE)
    sr_y = rgb_to_y_tensor(sr)
    hr_y = rgb_to_y_tensor(hr) if hr_y is None else hr_y
    return {
        "psnr_rgb": psnr_tensor(sr, hr, border=border),
        "psnr_y": psnr_tensor(sr_y, hr_y, border=border),
        "ssim_rgb": ssim_tensor(sr, hr, border=border),
        "ssim_y": ssim_tensor(sr_y, hr_y, border=border),
    }
