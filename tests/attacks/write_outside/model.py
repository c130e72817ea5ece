"""An attack: writes a file outside any scratch folder at every forward pass (to leave a cache or a
trace for a later run). A failed write is ignored, so the submission carries on either way."""

from pathlib import Path

import torch
from torch import nn


class WriteOutside(nn.Module):
    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = Path(target)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            with self.target.open("a") as handle:
                handle.write("written from a forward pass\n")
        except OSError:
            pass
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")
