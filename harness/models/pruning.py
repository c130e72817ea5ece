"""Coarse-grained pruning of IMDN: remove whole distillation blocks, chosen greedily by PSNR.

The seed prunes the 8-block IMDN baseline to 7 blocks (its Table 1 lists 4 to 8) and then recovers
the accuracy by training. Removing a block is exact surgery in this IMDN: every block maps 64
channels to 64 channels inside one long skip connection and nothing after the blocks depends on
their number (the released baseline has no concatenation of block outputs), so a pruned network is
simply ``IMDN(nb=k)`` whose blocks are the kept ones, renumbered in order.

Which blocks go is measured, not guessed: at each step every remaining block is tried out, and the
block whose removal costs the least PSNR on a calibration set is dropped (ties: the lower index).
The calibration set is small centre crops so that the ``O(8 k)`` trial networks run in seconds on
a CPU; the PSNR is the evaluation's (RGB, border = scale, on the saved uint8 image).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from harness.errors import HarnessError
from harness.metrics import score_output, to_tensor
from harness.models.imdn import IMDN

_BLOCK_KEY = re.compile(r"^model\.1\.sub\.(\d+)\.(.+)$")
#: The block counts the seed's Table 1 covers.
MIN_BLOCKS, MAX_BLOCKS = 4, 8


@dataclass(frozen=True)
class CalibrationImage:
    """One LR/HR pair (uint8 HxWx3) the pruning criterion is measured on."""

    name: str
    lr: np.ndarray
    hr: np.ndarray


def centre_crop_pair(lr: np.ndarray, hr: np.ndarray, size: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """The centred ``size`` x ``size`` LR crop (smaller if the image is) and its HR counterpart."""
    height, width = lr.shape[:2]
    crop_h, crop_w = min(size, height), min(size, width)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    lr_crop = lr[top : top + crop_h, left : left + crop_w]
    hr_crop = hr[scale * top : scale * (top + crop_h), scale * left : scale * (left + crop_w)]
    return np.ascontiguousarray(lr_crop), np.ascontiguousarray(hr_crop)


def calibration_set(
    pairs: Iterable[tuple[str, np.ndarray, np.ndarray | None]], *, crop: int | None, scale: int
) -> list[CalibrationImage]:
    """Centre-cropped calibration images from ``(name, lr, hr)`` pairs (a harness Dataset yields these)."""
    images = []
    for name, lr, hr in pairs:
        if hr is None:
            raise HarnessError(f"calibration image {name}: has no HR image to measure PSNR against")
        if hr.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale):
            raise HarnessError(
                f"calibration image {name}: HR {hr.shape[:2]} is not x{scale} of LR {lr.shape[:2]}"
            )
        if crop is not None:
            lr, hr = centre_crop_pair(lr, hr, crop, scale)
        images.append(CalibrationImage(name, lr, hr))
    if not images:
        raise HarnessError("the calibration set has no images")
    return images


def count_blocks(state_dict: Mapping[str, torch.Tensor]) -> int:
    """Number of distillation blocks in IMDN weights (the body's last convolution is not one)."""
    indices = {int(m.group(1)) for key in state_dict if (m := _BLOCK_KEY.match(key))}
    if not indices:
        raise HarnessError("these weights are not an IMDN: no model.1.sub.<i> keys")
    return max(indices)  # indices 0..nb-1 are blocks, nb is the body's last convolution


def prune_imdn(state_dict: Mapping[str, torch.Tensor], keep_blocks: Sequence[int]) -> dict[str, torch.Tensor]:
    """IMDN weights with only ``keep_blocks`` (original indices), renumbered 0..k-1 in their order.

    The result loads strictly into ``IMDN(nb=len(keep_blocks))``.
    """
    blocks = count_blocks(state_dict)
    keep = list(keep_blocks)
    if not keep or len(set(keep)) != len(keep) or any(not 0 <= b < blocks for b in keep):
        raise HarnessError(f"keep_blocks must be distinct block indices in 0..{blocks - 1}, got {keep}")
    renumber = {old: new for new, old in enumerate(sorted(keep))}
    renumber[blocks] = len(keep)  # the body's last convolution follows the kept blocks
    pruned: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        match = _BLOCK_KEY.match(key)
        if match is None:
            pruned[key] = value.clone()
        elif int(match.group(1)) in renumber:
            pruned[f"model.1.sub.{renumber[int(match.group(1))]}.{match.group(2)}"] = value.clone()
    return pruned


def _imdn_like(state_dict: Mapping[str, torch.Tensor], blocks: int) -> IMDN:
    """An IMDN shaped like these weights: widths read from the head and upsampler kernels."""
    head, up = state_dict["model.0.weight"], state_dict["model.2.weight"]
    out_nc = 3
    upscale = int(round((up.shape[0] / out_nc) ** 0.5))
    return IMDN(in_nc=head.shape[1], out_nc=out_nc, nc=head.shape[0], nb=blocks, upscale=upscale)


def _load_imdn(state_dict: Mapping[str, torch.Tensor], device: str | torch.device) -> IMDN:
    """The IMDN these weights fit, loaded strictly, on ``device`` in eval mode."""
    model = _imdn_like(state_dict, count_blocks(state_dict))
    model.load_state_dict(state_dict, strict=True)
    return model.to(device).eval()


def _psnr(out: torch.Tensor, hr: np.ndarray, *, input_range: float, border: int) -> float:
    """RGB PSNR of a network output, made uint8 and scored as the evaluation does it."""
    _, scores = score_output(
        out, hr, input_range=input_range, border=border, psnr_only=True, keep_pixels=False
    )
    return float(scores["psnr_rgb"])  # type: ignore[arg-type]


@torch.no_grad()
def calibration_psnr(
    state_dict: Mapping[str, torch.Tensor],
    images: Sequence[CalibrationImage],
    *,
    input_range: float = 1.0,
    device: str | torch.device = "cpu",
) -> float:
    """Mean RGB PSNR (border = scale) of the IMDN with these weights over the calibration images."""
    model = _load_imdn(state_dict, device)
    values = []
    for image in images:
        out = model(to_tensor(image.lr, input_range).to(device))
        values.append(_psnr(out, image.hr, input_range=input_range, border=model.upscale))
    return float(np.mean(values))


@dataclass(frozen=True)
class PruneStep:
    """One greedy step: the PSNR after removing each candidate, and the block removed."""

    removed_block: int
    psnr: float
    candidates: dict[int, float]


@dataclass(frozen=True)
class PruningResult:
    """The greedy search's outcome; ``state_dict`` loads into ``IMDN(nb=len(kept_blocks))``."""

    source_blocks: int
    kept_blocks: tuple[int, ...]
    removed_blocks: tuple[int, ...]
    baseline_psnr: float
    steps: tuple[PruneStep, ...]
    state_dict: dict[str, torch.Tensor] = field(repr=False)

    @property
    def psnr(self) -> float:
        """Calibration PSNR of the pruned network before any fine-tuning."""
        return self.steps[-1].psnr if self.steps else self.baseline_psnr

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_blocks": self.source_blocks,
            "blocks": len(self.kept_blocks),
            "kept_blocks": list(self.kept_blocks),
            "removed_blocks": list(self.removed_blocks),
            "baseline_psnr": self.baseline_psnr,
            "psnr": self.psnr,
            "steps": [
                {
                    "removed_block": step.removed_block,
                    "psnr": step.psnr,
                    "candidates": {str(block): value for block, value in step.candidates.items()},
                }
                for step in self.steps
            ],
        }


