"""From a model's output tensor to the protocol's figures: the one path every part of the harness uses.

The evaluation's workers, training validation, the pruning criterion and the report all turn an SR
output into uint8 pixels the official way (:func:`sr_pixels`) and score them (:func:`score_pixels`),
so a number shown anywhere was made the way the evaluation makes it. The evaluation splits the two:
the worker, which runs the submission, makes the pixels; the scorer (:mod:`harness.runner.scorer`),
outside it, holds the HR images and scores them. On a GPU the pixels are made and scored on a CUDA
device (:mod:`harness.metrics.device`); on the CPU with :mod:`harness.metrics.fidelity`.
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


def sr_pixels(out: torch.Tensor, input_range: float) -> np.ndarray:
    """The uint8 HxWx3 image of a 1x3xHxW model output, made the official way (``tensor2uint``).

    On a GPU the output becomes uint8 on its device and only the bytes travel to the host; on the
    CPU with NumPy. Both give the same bits (:mod:`harness.metrics.device`). The evaluation's
    workers return these pixels, and :func:`score_output` scores them: one quantisation for both.
    """
    if out.is_cuda:
        return np.ascontiguousarray(to_uint8_tensor(out, input_range).permute(1, 2, 0).cpu().numpy())
    return np.ascontiguousarray(to_uint8(out, input_range))


def score_pixels(
    pixels: np.ndarray,
    hr: np.ndarray | None,
    *,
    border: int,
    hr_y: np.ndarray | None = None,
    psnr_only: bool = False,
    device: torch.device | str = "cpu",
) -> dict[str, float | None]:
    """The scores of uint8 HxWx3 SR ``pixels`` against ``hr``, computed on ``device``.

    Scores are ``psnr_rgb`` alone with ``psnr_only``, else the four protocol figures; all None
    when there is no HR (an inference-only split). ``hr_y`` is the HR's Y plane when known. On a
    GPU in torch (:mod:`harness.metrics.device`), else with :mod:`harness.metrics.fidelity`.
    """
    keys = ("psnr_rgb",) if psnr_only else METRIC_KEYS
    if hr is None:
        return dict.fromkeys(keys)
    device = torch.device(device)
    if device.type == "cuda":
        sr = _on_device(pixels, device)
        hr_tensor = _on_device(hr, device)
        if psnr_only:
            return {"psnr_rgb": psnr_tensor(sr, hr_tensor, border=border)}
        y = None if hr_y is None else _on_device(hr_y, device, plane=True)
        return dict(fidelity_tensor(sr, hr_tensor, border=border, hr_y=y))
    if psnr_only:
        return {"psnr_rgb": psnr(pixels, np.asarray(hr), border=border)}
    return dict(
        fidelity(pixels, np.asarray(hr), border=border, hr_y=None if hr_y is None else np.asarray(hr_y))
    )


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

    :func:`sr_pixels` then :func:`score_pixels` on the device that made ``out``.
    """
    pixels = sr_pixels(out, input_range)
    scores = score_pixels(pixels, hr, border=border, hr_y=hr_y, psnr_only=psnr_only, device=out.device)
    return (pixels if keep_pixels else None), scores
