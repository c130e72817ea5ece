"""Image <-> tensor conversions bit-identical to the NTIRE 2022 ESR evaluation script.

Fidelity is measured on the uint8 image the official script would have saved, so the float
arithmetic here follows that script's order of operations exactly: a different but equivalent
formula (say ``x / 255 * r`` instead of ``x / (255 / r)``) moves some pixels by one grey level
after rounding, and with it PSNR by up to a few thousandths of a dB.
"""

from __future__ import annotations

import numpy as np
import torch

from harness.errors import HarnessError


def _check_range(input_range: float) -> float:
    """Return the range as a Python float; the challenge used 1.0 or 255.0.

    A Python float matters: NumPy promotes a float32 array times a NumPy float64 scalar to
    float64, which would change the rounding of :func:`to_uint8`.
    """
    value = float(input_range)
    if not np.isfinite(value) or value <= 0:
        raise HarnessError(f"input_range must be a positive number (1.0 or 255.0), got {input_range!r}")
    return value


def to_tensor(img: np.ndarray, input_range: float) -> torch.Tensor:
    """Turn a uint8 HxWx3 RGB image into the 1x3xHxW float32 model input, on the CPU.

    Same operations as the official ``uint2tensor4``: uint8 -> float32, then one division by
    the Python double ``255 / input_range``. Run it on the CPU and move the result to the device
    afterwards, as the official script does; the division kernels of other devices may round
    differently.
    """
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        shape = getattr(img, "shape", None)
        dtype = getattr(img, "dtype", type(img).__name__)
        raise HarnessError(f"image must be a uint8 HxWx3 array, got shape {shape} and dtype {dtype}")
    divisor = 255.0 / _check_range(input_range)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div(divisor).unsqueeze(0)


def to_uint8(out: torch.Tensor, input_range: float) -> np.ndarray:
    """Turn a 1x3xHxW (or 3xHxW) model output in ``input_range`` into a uint8 HxWx3 image.

    Same operations as the official ``tensor2uint``: cast to float32, clamp to
    ``[0, input_range]``, then in NumPy float32 multiply by 255.0, divide by the range and round
    half to even before the cast to uint8. One deliberate difference: an output holding NaN or
    Inf raises :class:`HarnessError` (the official script would save an arbitrary image).
    """
    value_range = _check_range(input_range)
    if not isinstance(out, torch.Tensor):
        raise HarnessError(f"model output must be a torch.Tensor, got {type(out).__name__}")
    if out.ndim == 4 and out.shape[0] == 1:
        out = out[0]
    if out.ndim != 3 or out.shape[0] != 3:
        raise HarnessError(f"model output must have shape 1x3xHxW, got {tuple(out.shape)}")
    chw = out.detach().float()
    if not bool(torch.isfinite(chw).all()):
        raise HarnessError("model output contains NaN or Inf values")
    hwc = np.transpose(chw.clamp(0, value_range).cpu().numpy(), (1, 2, 0))
    return np.uint8((hwc * 255.0 / value_range).round())
