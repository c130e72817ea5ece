"""Fidelity metrics of the NTIRE 2022 ESR protocol and the tensor conversions they depend on.

``fidelity`` and friends work on NumPy uint8 images on the CPU; ``fidelity_tensor`` and friends
compute the same figures in torch on the device that produced the image.
"""

from harness.metrics.convert import to_tensor, to_uint8
from harness.metrics.device import fidelity_tensor, rgb_to_y_tensor, to_uint8_tensor
from harness.metrics.fidelity import fidelity, psnr, rgb_to_y, ssim
from harness.metrics.scoring import METRIC_KEYS, score_output, score_pixels, sr_pixels

__all__ = [
    "METRIC_KEYS",
    "fidelity",
    "fidelity_tensor",
    "psnr",
    "rgb_to_y",
    "rgb_to_y_tensor",
    "score_output",
    "score_pixels",
    "sr_pixels",
    "ssim",
    "to_tensor",
    "to_uint8",
    "to_uint8_tensor",
]
