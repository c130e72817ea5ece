"""Evaluate one submission on one dataset: forward passes, timing, memory, fidelity, complexity.

Per image this does what the official NTIRE 2022 script does: the LR image becomes a 1x3xHxW float
tensor in the submission's input range, the forward pass runs under inference mode (tiled when the
manifest says so) between two timer marks, the output becomes uint8 the official way, and PSNR/SSIM
are computed with ``border = scale``. On top of that it warms the device up before the first timed
image (and records the cold first call, which is what the official script's mean includes), keeps
every per-image latency, and checkpoints progress after each image so an interrupted run resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from harness.complexity import complexity_record
from harness.data import write_png
from harness.metrics import fidelity, to_tensor, to_uint8
from harness.runner.cache import ResultCache
from harness.runner.forward import forward
from harness.submissions import LoadedModel
from harness.timing import PeakMemory, RuntimeStats, make_timer, time_call, warm_up

if TYPE_CHECKING:
    from harness.data import Dataset


METRIC_KEYS = ("psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y")


class SubmissionFailure(Exception):
    """A submission misbehaved (bad output, NaN, wrong size); it is recorded as failed, not raised."""


@dataclass(frozen=True)
class TimingSettings:
    """How latencies are taken; the protocol fixes the defaults, the CLI may only add repeats."""

    warmup_seconds: float = 1.0
    warmup_min_passes: int = 1
    warmup_max_passes: int = 50
    repeats: int = 1
    cudnn_benchmark: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ImageOutcome:
    """What one image produced: its record and, when asked for, the SR pixels."""

    record: dict[str, Any]
    sr: np.ndarray


def _mean_or_none(values: list[float | None]) -> float | None:
    """Mean over images, None when a split has no HR; inf stays inf (identical images)."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    return float(np.mean(present))


def _check_output(sr: torch.Tensor, lr: torch.Tensor, scale: int, name: str) -> None:
    expected = (1, 3, lr.shape[-2] * scale, lr.shape[-1] * scale)
    if tuple(sr.shape) != expected:
        raise SubmissionFailure(f"{name}: output shape {tuple(sr.shape)}, expected {expected}")
    if not bool(torch.isfinite(sr).all()):
        raise SubmissionFailure(f"{name}: output contains NaN or Inf")


class SubmissionEvaluator:
    """Runs a loaded submission over a dataset on one device and returns its result record."""

    def __init__(
        self,
        loaded: LoadedModel,
        dataset: Dataset,
        *,
        device: torch.device,
        timing: TimingSettings,
        border: int,
        cache: ResultCache,
        flop_counter: str = "ntire2022",
        cache_key: str,
        save_images_dir: Path | None = None,
        progress: Callable[[int, str], Any] | None = None,
    ) -> None:
        self.loaded = loaded
        self.dataset = dataset
        self.device = device
        self.timing = timing
        self.border = border
        self.flop_counter = flop_counter
        self.cache = cache
        self.cache_key = cache_key
        self.save_images_dir = save_images_dir
        self.progress = progress
        self.submission = loaded.submission

    def complexity(self) -> dict[str, Any]:
        """Params/FLOPs/activations/#conv at the protocol's 3x256x256 input, counted in place, FLOPs by
        the protocol's counter (the other counter's figure beside it).

        Called after the timed images, so that the first timed call really is the cold one.
        """
        return complexity_record(self.loaded.model, self.flop_counter)

    def _run_model(self, lr: torch.Tensor) -> Callable[[], torch.Tensor]:
        sub = self.submission

        def call() -> torch.Tensor:
            with torch.inference_mode():
                return forward(
                    self.loaded.model, lr, scale=sub.scale, tile=sub.tile, tile_overlap=sub.tile_overlap
                )

        return call

    def run(self) -> dict[str, Any]:
        """Evaluate every image not yet in the partial checkpoint and return the complete record."""
        state = self.cache.load_partial(self.cache_key) or {
            "per_image": [],
            "first_call_ms": None,
            "max_memory_mb": None,
            "complexity": None,
            "warmup_passes": [],
        }
        done = {entry["name"] for entry in state["per_image"]}
        resumed = bool(done)

        timer = make_timer(self.device)
        memory = PeakMemory(self.device)
        memory.reset()
        warmed = False
        for index, (name, lr_pixels, hr_pixels) in enumerate(self.dataset):
            if name in done:
                continue
            lr = to_tensor(lr_pixels, self.submission.input_range).to(self.device)
            call = self._run_model(lr)
            if not warmed:
                if not resumed:
                    _, state["first_call_ms"] = timer.time(call)
                state["warmup_passes"].append(
                    warm_up(
                        timer,
                        call,
                        min_seconds=self.timing.warmup_seconds,
                        min_passes=self.timing.warmup_min_passes,
                        max_passes=self.timing.warmup_max_passes,
                    )
                )
                warmed = True
            sr_tensor, elapsed_ms = time_call(timer, call, repeats=self.timing.repeats)
            _check_output(sr_tensor, lr, self.submission.scale, name)
            sr = to_uint8(sr_tensor, self.submission.input_range)
            record: dict[str, Any] = {"name": name, "runtime_ms": elapsed_ms}
            if hr_pixels is not None:
                record.update(fidelity(sr, hr_pixels, border=self.border))
            else:
                record.update(dict.fromkeys(METRIC_KEYS))
            if self.save_images_dir is not None:
                write_png(self.save_images_dir / f"{name}.png", sr)
            peak = memory.peak_mb()
            if peak is not None:
                state["max_memory_mb"] = max(peak, state["max_memory_mb"] or 0.0)
            state["per_image"].append(record)
            self.cache.save_partial(self.cache_key, state)
            if self.progress is not None:
                self.progress(index, name)
        if state["complexity"] is None:
            state["complexity"] = self.complexity()
            self.cache.save_partial(self.cache_key, state)
        return self._summarise(state, resumed)

    def _summarise(self, state: dict[str, Any], resumed: bool) -> dict[str, Any]:
        per_image = state["per_image"]
        latencies = [entry["runtime_ms"] for entry in per_image]
        runtime = RuntimeStats.from_latencies(latencies).as_dict()
        # The official script times the first image cold (no warm-up); this is the mean it would print.
        if state["first_call_ms"] is not None and not resumed:
            runtime["mean_without_warmup"] = (state["first_call_ms"] + sum(latencies[1:])) / len(latencies)
        else:
            runtime["mean_without_warmup"] = None
        runtime["first_call_ms"] = state["first_call_ms"]
        record = {
            "status": "ok",
            "error": None,
            **{key: _mean_or_none([entry[key] for entry in per_image]) for key in METRIC_KEYS},
            "runtime_ms": runtime,
            "max_memory_mb": state["max_memory_mb"],
            **state["complexity"],
            "num_images": len(per_image),
            "warmup_passes": state["warmup_passes"],
            "resumed": resumed,
            "per_image": per_image,
        }
        return record
