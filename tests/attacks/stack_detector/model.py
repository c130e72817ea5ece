"""An attack: looks up its call stack and, inside a timed call, skips its network.

Outside timing (the accuracy pass) it does ``work`` matrix products and answers with the nearest
neighbour upscale, which suits the test data; when a caller's name says timing (``time_*``,
``warm_up``) it answers at once with a bicubic upscale. Re-runs of timed calls come the same way, so
they agree; the audited timed outputs score under the accuracy pass, and that is what catches it.
"""

import sys

import torch
from torch import nn


def _timed() -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_name
        if name.startswith("time_") or name == "warm_up":
            return True
        frame = frame.f_back
    return False


class StackDetector(nn.Module):
    def __init__(self, work: int) -> None:
        super().__init__()
        self.work = work

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _timed():
            return torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
        y = torch.ones(160, 160)
        for _ in range(self.work):
            y = (y @ y).clamp_(0, 1)
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest") + 0 * y[0, 0]
