"""The runner: evaluates submissions on a dataset and returns one run document (results + identities).

Data flows one way: dataset -> submission -> worker -> records. The runner knows nothing about
constraints or leaderboards; the command layer applies those to the run document it returns.

How a run goes (the coordinator, this module):

1. Each submission's identity is fixed first: its weights are found and verified here, and the
   cache key covers the manifest, the model source, the weights, the data, the protocol, the timing
   settings, the device and the harness version. Complete cached results are reused when every
   result of the run comes from one timing session; otherwise the cached ones are timed again.
2. The dataset is decoded once and shared with the workers (:mod:`harness.runner.shared_data`).
3. Every submission that needs work gets a worker process of its own (:mod:`harness.runner.worker`).
4. **Accuracy pass**, one worker after another: each image forwarded once, untimed, and scored;
   progress is checkpointed after every image, so an interrupted run resumes.
5. **Performance pass**: R interleaved rounds (:mod:`harness.timing.rounds`). In each round every
   submission and the baseline warm up, then take turns image by image, so that the runtimes of one
   run, and the ratios between them, are measured side by side.

A submission that fails (import error, bad weights, exception, NaN output, wrong size, out of
memory, a crashed or hung worker) becomes a record with ``status: failed`` and its reason; the
others carry on and are still ranked.
"""

from __future__ import annotations

import contextlib
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from harness.complexity import RECORD_FIELDS
from harness.errors import HarnessError
from harness.metrics import METRIC_KEYS
from harness.provenance import harness_identity
from harness.runner import messages as msg
from harness.runner.cache import PartialSlot, ResultCache, cache_key
from harness.runner.process import WorkerLost, WorkerProcess
from harness.runner.shared_data import SharedSplit, share_dataset
from harness.submissions import ResolvedWeights, Submission, model_source_digest, resolve_weights
from harness.timing import RuntimeStats, device_fingerprint, fingerprint_id, nvml_snapshot
from harness.timing.rounds import paired_round_ratios, round_orders, turn_order

if TYPE_CHECKING:
    from harness.data import Dataset


__all__ = ["RunConfig", "TimingSettings", "evaluate_run", "worker_threads"]


@dataclass(frozen=True)
class TimingSettings:
    """How latencies are taken; the protocol fixes the defaults, the command line may change some."""

    warmup_seconds: float = 1.0
    warmup_min_passes: int = 1
    warmup_max_passes: int = 50
    repeats: int = 1
    cudnn_benchmark: bool = False
    rounds: int = 5
    timeout_seconds: float = 3600.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    log_dir: Path | None = None
    weights: Path | None = None
    model_zoo: Path | None = None
    weights_cache_dir: Path | None = None
    trust_weights: bool = False
    quiet: bool = False
    threads: int | None = None
    seed: int | None = None