class _BlockSubsets:
    """Runs the source IMDN with any subset of its blocks on the calibration images.

    Removing block ``b`` leaves the features entering ``b`` unchanged, so they are computed once
    per greedy step and each trial runs only the blocks after ``b``: about half the work of
    building every pruned network. The operations are those of ``IMDN(nb=k)`` with the pruned
    weights, in the same order, so the PSNRs are identical to :func:`calibration_psnr`'s.
    """

    def __init__(
        self,
        state_dict: Mapping[str, torch.Tensor],
        images: Sequence[CalibrationImage],
        input_range: float,
        device: str | torch.device,
    ) -> None:
        source_blocks = count_blocks(state_dict)
        model = _load_imdn(state_dict, device)
        body = model.model[1].sub
        self.blocks = [body[i] for i in range(source_blocks)]
        self.body_end = body[source_blocks]
        self.upsampler = model.model[2:]
        self.border = model.upscale
        self.input_range = input_range
        self.images = images
        with torch.no_grad():
            self.heads = [model.model[0](to_tensor(image.lr, input_range).to(device)) for image in images]

    def _finish(self, index: int, features: torch.Tensor) -> float:
        head = self.heads[index]
        out = self.upsampler(head + self.body_end(features))
        return _psnr(out, self.images[index].hr, input_range=self.input_range, border=self.border)

    @torch.no_grad()
    def psnr_without(self, kept: Sequence[int]) -> tuple[float, dict[int, float]]:
        """Mean PSNR with ``kept`` blocks, and with each one of them removed in turn."""
        with_all: list[float] = []
        without: dict[int, list[float]] = {block: [] for block in kept}
        for index, head in enumerate(self.heads):
            entering = []  # features entering kept[i]
            features = head
            for block in kept:
                entering.append(features)
                features = self.blocks[block](features)
            with_all.append(self._finish(index, features))
            for position, removed in enumerate(kept):
                features = entering[position]
                for block in kept[position + 1 :]:
                    features = self.blocks[block](features)
                without[removed].append(self._finish(index, features))
        return float(np.mean(with_all)), {block: float(np.mean(v)) for block, v in without.items()}


