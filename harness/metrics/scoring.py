"""From a model's output tensor to the protocol's figures: the one path every part of the harness uses.

The evaluation workers, training validation, the pruning criterion and the report all turn an SR
output into uint8 pixels the official way and score them here, so a number shown anywhere was made
the way the evaluation makes it. On a GPU the output is converted and scored on the device that
made it (:mod:`harness.metrics.device`); on the CPU with :mod:`harness.metrics.fidelity`.
"""

from __future__ import annotations

import numpy as np
import torch

from harness.metrics.convert import to_uint8
from harness.metrics.device import fidelity_tensor, psnr_tensor, to_uint8_tensor
from harness.metrics.fidelity import fidelity, psnr

METRIC_KEYS = ("psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y")


def _on_device(pixels: np.ndarray, device: torch.device, *, plane: bool = False) -> torch.Tensor:
    array = np.asarray(pixels)
    tensor = torch.from_numpy(np.ascontiguousarray(array if plane else array.transpose(2, 0, 1)))
    return (tensor.unsqueeze(0) if plane else tensor).to(device)


def score_output(
    out: torch.Tensor,
    hr: np.ndarray | None,
    *,
    input_range: float,
    border: int,
    hr_y: np.ndarray | None = None,
    psnr_only: bool = False,
    keep_pixels: bool = True,
) -> tuple[np.ndarray | None, dict[str, float | None]]:
    """The uint8 HxWx3 SR image of a 1x3xHxW ``out`` (when ``keep_pixels``) and its scores against ``hr``.

    Scores are ``psnr_rgb`` alone with ``psnr_only``, else the four protocol figures; all None
    when there is no HR (an inference-only split). ``hr_y`` is the HR's Y plane when known.
    """
    keys = ("psnr_rgb",) if psnr_only else METRIC_KEYS
    if out.is_cuda:
        sr = to_uint8_tensor(out, input_range)
        pixels = sr.permute(1, 2, 0).cpu().numpy() if keep_pixels else None
        if hr is None:
            return pixels, dict.fromkeys(keys)
        hr_tensor = _on_device(hr, sr.device)
        if psnr_only:
            return pixels, {"psnr_rgb": psnr_tensor(sr, hr_tensor, border=border)}
        y = None if hr_y is None else _on_device(hr_y, sr.device, plane=True)
        return pixels, fidelity_tensor(sr, hr_tensor, border=border, hr_y=y)
    pixels = to_uint8(out, input_range)
    if hr is None:
        scores: dict[str, float | None] = dict.fromkeys(keys)
    elif psnr_only:
        scores = {"psnr_rgb": psnr(pixels, np.asarray(hr), border=border)}
    else:
        scores = dict(
            fidelity(pixels, np.asarray(hr), border=border, hr_y=None if hr_y is None else np.asarray(hr_y))
        )
    return (pixels if keep_pixels else None), scores