def worker_threads(requested: int | None, device: torch.device) -> int:
    """The torch threads of each worker: as asked, else all cores on a GPU run and half on a CPU one.

    On the CPU a forward pass is split over threads that wait for each other at every operation, so
    other work taking one core stalls them all: a measurement that uses every core of a shared
    machine measures the machine's load as much as the model. Leaving half the cores free makes CPU
    runtimes, and above all their ratios, hold while other work comes and goes.
    """
    if requested is not None:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores if device.type == "cuda" else max(1, cores // 2)


@dataclass
class _Entry:
    """One submission of the run and what is known about it so far."""

    submission: Submission
    role: str
    weights_argument: Path | None
    weights: ResolvedWeights | None = None
    key: str | None = None
    complete: dict[str, Any] | None = None  # a complete cached record
    slot: PartialSlot | None = None  # where this run checkpoints the accuracy pass
    state: dict[str, Any] = field(default_factory=dict)  # accuracy pass: per image, first call, memory
    worker: WorkerProcess | None = None
    loaded: msg.Loaded | None = None
    latencies: list[list[float]] = field(default_factory=list)  # per round, per image
    warmup_passes: list[int] = field(default_factory=list)
    failure: str | None = None

    @property
    def name(self) -> str:
        return self.submission.name

    @property
    def ok(self) -> bool:
        return self.failure is None


def _empty_state() -> dict[str, Any]:
    return {"per_image": [], "first_call_ms": None, "max_memory_mb": None, "complexity": None}


def _failed_record(entry: _Entry) -> dict[str, Any]:
    return {
        **_identity(entry),
        "status": "failed",
        "error": entry.failure,
        **dict.fromkeys(METRIC_KEYS),
        "runtime_ms": None,
        "max_memory_mb": None,
        "params": None,
        "flops": None,
        "activations": None,
        "num_conv": None,
        "num_images": 0,
        "per_image": [],
        "cached": False,
    }


def _identity(entry: _Entry) -> dict[str, Any]:
    return {
        "submission": entry.name,
        "team": entry.submission.team,
        "role": entry.role,
        "weights_sha256": entry.weights.sha256 if entry.weights else None,
        "official_model_id": entry.submission.official_model_id,
    }


def _mean_or_none(values: list[float | None]) -> float | None:
    """Mean over images, None when a split has no HR; inf stays inf (identical images)."""
    present = [value for value in values if value is not None]
    return float(sum(present) / len(present)) if present else None


class _Coordinator:
    """One run: identities, shared data, workers, the two passes, and the records."""

    def __init__(
        self, dataset: Dataset, config: RunConfig, entries: list[_Entry], baseline_name: str | None
    ) -> None:
        self.dataset = dataset
        self.baseline_name = baseline_name
        self.config = config
        self.entries = entries
        self.cache = ResultCache(config.cache_dir)
        self.threads = worker_threads(config.threads, config.device)
        # The workers' thread count, not this process's, is what decides their runtimes.
        self.fingerprint = {**device_fingerprint(config.device), "num_threads": self.threads}
        self.description = dataset.describe()
        self.session = uuid.uuid4().hex
        self.seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**32)
        self.round_log: list[dict[str, Any]] = []
        self.split: SharedSplit | None = None
        self.logs = config.log_dir

    # -- identities and the cache ---------------------------------------------------------------

    def _cache_identity(self, entry: _Entry) -> dict[str, Any]:
        return {
            "submission": entry.name,
            "manifest": entry.submission.to_dict(),
            "model_source": model_source_digest(entry.submission),
            "weights_sha256": entry.weights.sha256 if entry.weights else None,
            "dataset_sha256": self.description["content_sha256"],
            "split": self.description["split"],
            "scale": self.description["scale"],
            "protocol": self.config.protocol_name,
            "protocol_version": self.config.protocol_version,
            "device": fingerprint_id(self.fingerprint),
            "timing": {
                key: value for key, value in self.config.timing.as_dict().items() if key != "timeout_seconds"
            },
            "threads": self.threads,
            "harness": harness_identity(),
        }

    def verify_weights(self) -> None:
        """Find and verify each submission's weights (downloading them when needed).

        Weights that cannot be found or do not match their sha256 are a bad input, not a faulty
        submission: the HarnessError stops the run before anything is measured (exit 2).
        """
        for entry in self.entries:
            if entry.submission.needs_cuda and self.config.device.type != "cuda":
                entry.failure = f"{entry.name}: its code needs a CUDA GPU; evaluate it with --device cuda"
                continue
            entry.weights = resolve_weights(
                entry.submission,
                explicit=entry.weights_argument,
                model_zoo=self.config.model_zoo,
                cache_dir=self.config.weights_cache_dir,
            )

    def look_up_cache(self) -> None:
        """Each submission's cache key; its complete result, or the partial slot this run fills."""
        for entry in self.entries:
            if not entry.ok:
                continue
            try:
                entry.key = cache_key(self._cache_identity(entry))
            except HarnessError as error:  # its model source cannot be read: the submission's fault
                entry.failure = str(error)
                continue
            if self.config.force:
                self.cache.forget(entry.key)
            entry.complete = self.cache.load_complete(entry.key)
            if entry.complete is not None and self._images_missing(entry):
                entry.complete = None  # images were asked for: the accuracy pass runs again
            if entry.complete is None:
                entry.slot = self.cache.open_partial(entry.key)
                entry.state = entry.slot.state or _empty_state()

    def _images_missing(self, entry: _Entry) -> bool:
        folder = self.config.save_images_dir
        if folder is None:
            return False
        return any(not (folder / entry.name / f"{name}.png").is_file() for name in self._image_names())

    def _image_names(self) -> tuple[str, ...]:
        return self.dataset.names

    def all_cached_together(self) -> bool:
        ok = [entry for entry in self.entries if entry.ok]
        sessions = {entry.complete.get("timing_session") for entry in ok if entry.complete is not None}
        return bool(ok) and all(entry.complete is not None for entry in ok) and len(sessions) == 1

    # -- workers --------------------------------------------------------------------------------

    def _fail(self, entry: _Entry, reason: str) -> None:
        entry.failure = reason
        if entry.worker is not None:
            entry.worker.kill()

    def _ask(
        self, entry: _Entry, request: msg.Request, doing: str, on_progress: Any = None
    ) -> msg.Reply | None:
        """Send a request to an entry's worker; a failure marks the entry failed and returns None."""
        assert entry.worker is not None
        try:
            reply = entry.worker.request(request, on_progress=on_progress, doing=doing)
        except WorkerLost as lost:
            self._fail(entry, str(lost))
            return None
        if isinstance(reply, msg.Failed):
            self._fail(entry, reply.reason)
            return None
        return reply

    def start_workers(self) -> None:
        assert self.split is not None
        config = self.config
        settings = msg.TorchSettings(cudnn_benchmark=config.timing.cudnn_benchmark, threads=self.threads)
        live = [entry for entry in self.entries if entry.ok]
        assert self.logs is not None
        for entry in live:  # started together: their start-up overlaps
            log = self.logs / f"{entry.name.replace(':', '_')}.log"
            entry.worker = WorkerProcess(entry.name, log, config.timing.timeout_seconds)
        for entry in live:
            request = msg.Load(
                submission=entry.submission,
                weights=entry.weights,
                trust_weights=config.trust_weights,
                device=str(config.device),
                settings=settings,
                split=self.split,
                border=config.border,
                save_images_dir=config.save_images_dir / entry.name if config.save_images_dir else None,
            )
            reply = self._ask(entry, request, "loading")
            if isinstance(reply, msg.Loaded):
                entry.loaded = reply

    def close(self) -> None:
        """Stop every worker and let go of the partial slots still held (kept for a later resume)."""
        for entry in self.entries:
            if entry.worker is not None:
                entry.worker.close()
                entry.worker = None
            if entry.slot is not None:  # kept for a later resume when it holds work
                entry.slot.release(remove=not entry.state.get("per_image"))
                entry.slot = None

    # -- accuracy pass --------------------------------------------------------------------------

    def accuracy_pass(self, entry: _Entry) -> None:
        """Forward and score every image not yet done; checkpoint after each one."""
        assert self.split is not None and entry.key is not None
        state = entry.state
        done = {record["name"] for record in state["per_image"]}
        todo = tuple(index for index, image in enumerate(self.split.images) if image.name not in done)
        if todo:
            with tqdm(
                total=len(self.split),
                initial=len(done),
                desc=f"{entry.name}: accuracy",
                unit="img",
                disable=self.config.quiet,
                leave=False,
            ) as bar:

                def checkpoint(scored: msg.ImageScored) -> None:
                    state["per_image"].append(scored.record)
                    entry.slot.save(state)  # type: ignore[union-attr]
                    bar.update(1)

                request = msg.Accuracy(indices=todo, time_first_call=not done)
                reply = self._ask(entry, request, "the accuracy pass", on_progress=checkpoint)
                if not isinstance(reply, msg.AccuracyDone):
                    return
                if reply.first_call_ms is not None:
                    state["first_call_ms"] = reply.first_call_ms
                if reply.max_memory_mb is not None:
                    state["max_memory_mb"] = max(reply.max_memory_mb, state["max_memory_mb"] or 0.0)
                state["resumed"] = bool(done) or bool(state.get("resumed"))
        order = {image.name: index for index, image in enumerate(self.split.images)}
        state["per_image"].sort(key=lambda record: order[record["name"]])
        if state["complexity"] is None:
            reply = self._ask(entry, msg.CountComplexity(self.config.flop_counter), "the complexity count")
            if not isinstance(reply, msg.ComplexityCounted):
                return
            state["complexity"] = reply.counts
        entry.slot.save(state)  # type: ignore[union-attr]

    # -- performance pass -----------------------------------------------------------------------

    def performance_pass(self) -> None:
        """Interleaved rounds: each round, everyone warms up, then takes turns image by image."""
        assert self.split is not None
        timing = self.config.timing
        live = [entry for entry in self.entries if entry.ok]
        for entry in live:
            self._ask(entry, msg.PrepareTiming(), "moving the inputs to the device")
        names = [entry.name for entry in live if entry.ok]
        by_name = {entry.name: entry for entry in live}
        images = len(self.split)
        orders = round_orders(names, timing.rounds, self.seed)
        with tqdm(
            total=timing.rounds * images,
            desc=f"timing {timing.rounds} rounds of {len(names)}",
            unit="img",
            disable=self.config.quiet,
            leave=False,
        ) as bar:
            for round_index, order in enumerate(orders):
                for name in order:
                    entry = by_name[name]
                    if entry.ok:
                        warmup = msg.WarmUp(
                            timing.warmup_seconds, timing.warmup_min_passes, timing.warmup_max_passes
                        )
                        reply = self._ask(entry, warmup, f"the warm-up of timing round {round_index + 1}")
                        if isinstance(reply, msg.WarmedUp):
                            entry.warmup_passes.append(reply.passes)
                            entry.latencies.append([])
                timed_ms = 0.0
                started = time.perf_counter()
                for index in range(images):
                    for name in turn_order(order, index):
                        entry = by_name[name]
                        if not entry.ok:
                            continue
                        doing = f"timing round {round_index + 1} at image {index + 1}/{images}"
                        reply = self._ask(entry, msg.TimeImage(index, timing.repeats), doing)
                        if isinstance(reply, msg.Timed):
                            entry.latencies[-1].append(reply.milliseconds)
                            timed_ms += reply.milliseconds
                    bar.update(1)
                wall_ms = (time.perf_counter() - started) * 1000.0
                self.round_log.append({"order": order, "wall_ms": wall_ms, "timed_ms": timed_ms})

    # -- records --------------------------------------------------------------------------------

    def record(self, entry: _Entry) -> dict[str, Any]:
        if not entry.ok:
            return _failed_record(entry)
        if entry.complete is not None and not entry.latencies:
            return {**entry.complete, "role": entry.role, "cached": True}
        source = entry.complete or entry.state
        per_image = [dict(record) for record in source["per_image"]]
        for image_index, record in enumerate(per_image):
            record["runtime_ms_rounds"] = [latencies[image_index] for latencies in entry.latencies]
            record["runtime_ms"] = statistics.fmean(record["runtime_ms_rounds"])
        every = [latency for latencies in entry.latencies for latency in latencies]
        runtime: dict[str, Any] = RuntimeStats.from_latencies(every).as_dict()
        round_means = [statistics.fmean(latencies) for latencies in entry.latencies]
        runtime["rounds"] = round_means
        runtime["cv"] = statistics.pstdev(round_means) / statistics.fmean(round_means)
        first_call = (
            source.get("first_call_ms") if entry.complete is None else source["runtime_ms"]["first_call_ms"]
        )
        resumed = bool(source.get("resumed"))
        runtime["first_call_ms"] = first_call
        runtime["mean_without_warmup"] = (
            (first_call + sum(entry.latencies[0][1:])) / len(per_image)
            if first_call is not None and not resumed
            else None
        )
        complexity = (
            source["complexity"]
            if entry.complete is None
            else {key: source.get(key) for key in RECORD_FIELDS}
        )
        record = {
            **_identity(entry),
            "status": "ok",
            "error": None,
            **{key: _mean_or_none([image[key] for image in per_image]) for key in METRIC_KEYS},
            "runtime_ms": runtime,
            "max_memory_mb": source["max_memory_mb"],
            **complexity,
            "num_images": len(per_image),
            "warmup_passes": entry.warmup_passes,
            "torch_settings_changed": entry.loaded.changed_by_submission if entry.loaded else {},
            "timing_session": self.session,
            "pairing": self._pairing(entry),
            "resumed": resumed,
            "per_image": per_image,
        }
        assert entry.key is not None
        self.cache.save_complete(entry.key, record)
        if entry.slot is not None:
            entry.slot.release(remove=True)
            entry.slot = None
        return {**record, "cached": False}

    def _pairing(self, entry: _Entry) -> dict[str, Any] | None:
        """How ``entry`` compares with the baseline timed beside it, for the runtime verdict."""
        baseline = next((other for other in self.entries if other.name == self.baseline_name), None)
        if baseline is None or not baseline.ok or len(baseline.latencies) != len(entry.latencies):
            return None
        every = [latency for latencies in baseline.latencies for latency in latencies]
        return {
            "baseline": baseline.name,
            "baseline_mean_ms": statistics.fmean(every),
            "round_ratios": paired_round_ratios(entry.latencies, baseline.latencies),
        }

    # -- the whole run --------------------------------------------------------------------------

    def run(self) -> tuple[list[dict[str, Any]], list[str]]:
        """The records in order, and the names of cached results that were timed again."""
        with contextlib.ExitStack() as stack:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="esr-workers-"))
            stack.callback(self.close)  # runs first: workers stop before their log folder goes
            self.logs = self.logs or Path(scratch)
            # Bad weights or a bad dataset file are errors (exit 2) before anything is cached or run.
            self.verify_weights()
            self.split = share_dataset(
                self.dataset, self.description["content_sha256"], self.config.cache_dir / "decoded"
            )
            self.look_up_cache()
            if self.all_cached_together() or not any(entry.ok for entry in self.entries):
                return [self.record(entry) for entry in self.entries], []
            retimed = [entry.name for entry in self.entries if entry.ok and entry.complete is not None]
            self.start_workers()
            for entry in self.entries:
                if entry.ok and entry.complete is None:
                    self.accuracy_pass(entry)
            self.performance_pass()
            return [self.record(entry) for entry in self.entries], retimed


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
    entries = [_Entry(submission, "submission", config.weights) for submission in submissions]
    if baseline is not None and baseline.name not in {sub.name for sub in submissions}:
        entries.append(_Entry(baseline, "baseline", None))
    coordinator = _Coordinator(dataset, config, entries, baseline.name if baseline is not None else None)
    gpu_before = nvml_snapshot(config.device)
    results, retimed = coordinator.run()
    return {
        "harness": harness_identity(),
        "protocol": config.protocol_name,
        "protocol_version": config.protocol_version,
        "device": {**coordinator.fingerprint, "fingerprint_id": fingerprint_id(coordinator.fingerprint)},
        "device_state": {"before": gpu_before, "after": nvml_snapshot(config.device)},
        "dataset": coordinator.description,
        "timing": {
            **config.timing.as_dict(),
            "threads": coordinator.threads,
            "device": str(config.device),
            "seed": coordinator.seed,
            "round_log": coordinator.round_log,
            "torch_settings": next(
                (entry.loaded.torch_settings for entry in entries if entry.loaded is not None), None
            ),
        },
        "baseline": baseline.name if baseline is not None else None,
        "timing_session": coordinator.session,
        "retimed": retimed,
        "results": results,
    }
