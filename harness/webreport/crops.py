"""Crops for visual comparisons: where to cut, how to enlarge, and the fidelity of a crop.

A crop is chosen by hand (``IMAGE:x,y,w,h`` in HR pixels) or automatically: the window where the
outputs shown side by side differ most, measured as the variance across outputs of the per-pixel
error, summed over the window. The error of a pixel is its absolute difference from HR summed over
the three channels, an integer; ``n * sum(e^2) - sum(e)^2`` (n^2 times the variance) and the window
sums are integers too, so the choice is exact and the same on every machine.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError
from harness.metrics import psnr, rgb_to_y, ssim

__all__ = ["MIN_SIDE", "Crop", "crop_fidelity", "cut", "enlarge", "most_different_window", "parse_crop"]

#: Smallest crop side: SSIM needs its 11x11 window inside the crop.
MIN_SIDE = 11

_SPEC = re.compile(r"^(?P<image>.+):(?P<x>\d+),(?P<y>\d+),(?P<w>\d+),(?P<h>\d+)$")


@dataclass(frozen=True)
class Crop:
    """A rectangle of one image in HR pixels; ``by_hand`` when the user chose it."""

    image: str
    x: int
    y: int
    width: int
    height: int
    by_hand: bool = False

    def check_inside(self, height: int, width: int) -> None:
        """Refuse a rectangle that leaves an image of ``height`` x ``width`` or is too small to measure."""
        if self.width < MIN_SIDE or self.height < MIN_SIDE:
            raise HarnessError(
                f"--crop {self.describe()}: a crop needs at least {MIN_SIDE}x{MIN_SIDE} pixels (for SSIM)"
            )
        if self.x + self.width > width or self.y + self.height > height:
            raise HarnessError(
                f"--crop {self.describe()}: leaves the image, which is {width}x{height} (HR pixels)"
            )

    def describe(self) -> str:
        return f"{self.image}:{self.x},{self.y},{self.width},{self.height}"


def parse_crop(spec: str) -> Crop:
    """``IMAGE:x,y,w,h`` (HR pixels, x and y from the top-left corner) as a hand-chosen crop."""
    match = _SPEC.match(spec)
    if match is None:
        raise HarnessError(f"--crop {spec}: expected IMAGE:x,y,w,h in HR pixels, e.g. 0801:120,64,96,96")
    return Crop(
        match["image"], int(match["x"]), int(match["y"]), int(match["w"]), int(match["h"]), by_hand=True
    )


def _window_sums(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """Sum of ``values`` over every height x width window, indexed by the window's top-left corner."""
    integral = np.zeros((values.shape[0] + 1, values.shape[1] + 1), dtype=np.int64)
    integral[1:, 1:] = values.cumsum(axis=0).cumsum(axis=1)
    return (
        integral[height:, width:]
        - integral[:-height, width:]
        - integral[height:, :-width]
        + integral[:-height, :-width]
    )


def most_different_window(
    hr: np.ndarray, outputs: Sequence[np.ndarray], size: int
) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the size x size window (clipped to the image) where ``outputs`` differ most.

    With a single output, or outputs that do not differ at all, it is the window of largest error.
    Ties go to the first window in reading order.
    """
    if not outputs:
        raise HarnessError("no output to compare")
    height, width = hr.shape[:2]
    window_h, window_w = min(size, height), min(size, width)
    reference = hr.astype(np.int64)
    errors = np.stack([np.abs(out.astype(np.int64) - reference).sum(axis=2) for out in outputs])
    count = len(outputs)
    spread = count * (errors**2).sum(axis=0) - errors.sum(axis=0) ** 2
    score = spread if spread.any() else errors.sum(axis=0)
    sums = _window_sums(score, window_h, window_w)
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(x), int(y), window_w, window_h


def cut(image: np.ndarray, crop: Crop) -> np.ndarray:
    """The pixels of ``crop`` in ``image``."""
    return image[crop.y : crop.y + crop.height, crop.x : crop.x + crop.width]


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement: every pixel becomes a factor x factor block, so pixels stay visible."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def crop_fidelity(sr: np.ndarray, hr: np.ndarray, *, channel: str) -> tuple[float, float]:
    """PSNR and SSIM of a crop on the protocol's channel (``rgb`` or ``y``), with no border removed."""
    if channel == "y":
        sr, hr = rgb_to_y(sr), rgb_to_y(hr)
    return psnr(sr, hr, border=0), ssim(sr, hr, border=0)
