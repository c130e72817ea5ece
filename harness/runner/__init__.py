"""The runner: evaluates submissions on a dataset and returns one run document (results + identities).

Data flows one way: dataset -> submission -> runner -> records. The runner knows nothing about
constraints or leaderboards; the command layer applies those to the run document it returns.
Runtimes in one run document are always measured in one session (one command), because their
ratios are what the constraints and rankings compare: a result cached by an earlier command is
reused only when every result of the run comes from that same session; otherwise it is timed again.
A submission that fails (import error, bad weights, exception mid-dataset, NaN output, wrong size,
out of memory) becomes a record with ``status: failed`` and its reason; the others carry on.
"""

from __future__ import annotations

import hashlib
import json
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from harness import __version__
from harness.errors import HarnessError
from harness.provenance import harness_identity
from harness.runner.cache import ResultCache, cache_key
from harness.runner.core import SubmissionEvaluator, SubmissionFailure, TimingSettings
from harness.submissions import Submission, load_model
from harness.timing import device_fingerprint, fingerprint_id, nvml_snapshot, set_cudnn_benchmark

if TYPE_CHECKING:
    from harness.data import Dataset


__all__ = ["RunConfig", "TimingSettings", "evaluate_run", "resolve_device"]


@dataclass(frozen=True)
class RunConfig:
    """Everything that shapes a run besides the submissions and the data."""

    protocol_name: str
    protocol_version: int
    border: int
    device: torch.device
    flop_counter: str = "ntire2022"
    timing: TimingSettings = field(default_factory=TimingSettings)
    cache_dir: Path = Path("results/runs/cache")
    force: bool = False
    save_images_dir: Path | None = None
    weights: Path | None = None
    model_zoo: Path | None = None
    weights_cache_dir: Path | None = None
    trust_weights: bool = False
    quiet: bool = False


