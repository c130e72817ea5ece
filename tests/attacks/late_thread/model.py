"""An attack: returns its output tensor at once and leaves a thread computing it.

The forward pass allocates the output, starts a thread that does ``work`` matrix products and then
writes the nearest neighbour upscale into it, and returns. A timer that stops when the call returns
sees almost nothing; whoever reads the output soon after reads it unfinished.
"""

import threading

import torch
from torch import nn


class LateThread(nn.Module):
    def __init__(self, work: int) -> None:
        super().__init__()
        self.work = work

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], x.shape[1], x.shape[2] * 4, x.shape[3] * 4)

        def finish() -> None:
            y = torch.ones(160, 160)
            for _ in range(self.work):
                y = (y @ y).clamp_(0, 1)
            out.copy_(torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest"))

        threading.Thread(target=finish, daemon=True).start()
        return out
