"""The trusted half of the accuracy pass: a worker's SR pixels scored against HR outside the worker.

A submission is code the organisers do not know, so the process that runs it never holds the
ground truth (issue 18; ``docs/integrity.md``). Its worker is given the LR images only
(:meth:`SharedSplit.inputs_only`) and returns each SR output as uint8 pixels
(:class:`~harness.runner.messages.ImageOutput`, made by :func:`harness.metrics.sr_pixels`, the
official quantisation). A :class:`Scorer` in the coordinator's process reads HR and its Y plane
from the decoded-image cache, scores the pixels with :func:`harness.metrics.score_pixels` (the
code path ``score_output`` takes, so the figures are bit-identical to the worker's own scoring of
before) and writes the PNG when asked for, so the worker needs no write access to the run folder.

The scorer runs on the lane's thread of the coordinator, as each image arrives: the worker has
already started its next forward pass, so scoring still overlaps it, and the worker's next image
waits in the pipe until this one is scored (at most one image's pixels in flight per lane). On a
GPU lane of this machine the figures are computed on that GPU, as the worker computed them before;
a lane of another machine (Ray) is scored on this machine's CPU (PSNR is exact integer arithmetic
either way; SSIM may differ from the GPU's in the last few bits).

A worker can send anything, so its pixels are checked (a uint8 array of the expected shape, for an
image asked for and not already scored) before they are scored; anything else fails the
submission (:class:`ScoringFailed`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.data import write_png
from harness.errors import HarnessError
from harness.metrics import score_pixels
from harness.runner import messages as msg
from harness.runner.process import WorkerLost
from harness.runner.shared_data import SharedSplit


class ScoringFailed(WorkerLost):
    """An image's output cannot be scored: the worker sent something other than the SR image asked
    for, or the metrics refused it. Like a lost worker, it fails the submission with its message."""


def scoring_device(device: str, node: str) -> torch.device:
    """Where a lane's outputs are scored: its own GPU when this process can reach it (a local CUDA
    lane), else this machine's CPU."""
    return torch.device(device) if device.startswith("cuda") and node == "local" else torch.device("cpu")


class Scorer:
    """Scores one submission's outputs for images ``indices`` of ``split`` (which holds the HR files).

    ``scale`` is the submission's; ``border`` the protocol's; PNGs go to ``save_dir`` when given.
    """

    def __init__(
        self,
        split: SharedSplit,
        indices: Iterable[int],
        *,
        scale: int,
        border: int,
        device: torch.device,
        save_dir: Path | None = None,
    ) -> None:
        self.split = split
        self.scale = scale
        self.border = border
        self.device = device
        self.save_dir = save_dir
        self._waiting = set(indices)

    @property
    def missing(self) -> list[str]:
        """The names of the images asked for whose output has not come (yet)."""
        return [self.split.images[index].name for index in sorted(self._waiting)]

    def _pixels(self, output: object) -> tuple[int, np.ndarray]:
        """The image index and pixels of a worker's reply, refused unless they are what was asked for."""
        if not isinstance(output, msg.ImageOutput):
            raise ScoringFailed(f"the worker sent a {type(output).__name__} instead of an image's output")
        index = output.index
        if not isinstance(index, int) or index not in self._waiting:
            raise ScoringFailed(f"the worker sent an output for image {index!r}, which was not asked for")
        name = self.split.images[index].name
        pixels = output.pixels
        height, width = self.split.lr(index).shape[:2]
        expected = (height * self.scale, width * self.scale, 3)
        if type(pixels) is not np.ndarray or pixels.dtype != np.uint8 or pixels.shape != expected:
            found = f"{type(pixels).__name__} {getattr(pixels, 'dtype', '')} {getattr(pixels, 'shape', '')}"
            raise ScoringFailed(
                f"{name}: the output is {found.strip()}, expected uint8 pixels of shape {expected}"
            )
        self._waiting.discard(index)
        return index, pixels

    def score(self, output: object) -> dict[str, Any]:
        """The per-image record of one output (its name and figures, None without HR); its PNG is
        written first when asked for."""
        index, pixels = self._pixels(output)
        name = self.split.images[index].name
        if self.save_dir is not None:
            write_png(self.save_dir / f"{name}.png", pixels)
        try:
            scores = score_pixels(
                pixels,
                self.split.hr(index),
                border=self.border,
                hr_y=self.split.hr_y(index),
                device=self.device,
            )
        except HarnessError as error:
            raise ScoringFailed(f"{name}: {error}") from None
        return {"name": name, **scores}
