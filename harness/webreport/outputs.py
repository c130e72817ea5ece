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

from harness.catalog import resolve_many
from harness.data import read_image
from harness.errors import HarnessError
from harness.metrics import score_output, to_tensor
from harness.runner.forward import forward
from harness.submissions import LoadedModel, load_model

__all__ = ["OutputSource", "saved_image_path", "super_resolve"]

# Two PSNRs of one image closer than this are the same measurement (they are printed to 4 decimals).
_SAME_PSNR_DB = 5e-5


def super_resolve(
    loaded: LoadedModel, lr: np.ndarray, hr: np.ndarray, device: torch.device, border: int
) -> tuple[np.ndarray, dict[str, float | None]]:
    """One LR image through a loaded submission as the runner does it: uint8 SR pixels and scores."""
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
    pixels, scores = score_output(out, hr, input_range=submission.input_range, border=border)
    assert pixels is not None
    return pixels, scores


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
            sr, scores = super_resolve(self._model(submission), lr, hr, self.device, self.border)
        except Exception as error:  # noqa: BLE001 - one submission that cannot run never stops the report
            reason = str(error) if isinstance(error, HarnessError) else f"{type(error).__name__}: {error}"
            self.unavailable[submission] = reason
            return None
        self.regenerated.setdefault(submission, []).append(image)
        if recorded_psnr is not None:
            measured = float(scores[f"psnr_{self.channel}"])  # type: ignore[arg-type]
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
