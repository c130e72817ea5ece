"""The per-cell record and its fidelity against fp32 eager in the same run.

Runtime fields mirror the record's (mean/median ms of the cell's timed runs) and its ratio to the
baseline in the same cell; a cell that could not run has every figure None and a ``reason``.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np
import torch

from harness.metrics.scoring import score_output


class CellRecord(TypedDict):
    """One entry of a record's ``cells``, keyed by cell name in the run document."""

    psnr: float | None
    ssim: float | None
    psnr_drop: float | None
    ssim_drop: float | None
    runtime_ms: float | None
    runtime_ratio: float | None
    passes_threshold: bool | None
    reason: str | None


def unavailable(why: str) -> CellRecord:
    """The record of a cell that could not run this model."""
    return CellRecord(
        psnr=None,
        ssim=None,
        psnr_drop=None,
        ssim_drop=None,
        runtime_ms=None,
        runtime_ratio=None,
        passes_threshold=None,
        reason=why,
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
