"""Fidelity metrics of the NTIRE 2022 ESR protocol and the tensor conversions they depend on."""

from harness.metrics.convert import to_tensor, to_uint8
from harness.metrics.fidelity import fidelity, psnr, rgb_to_y, ssim

__all__ = ["fidelity", "psnr", "rgb_to_y", "ssim", "to_tensor", "to_uint8"]
