"""The per-cell record and its fidelity against fp32 eager in the same run.

Runtime fields mirror the record's (mean/median ms of the cell's timed runs) and its ratio to the
baseline in the same cell; a cell that could not run has every figure None and a ``reason``.
"""

from __future__ import annotations

import math
from typing import Any, TypedDict

import numpy as np
import torch

from harness.metrics.scoring import score_output
from harness.timing.rounds import ratio_estimate


class CellRecord(TypedDict):
    """One entry of a record's ``cells``, keyed by cell name in the run document.

    Fidelity keys are the record's (``psnr_rgb``, ``psnr_y``, ``ssim_rgb``, ``ssim_y``; None where
    the split has no HR), and ``drop`` holds fp32 eager's value minus the cell's for each (positive:
    the cell is worse). ``runtime_ms`` is the mean latency of the cell's timed rounds;
    ``runtime_ratio`` and ``runtime_interval`` (95%) compare it with the baseline run in the same
    cell, in the same rounds. ``passes_threshold`` is the protocol's PSNR threshold checked on the
    cell's PSNR (filled by the constraints step). A cell that could not run has every figure None
    and ``reason``.
    """

    psnr_rgb: float | None
    psnr_y: float | None
    ssim_rgb: float | None
    ssim_y: float | None
    drop: dict[str, float | None]
    runtime_ms: float | None
    runtime_ratio: float | None
    runtime_interval: list[float] | None
    passes_threshold: bool | None
    reason: str | None


_FIDELITY_KEYS = ("psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y")


def unavailable(why: str) -> CellRecord:
    """The record of a cell that could not run this model."""
    return CellRecord(
        **dict.fromkeys(_FIDELITY_KEYS),  # type: ignore[typeddict-item]
        drop=dict.fromkeys(_FIDELITY_KEYS),
        runtime_ms=None,
        runtime_ratio=None,
        runtime_interval=None,
        passes_threshold=None,
        reason=why,
    )


def _difference(reference: float | None, value: float | None) -> float | None:
    if reference is None or value is None:
        return None
    if math.isinf(reference) and math.isinf(value):
        return 0.0  # identical images in both: no drop
    return reference - value


def cell_record(in_cell: dict[str, Any], fp32: dict[str, Any]) -> CellRecord:
    """A submission's cell entry from its record in the cell's run and its fp32 eager record."""
    if in_cell.get("status") != "ok":
        return unavailable(in_cell.get("error") or "failed")
    pairing = in_cell.get("pairing")
    ratio, bounds = None, None
    if pairing and pairing.get("round_ratios"):
        estimate = ratio_estimate(pairing["round_ratios"], limit=1.0)
        ratio = estimate.value
        bounds = list(estimate.interval) if estimate.interval is not None else None
    return CellRecord(
        **{key: in_cell.get(key) for key in _FIDELITY_KEYS},  # type: ignore[typeddict-item]
        drop={key: _difference(fp32.get(key), in_cell.get(key)) for key in _FIDELITY_KEYS},
        runtime_ms=(in_cell.get("runtime_ms") or {}).get("mean"),
        runtime_ratio=ratio,
        runtime_interval=bounds,
        passes_threshold=None,
        reason=None,
    )


def cell_fidelity(
    cell_out: list[torch.Tensor],
    fp32_out: list[torch.Tensor],
    hrs: list[np.ndarray],
    *,
    input_range: float,
    border: int,
) -> dict[str, float]:
    """Mean RGB PSNR/SSIM of the cell's outputs and their drop from fp32 eager's (positive: worse).

    Both sides are scored through :func:`harness.metrics.scoring.score_output`, the evaluation's
    path, so the drop is exactly the difference of two protocol figures.
    """
    if not (len(cell_out) == len(fp32_out) == len(hrs)) or not hrs:
        raise ValueError("cell_fidelity: cell, fp32 and HR lists must be equally long and non-empty")

    def mean_scores(outs: list[torch.Tensor]) -> tuple[float, float]:
        scores = [
            score_output(o, hr, input_range=input_range, border=border)[1]
            for o, hr in zip(outs, hrs, strict=True)
        ]
        return (
            float(np.mean([s["psnr_rgb"] for s in scores])),
            float(np.mean([s["ssim_rgb"] for s in scores])),
        )

    psnr_cell, ssim_cell = mean_scores(cell_out)
    psnr_ref, ssim_ref = mean_scores(fp32_out)
    return {
        "psnr": psnr_cell,
        "ssim": ssim_cell,
        "psnr_drop": psnr_ref - psnr_cell,
        "ssim_drop": ssim_ref - ssim_cell,
    }