def resolve_device(requested: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without a GPU is an error, not a fallback."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise HarnessError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise HarnessError(f"--device {requested}: expected auto, cpu, cuda or cuda:N")
    return torch.device(requested)


def _manifest_digest(submission: Submission) -> str:
    """A hash of the submission's definition, so an edited manifest never reuses a stale result."""
    canonical = json.dumps(submission.to_dict(), sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _identity(submission: Submission, weights_sha256: str | None) -> dict[str, Any]:
    return {
        "submission": submission.name,
        "team": submission.team,
        "weights_sha256": weights_sha256,
        "official_model_id": getattr(submission, "official_model_id", None),
    }


def _failure_reason(error: BaseException) -> str:
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return f"out of memory: {str(error).splitlines()[0]}"
    if isinstance(error, HarnessError | SubmissionFailure):
        return str(error)
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" (at {Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(error).__name__}: {error}{where}"


def _failed_record(
    submission: Submission, weights_sha256: str | None, error: BaseException
) -> dict[str, Any]:
    return {
        **_identity(submission, weights_sha256),
        "status": "failed",
        "error": _failure_reason(error),
        "psnr_rgb": None,
        "psnr_y": None,
        "ssim_rgb": None,
        "ssim_y": None,
        "runtime_ms": None,
        "max_memory_mb": None,
        "params": None,
        "flops": None,
        "activations": None,
        "num_conv": None,
        "num_images": 0,
        "per_image": [],
    }


class Run:
    """One evaluation run: a dataset, a device and the submissions evaluated on them."""

    def __init__(self, dataset: Dataset, config: RunConfig) -> None:
        self.dataset = dataset
        self.config = config
        self.cache = ResultCache(config.cache_dir)
        self.fingerprint = device_fingerprint(config.device)
        self.dataset_description = dataset.describe()
        # Recorded in every result measured by this command; results sharing it were timed together.
        self.session = uuid.uuid4().hex

    def _cache_identity(self, submission: Submission, weights_sha256: str | None) -> dict[str, Any]:
        return {
            "submission": submission.name,
            "manifest": _manifest_digest(submission),
            "weights_sha256": weights_sha256,
            "dataset_sha256": self.dataset_description["content_sha256"],
            "split": self.dataset_description["split"],
            "scale": self.dataset_description["scale"],
            "protocol": self.config.protocol_name,
            "protocol_version": self.config.protocol_version,
            "device": fingerprint_id(self.fingerprint),
            "timing": self.config.timing.as_dict(),
            "harness_version": __version__,
        }

    def evaluate(
        self, submission: Submission, *, weights: Path | None, reuse_cached: bool = True
    ) -> dict[str, Any]:
        """Evaluate one submission; never raises for a submission's own fault.

        ``reuse_cached=False`` measures again even when a complete result is cached.
        """
        config = self.config
        weights_sha256: str | None = None
        try:
            if submission.needs_cuda and config.device.type != "cuda":
                raise HarnessError(
                    f"{submission.name}: its code needs a CUDA GPU; evaluate it with --device cuda"
                )
            loaded = load_model(
                submission,
                weights=weights,
                model_zoo=config.model_zoo,
                cache_dir=config.weights_cache_dir,
                trust_weights=config.trust_weights,
                device=str(config.device),
            )
            weights_sha256 = loaded.weights_sha256
            key = cache_key(self._cache_identity(submission, weights_sha256))
            if config.force or not reuse_cached:
                self.cache.forget(key)
            cached = self.cache.load_complete(key)
            if cached is not None:
                return {**cached, "cached": True}
            images_dir = config.save_images_dir / submission.name if config.save_images_dir else None
            with tqdm(
                total=len(self.dataset),
                desc=f"{submission.name} on {self.dataset_description['name']}",
                unit="img",
                disable=config.quiet,
                leave=False,
            ) as bar:
                evaluator = SubmissionEvaluator(
                    loaded,
                    self.dataset,
                    device=config.device,
                    timing=config.timing,
                    border=config.border,
                    cache=self.cache,
                    flop_counter=config.flop_counter,
                    cache_key=key,
                    save_images_dir=images_dir,
                    progress=lambda _index, _name: bar.update(1),
                )
                measured = evaluator.run()
            record = {**_identity(submission, weights_sha256), **measured, "timing_session": self.session}
            self.cache.save_complete(key, record)
            return {**record, "cached": False}
        except Exception as error:  # noqa: BLE001 - one failing submission never stops the others
            return _failed_record(submission, weights_sha256, error)
        finally:
            if config.device.type == "cuda":
                torch.cuda.empty_cache()


def evaluate_run(
    submissions: Sequence[Submission],
    dataset: Dataset,
    config: RunConfig,
    *,
    baseline: Submission | None = None,
) -> dict[str, Any]:
    """Evaluate ``submissions`` (and ``baseline``, marked as such) and return the run document.

    ``config.weights`` replaces the weights of the submissions (the command allows it with a single
    submission): it is how a user evaluates their own checkpoint with a bundled architecture
    (``esr evaluate clb_imdn --weights mine.pth``). The baseline always uses its own weights.
    """
    previous_benchmark = set_cudnn_benchmark(config.timing.cudnn_benchmark)
    run = Run(dataset, config)
    gpu_before = nvml_snapshot(config.device)
    planned = [(submission, config.weights, "submission") for submission in submissions]
    if baseline is not None and baseline.name not in {sub.name for sub in submissions}:
        planned.append((baseline, None, "baseline"))
    try:
        results = [
            {**run.evaluate(submission, weights=weights), "role": role}
            for submission, weights, role in planned
        ]
        retimed = []
        if len({r["timing_session"] for r in results if r["status"] == "ok"}) > 1:
            for index, (submission, weights, role) in enumerate(planned):
                if results[index].get("cached"):
                    record = run.evaluate(submission, weights=weights, reuse_cached=False)
                    results[index] = {**record, "role": role}
                    retimed.append(submission.name)
    finally:
        set_cudnn_benchmark(previous_benchmark)
    return {
        "harness": harness_identity(),
        "protocol": config.protocol_name,
        "protocol_version": config.protocol_version,
        "device": {**run.fingerprint, "fingerprint_id": fingerprint_id(run.fingerprint)},
        "device_state": {"before": gpu_before, "after": nvml_snapshot(config.device)},
        "dataset": run.dataset_description,
        "timing": {
            **config.timing.as_dict(),
            "threads": torch.get_num_threads(),
            "device": str(config.device),
        },
        "baseline": baseline.name if baseline is not None else None,
        "timing_session": run.session,
        "retimed": retimed,
        "results": results,
    }
