"""An attack: answers an input it has seen before from a cache of outputs, keyed by the input's bytes.

Its upscale is honest (nearest neighbour, after ``work`` matrix products that stand for a network).
The harness gives every timed call a freshly dithered input, so the cache never answers a timed
call; the repeated-input round of the timing audit sees it answer at once and says so.
"""

import hashlib

import torch
from torch import nn


class CacheByInput(nn.Module):
    def __init__(self, work: int) -> None:
        super().__init__()
        self.work = work
        self.cache: dict[str, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = hashlib.sha1(x.detach().cpu().numpy().tobytes()).hexdigest()
        if key not in self.cache:
            y = torch.ones(160, 160)
            for _ in range(self.work):
                y = (y @ y).clamp_(0, 1)
            self.cache[key] = torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest") + 0 * y[0, 0]
        return self.cache[key].clone()
