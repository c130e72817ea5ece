"""MATLAB-exact bicubic x4 upscaling as a parameter-free "model": the floor every submission must beat.

It goes through the same uint8 image the evaluation would save, so its output is exactly MATLAB's
``imresize(lr, 4, 'bicubic')`` after the harness converts it back: the input (values ``k / 255``
times the input range) is turned into uint8 losslessly, resized with :func:`harness.imresize.imresize`
and turned back. It has no parameters and runs no counted modules, so its complexity is all zeros.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.imresize import imresize
from harness.metrics import to_tensor, to_uint8


class Bicubic(nn.Module):
    """Upscale a ``B x 3 x H x W`` image batch in ``input_range`` by ``scale`` (2, 3 or 4)."""

    def __init__(self, scale: int = 4, input_range: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.input_range = input_range

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = [to_uint8(x[i : i + 1], self.input_range) for i in range(x.shape[0])]
        upscaled = [to_tensor(imresize(image, self.scale), self.input_range) for image in images]
        return torch.cat(upscaled).to(device=x.device, dtype=x.dtype)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, input_range={self.input_range:g}"
