"""A submission that sleeps in its forward pass, and a tiny paired dataset, for tests that must
catch a run in the middle (kill it, kill one of its workers) or run several at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SLOW_MODEL = """
import time

import torch
from torch import nn


class Slow(nn.Module):
    def __init__(self, sleep_s: float, mode: str) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))
        self.sleep_s = sleep_s
        self.mode = mode

    def forward(self, x):
        time.sleep(self.sleep_s)
        return torch.nn.functional.interpolate(x, scale_factor=4, mode=self.mode) * self.gain
"""


def write_slow_submission(folder: Path, *, sleep_s: float, mode: str = "nearest") -> Path:
    """A submission named ``slow`` in ``folder``: each forward pass sleeps, then upsamples x4."""
    folder.mkdir(parents=True)
    (folder / "slow.py").write_text(SLOW_MODEL)
    (folder / "submission.yaml").write_text(
        f"name: slow\nteam: test\ndescription: sleeps {sleep_s:g} s, then {mode} x4\n"
        f"model:\n  file: slow.py\n  class: Slow\n  kwargs:\n    sleep_s: {sleep_s}\n    mode: {mode}\n"
        "input_range: 1.0\nscale: 4\n"
    )
    return folder


def write_paired_dataset(folder: Path, *, count: int, lr_size: tuple[int, int], noise: int = 0) -> Path:
    """``count`` random LR images and their x4 nearest-neighbour HR (plus uniform noise up to
    ``noise`` grey levels), in BasicSR's layout: ``HR/`` and ``LR_bicubic/X4/``."""
    (folder / "HR").mkdir(parents=True)
    (folder / "LR_bicubic" / "X4").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        lr = rng.integers(0, 256, (*lr_size, 3), dtype=np.uint8)
        hr = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)
        if noise:
            hr = np.clip(hr.astype(int) + rng.integers(-noise, noise + 1, hr.shape), 0, 255).astype(np.uint8)
        Image.fromarray(hr).save(folder / "HR" / f"im{index}.png")
        Image.fromarray(lr).save(folder / "LR_bicubic" / "X4" / f"im{index}x4.png")
    return folder
