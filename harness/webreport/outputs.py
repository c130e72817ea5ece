"""The SR images a report compares: those a run saved, else made again by running the submission.

`esr evaluate --save-images` writes ``<run>/images/<submission>/<image>.png``. When a run has no such
file, the submission is loaded and run on that one image, the way the evaluation ran it (same
forward pass, tiling and uint8 conversion), and the report says so. A regenerated image is checked
against the PSNR the run recorded for it, since another device or thread count can move a pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from harness.data import read_image
from harness.errors import HarnessError
from harness.metrics import psnr, rgb_to_y, to_tensor, to_uint8
from harness.runner.forward import forward
from harness.submissions import LoadedModel, load_model, resolve_many

__all__ = ["OutputSource", "saved_image_path", "super_resolve"]

# Two PSNRs of one image closer than this are the same measurement (they are printed to 4 decimals).
_SAME_PSNR_DB = 5e-5


def super_resolve(loaded: LoadedModel, lr: np.ndarray, device: torch.device) -> np.ndarray:
    """One LR image through a loaded submission, as the runner does it, back to uint8 HR pixels."""
    submission = loaded.submission
    tensor = to_tensor(lr, submission.input_range).to(device)
    with torch.inference_mode():
        out = forward(
            loaded.model,
            tensor,
            scale=submission.scale,
            tile=submission.tile,
            tile_overlap=submission.tile_overlap,
        )
    return to_uint8(out, submission.input_range)


def saved_image_path(run_dir: Path, submission: str, image: str) -> Path:
    """Where `esr evaluate --save-images` put one SR image of a run."""
    return run_dir / "images" / submission / f"{image}.png"


@dataclass
class OutputSource:
    """Finds or makes SR images, and keeps account of what it had to make and what disagreed."""

    device: torch.device
    model_zoo: Path | None = None
    zoo: Path | None = None
    weights_cache: Path | None = None
    trust_weights: bool = False
    border: int = 4
    channel: str = "rgb"
    regenerated: dict[str, list[str]] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    _models: dict[str, LoadedModel] = field(default_factory=dict)

    def output(
        self,
        submission: str,
        image: str,
        lr: np.ndarray,
        hr: np.ndarray,
        *,
        run_dir: Path | None,
        recorded_psnr: float | None,
    ) -> np.ndarray | None:
        """The SR image of ``submission`` for ``image``: saved by its run, else regenerated (None if impossible)."""
        if run_dir is not None:
            path = saved_image_path(run_dir, submission, image)
            if path.is_file():
                saved = read_image(path)
                if saved.shape == hr.shape:
                    return saved
        if submission in self.unavailable:
            return None
        try:
            sr = super_resolve(self._model(submission), lr, self.device)
        except Exception as error:  # noqa: BLE001 - one submission that cannot run never stops the report
            reason = str(error) if isinstance(error, HarnessError) else f"{type(error).__name__}: {error}"
            self.unavailable[submission] = reason
            return None
        self.regenerated.setdefault(submission, []).append(image)
        if recorded_psnr is not None:
            measured = self._psnr(sr, hr)
            if abs(measured - recorded_psnr) > _SAME_PSNR_DB:
                self.mismatches.append(
                    f"{submission} on {image}: regenerated {measured:.4f} dB, the run recorded {recorded_psnr:.4f} dB"
                )
        return sr

    def _model(self, submission: str) -> LoadedModel:
        if submission not in self._models:
            (resolved,) = resolve_many([submission], zoo=self.zoo)
            self._models[submission] = load_model(
                resolved,
                model_zoo=self.model_zoo,
                cache_dir=self.weights_cache,
                trust_weights=self.trust_weights,
                device=self.device,
            )
        return self._models[submission]

    def _psnr(self, sr: np.ndarray, hr: np.ndarray) -> float:
        if self.channel == "y":
            return psnr(rgb_to_y(sr), rgb_to_y(hr), border=self.border)
        return psnr(sr, hr, border=self.border)