def greedy_prune(
    state_dict: Mapping[str, torch.Tensor],
    blocks: int,
    images: Sequence[CalibrationImage],
    *,
    input_range: float = 1.0,
    device: str | torch.device = "cpu",
    progress: Callable[[str], None] | None = None,
) -> PruningResult:
    """Remove blocks one at a time, each time the one whose removal keeps the highest PSNR.

    Block indices in the result refer to the source weights (0-based).
    """
    source_blocks = count_blocks(state_dict)
    if not 1 <= blocks <= source_blocks:
        raise HarnessError(f"blocks must be between 1 and {source_blocks} for these weights, got {blocks}")
    if not images:
        raise HarnessError("the calibration set has no images")
    subsets = _BlockSubsets(state_dict, images, input_range, device)
    kept = list(range(source_blocks))
    baseline: float | None = None
    steps = []
    while len(kept) > blocks:
        current, candidates = subsets.psnr_without(kept)
        if baseline is None:
            baseline = current
            if progress:
                progress(f"{source_blocks} blocks: {baseline:.4f} dB")
        best = max(kept, key=lambda block: (candidates[block], -block))
        kept.remove(best)
        steps.append(PruneStep(best, candidates[best], candidates))
        if progress:
            progress(f"{len(kept)} blocks: removed block {best}, {candidates[best]:.4f} dB")
    if baseline is None:  # nothing to remove
        baseline = calibration_psnr(state_dict, images, input_range=input_range, device=device)
    return PruningResult(
        source_blocks=source_blocks,
        kept_blocks=tuple(kept),
        removed_blocks=tuple(step.removed_block for step in steps),
        baseline_psnr=baseline,
        steps=tuple(steps),
        state_dict=prune_imdn(state_dict, kept),
    )


__all__ = [
    "MAX_BLOCKS",
    "MIN_BLOCKS",
    "CalibrationImage",
    "PruneStep",
    "PruningResult",
    "calibration_psnr",
    "calibration_set",
    "centre_crop_pair",
    "count_blocks",
    "greedy_prune",
    "prune_imdn",
]
