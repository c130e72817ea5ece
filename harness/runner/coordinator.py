"""The coordinator of one run: identities, shared data, workers on lanes, the two passes, the records.

1. Each submission's weights are found and verified, the dataset is decoded once and shared, and
   each submission's cache entry is looked up (a complete result, or the partial slot to fill).
2. **Accuracy pass.** The images still to score are cut into shards (two per lane); the lanes work
   through them, each on a worker of its own per submission, and checkpoint each scored image.
3. **Performance pass.** Each submission is timed on one lane, beside a baseline worker of that lane,
   in R interleaved rounds (:mod:`harness.timing.rounds`): every worker of the lane warms up, then
   they take turns image by image. Lanes on distinct devices time at the same time; lanes that
   share a device (CPU lanes of one machine) one after another, so a performance round never shares
   its device with other work of the run. Then the worker of the lane that timed a submission counts
   its complexity.
4. One record per submission: its accuracy results, its lane's timings, and how it pairs with the
   baseline timed beside it.
"""

from __future__ import annotations

import contextlib
import math
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from harness.complexity import RECORD_FIELDS
from harness.errors import HarnessError
from harness.metrics import METRIC_KEYS
from harness.provenance import harness_identity
from harness.runner import messages as msg
from harness.runner import schema
from harness.runner.cache import PartialSlot, ResultCache, cache_key
from harness.runner.device_sharing import DeviceGate, WorkerBudget, timing_subgroups
from harness.runner.dither import derive_seed
from harness.runner.lanes import Executor, Lane, WorkerHandle
from harness.runner.process import WorkerLost
from harness.runner.scorer import Scorer, scoring_device
from harness.runner.settings import RunConfig
from harness.runner.shared_data import SharedSplit, share_dataset
from harness.submissions import ResolvedWeights, Submission, model_source_digest, resolve_weights
from harness.timing import RuntimeStats, fingerprint_id
from harness.timing.rounds import paired_round_ratios, round_orders, turn_order
from harness.timing.sequential import Look, SequentialPlan, StopReason, look

if TYPE_CHECKING:
    from harness.data import Dataset


@dataclass(eq=False)
class Timed:
    """One submission's measurements in one timing group of one lane: per round, each image's latency."""

    lane: Lane
    group: int = 0  # which of the lane's timing subgroups (each beside the baseline)
    latencies: list[list[float]] = field(default_factory=list)
    warmup_passes: list[int] = field(default_factory=list)
    looks: list[Look] = field(default_factory=list)  # rounds until decided: the rule's answer per round
    stop_reason: StopReason | None = None


@dataclass(eq=False)
class Entry:
    """One submission of the run and what is known about it so far."""

    submission: Submission
    role: str
    weights_argument: Path | None
    weights: ResolvedWeights | None = None
    key: str | None = None
    complete: dict[str, Any] | None = None  # a complete cached record
    slot: PartialSlot | None = None  # where this run checkpoints the accuracy pass
    state: dict[str, Any] = field(default_factory=dict)  # accuracy pass: per image, first call, memory
    workers: dict[int, WorkerHandle] = field(default_factory=dict)  # by lane index
    loaded: msg.Loaded | None = None
    lane: Lane | None = None  # where it is timed
    # By (lane index, timing subgroup); the baseline is timed in every subgroup of every lane.
    timed: dict[tuple[int, int], Timed] = field(default_factory=dict)
    timing_key: tuple[int, int] | None = None  # where its own figures were taken
    failure: str | None = None
    cell: str = "fp32"  # how the model runs (harness.cells); fp32 eager is the protocol's

    @property
    def name(self) -> str:
        return self.submission.name

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def retries(self) -> list[str]:
        return [retry for worker in self.workers.values() for retry in worker.retries]


def _empty_state() -> dict[str, Any]:
    return {"per_image": [], "first_call_ms": None, "max_memory_mb": None, "complexity": None}


def _identity(entry: Entry) -> dict[str, Any]:
    return schema.identity(
        submission=entry.name,
        team=entry.submission.team,
        role=entry.role,
        weights_sha256=entry.weights.sha256 if entry.weights else None,
        official_model_id=entry.submission.official_model_id,
    )


def _failed_record(entry: Entry) -> dict[str, Any]:
    return schema.failed_record(_identity(entry), error=entry.failure, retries=entry.retries)


def _mean_or_none(values: list[float | None]) -> float | None:
    """Mean over images, None when a split has no HR; inf stays inf (identical images)."""
    present = [value for value in values if value is not None]
    return float(sum(present) / len(present)) if present else None


def _shards(indices: Sequence[int], count: int) -> list[tuple[int, ...]]:
    """``indices`` cut into at most ``count`` contiguous, nearly equal shards (none empty)."""
    count = max(1, min(count, len(indices)))
    size, extra = divmod(len(indices), count)
    shards, start = [], 0
    for number in range(count):
        end = start + size + (1 if number < extra else 0)
        shards.append(tuple(indices[start:end]))
        start = end
    return shards


class _Progress:
    """One progress line per submission: where it runs, which pass and round, how far it got."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bars: dict[str, tqdm] = {}
        self._lock = threading.Lock()

    def show(self, entry: Entry, where: str, doing: str, done: int, total: int) -> None:
        if self.quiet:
            return
        with self._lock:
            bar = self.bars.get(entry.name)
            if bar is None:
                bar = tqdm(total=total, position=len(self.bars), leave=False, unit="img", dynamic_ncols=True)
                self.bars[entry.name] = bar
            bar.set_description(f"{entry.name} [{where}] {doing}", refresh=False)
            bar.total = total
            bar.n = done
            bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


class Coordinator:
    """One run over ``entries`` with the workers of ``executor``."""

    def __init__(
        self,
        dataset: Dataset,
        config: RunConfig,
        entries: list[Entry],
        baseline_name: str | None,
        executor: Executor,
        threads: int,
    ) -> None:
        self.dataset = dataset
        self.config = config
        self.entries = entries
        self.baseline_name = baseline_name
        self.executor = executor
        self.threads = threads
        self.cache = ResultCache(config.cache_dir)
        self.lanes = list(executor.lanes)
        self.fingerprints = [executor.fingerprint(lane, threads) for lane in self.lanes]
        self.description = dataset.describe()
        self.harness = harness_identity()  # asks git: once per run, not once per submission
        self.session = uuid.uuid4().hex
        self.seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**32)
        self.round_log: list[dict[str, Any]] = []
        self.split: SharedSplit | None = None
        self.logs = config.log_dir
        self.progress = _Progress(config.quiet)
        self._lock = threading.Lock()  # the entries' state, written by the lanes' threads
        self._start_seconds: list[float] = []  # how long starting a worker and loading took
        self.gate = DeviceGate()  # the cold first call alone on its device
        self.budget = WorkerBudget(config.workers_per_device)
        # NVML clocks and temperature of each lane's GPU, before and after the performance pass.
        self.device_state: dict[int, dict[str, Any]] = {}

    # -- identities and the cache ---------------------------------------------------------------

    def _cache_identity(self, entry: Entry) -> dict[str, Any]:
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
            "devices": sorted({fingerprint_id(fingerprint) for fingerprint in self.fingerprints}),
            "timing": {
                key: value for key, value in self.config.timing.as_dict().items() if key != "timeout_seconds"
            },
            "threads": self.threads,
            "harness": self.harness,
            # Only another cell adds a key, so fp32 results cached before cells existed still count.
            **({"cell": entry.cell} if entry.cell != "fp32" else {}),
        }

    def verify_weights(self) -> None:
        """Find and verify each submission's weights (downloading them when needed).

        Weights that cannot be found or do not match their sha256 are a bad input, not a faulty
        submission: the HarnessError stops the run before anything is measured (exit 2).
        """
        for entry in self.entries:
            if entry.submission.needs_cuda and not self.lanes[0].device.startswith("cuda"):
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

    def _images_missing(self, entry: Entry) -> bool:
        folder = self.config.save_images_dir
        if folder is None:
            return False
        return any(not (folder / entry.name / f"{name}.png").is_file() for name in self.dataset.names)

    def all_cached_together(self) -> bool:
        ok = [entry for entry in self.entries if entry.ok]
        sessions = {entry.complete.get("timing_session") for entry in ok if entry.complete is not None}
        return bool(ok) and all(entry.complete is not None for entry in ok) and len(sessions) == 1

    def prepare(self) -> None:
        """Everything before the passes: weights verified, the data decoded and shared, the cache read.

        Bad weights or a bad dataset file are errors (exit 2) before anything is cached or run.
        """
        self.verify_weights()
        self.split = share_dataset(
            self.dataset, self.description["content_sha256"], self.config.cache_dir / "decoded"
        )
        self.look_up_cache()

    # -- workers --------------------------------------------------------------------------------

    def _fail(self, entry: Entry, reason: str) -> None:
        with self._lock:
            if entry.failure is None:
                entry.failure = reason
        for worker in entry.workers.values():
            worker.kill()

    def _ask(
        self,
        entry: Entry,
        lane: Lane,
        request: msg.Request,
        doing: str,
        on_progress: Callable[[msg.ImageOutput], Any] | None = None,
        *,
        alone: bool = False,
    ) -> msg.Reply | None:
        """A request to the entry's worker on ``lane``; a failure marks the entry failed (None).

        The request shares the lane's device with the run's other work, or, ``alone``, waits until
        no other request runs there and keeps new ones out (the cold first call).
        """
        if not entry.ok:
            return None
        on_device = self.gate.alone(lane.exclusive) if alone else self.gate.sharing(lane.exclusive)
        try:
            with self.budget.using(lane.exclusive, (entry, lane.index)), on_device:
                reply = self._worker(entry, lane).request(request, on_progress=on_progress, doing=doing)
        except WorkerLost as lost:
            self._fail(entry, str(lost))
            return None
        if isinstance(reply, msg.Failed):
            self._fail(entry, reply.reason)
            return None
        return reply

    def _load(self, entry: Entry, lane: Lane) -> None:
        """Start and load the entry's worker on ``lane`` (sharing the device), unless it is there."""
        if not entry.ok:
            return
        try:
            with self.budget.using(lane.exclusive, (entry, lane.index)), self.gate.sharing(lane.exclusive):
                self._worker(entry, lane)
        except WorkerLost as lost:
            self._fail(entry, str(lost))

    def _worker(self, entry: Entry, lane: Lane) -> WorkerHandle:
        """The entry's worker on ``lane``, started and loaded on first use."""
        worker = entry.workers.get(lane.index)
        if worker is not None:
            return worker
        assert self.split is not None and self.logs is not None
        config = self.config
        load = msg.Load(
            submission=entry.submission,
            weights=entry.weights,
            trust_weights=config.trust_weights,
            device=lane.device,
            settings=msg.TorchSettings(cudnn_benchmark=config.timing.cudnn_benchmark, threads=self.threads),
            split=self.split.inputs_only(),  # LR only: the ground truth stays with the scorer
            cell=entry.cell,
        )
        in_cell = "" if entry.cell == "fp32" else f".{entry.cell}"
        log = self.logs / f"{entry.name.replace(':', '_')}{in_cell}.lane{lane.index}.log"
        self._make_room(lane)
        started = time.perf_counter()
        worker = self.executor.start(lane, entry.name, load, log, config.timing.timeout_seconds)
        entry.workers[lane.index] = worker
        self.budget.started(lane.exclusive, (entry, lane.index))
        reply = worker.request(load, doing=f"loading on {lane.label}")
        with self._lock:
            self._start_seconds.append(time.perf_counter() - started)
        if isinstance(reply, msg.Failed):
            raise WorkerLost(reply.reason)
        assert isinstance(reply, msg.Loaded)
        entry.loaded = entry.loaded or reply
        return worker

    def _make_room(self, lane: Lane) -> None:
        """Close the idle workers that one more would push over the device's budget (reloaded later
        if still needed: a model load is cheap beside a device out of memory)."""
        for entry, index in self.budget.to_close_before_start(lane.exclusive):
            worker = entry.workers.pop(index, None)
            if worker is not None:
                worker.close()
            self.budget.closed(lane.exclusive, (entry, index))

    def close(self) -> None:
        """Stop every worker and let go of the partial slots still held (kept for a later resume)."""
        self.progress.close()
        for entry in self.entries:
            for index, worker in entry.workers.items():
                worker.close()
                self.budget.closed(self.lanes[index].exclusive, (entry, index))
            entry.workers.clear()
            if entry.slot is not None:  # kept for a later resume when it holds work
                entry.slot.release(remove=not entry.state.get("per_image"))
                entry.slot = None

    # -- accuracy pass --------------------------------------------------------------------------

    def accuracy_pass(self) -> None:
        """Every lane works through shards of the submissions still to score.

        A lane keeps to the submissions whose model it has loaded: it finishes the shards of one it
        started, then starts one no lane has, and only then helps another lane with its shards, when
        the time that saves (the work left, shared by one more lane) exceeds what it costs (starting a
        worker and loading the model, as measured so far in this run). So lanes neither idle while
        one big submission is scored nor load models for nothing.
        """
        assert self.split is not None
        pending: dict[str, deque[tuple[int, ...]]] = {}
        lanes_on: dict[str, set[int]] = defaultdict(set)
        per_image_s: dict[str, list[float]] = defaultdict(list)  # scoring time per image, no loading
        # Bigger weights, more work (a rough guess before any model is loaded): started first, so
        # that the small ones fill the lanes' last gaps.
        todo_entries = sorted(
            (entry for entry in self.entries if entry.ok and entry.complete is None),
            key=lambda entry: -(entry.weights.path.stat().st_size if entry.weights else 0),
        )
        shard_count = 1 if len(self.lanes) == 1 else 2 * len(self.lanes)
        for entry in todo_entries:
            done = {record["name"] for record in entry.state["per_image"]}
            todo = [index for index, image in enumerate(self.split.images) if image.name not in done]
            entry.state["resumed"] = bool(done) or bool(entry.state.get("resumed"))
            pending[entry.name] = deque(_shards(todo, shard_count) if todo else [])

        def worth_helping(entry: Entry) -> bool:
            measured = per_image_s[entry.name] or [t for times in per_image_s.values() for t in times]
            if not measured or not self._start_seconds:
                return False
            left = sum(len(shard) for shard in pending[entry.name]) * statistics.fmean(measured)
            saved = left / (len(lanes_on[entry.name]) + 1)  # one more lane shares what is left
            return saved > statistics.fmean(self._start_seconds)

        def next_task(lane: Lane) -> tuple[Entry, tuple[int, ...]] | None:
            with self._lock:
                waiting = [entry for entry in todo_entries if entry.ok and pending[entry.name]]
                mine = [entry for entry in waiting if lane.index in lanes_on[entry.name]]
                unstarted = [entry for entry in waiting if not lanes_on[entry.name]]
                helping = [entry for entry in waiting if worth_helping(entry)]
                for entry in mine or unstarted or helping:
                    lanes_on[entry.name].add(lane.index)
                    return entry, pending[entry.name].popleft()
                return None

        def work(lane: Lane) -> None:
            while (task := next_task(lane)) is not None:
                entry, shard = task
                loaded_before = lane.index in entry.workers
                started = time.perf_counter()
                self._score(entry, shard, lane=lane)
                if loaded_before:
                    with self._lock:
                        per_image_s[entry.name].append((time.perf_counter() - started) / len(shard))

        self._on_lanes(work, self.lanes)

    def _score(self, entry: Entry, shard: tuple[int, ...], *, lane: Lane) -> None:
        """The shard's outputs from the entry's worker, each scored here as it comes (harness.runner.scorer)."""
        assert self.split is not None
        state = entry.state
        total = len(self.split)
        save_dir = self.config.save_images_dir
        scorer = Scorer(
            self.split,
            shard,
            scale=entry.submission.scale,
            border=self.config.border,
            device=scoring_device(lane.device, lane.node),
            save_dir=save_dir / entry.name if save_dir is not None else None,
        )

        def checkpoint(output: msg.ImageOutput) -> None:
            record = scorer.score(output)
            with self._lock:
                state["per_image"].append(record)
                entry.slot.save(state)  # type: ignore[union-attr]
                count = len(state["per_image"])
            self.progress.show(entry, lane.label, "accuracy", count, total)

        cold = shard[0] == 0 and not state["resumed"]  # the official first call, on a fresh worker
        self.progress.show(entry, lane.label, "accuracy", len(state["per_image"]), total)
        requests = [msg.Accuracy(indices=shard, time_first_call=False)]
        if cold:
            # The worker is loaded while sharing the device; then the cold first call (image 0) has
            # the device alone, and the rest of the shard shares it again.
            self._load(entry, lane)
            requests = [msg.Accuracy(indices=shard[:1], time_first_call=True)]
            requests += [msg.Accuracy(indices=shard[1:], time_first_call=False)] if len(shard) > 1 else []
        for request in requests:
            reply = self._ask(
                entry, lane, request, "the accuracy pass", checkpoint, alone=request.time_first_call
            )
            if isinstance(reply, msg.AccuracyDone):
                with self._lock:
                    if reply.first_call_ms is not None:
                        state["first_call_ms"] = reply.first_call_ms
                    if reply.max_memory_mb is not None:
                        state["max_memory_mb"] = max(reply.max_memory_mb, state["max_memory_mb"] or 0.0)
        if entry.ok and scorer.missing:
            self._fail(entry, f"{entry.name}: the worker sent no output for {', '.join(scorer.missing)}")

    # -- performance pass -----------------------------------------------------------------------

    def _assign_lanes(self) -> dict[int, list[Entry]]:
        """Each submission to a lane, in turn; the baseline to every lane that times something."""
        groups: dict[int, list[Entry]] = defaultdict(list)
        others = [entry for entry in self.entries if entry.ok and entry.name != self.baseline_name]
        for number, entry in enumerate(others):
            entry.lane = self.lanes[number % len(self.lanes)]
            groups[entry.lane.index].append(entry)
        baseline = next((e for e in self.entries if e.ok and e.name == self.baseline_name), None)
        if baseline is not None:
            baseline.lane = self.lanes[0]
            for index in groups or {0: []}:
                groups[index].append(baseline)
        return dict(groups)

    def performance_pass(self) -> None:
        """Each lane's group in interleaved rounds; lanes of distinct devices at the same time.

        A lane's submissions are timed in subgroups small enough for the device's worker budget,
        one subgroup after another, each beside the baseline (whose worker stays up throughout).
        """
        groups = self._assign_lanes()
        # Workers no lane times any more (accuracy shards elsewhere) are closed first.
        for entry in self.entries:
            for index in [i for i in entry.workers if i not in groups or entry not in groups[i]]:
                entry.workers.pop(index).close()
        by_device: dict[str, list[Lane]] = defaultdict(list)
        for index in groups:
            by_device[self.lanes[index].exclusive].append(self.lanes[index])

        def time_lanes_of_one_device(lanes: list[Lane]) -> None:
            for lane in lanes:
                baseline = [entry for entry in groups[lane.index] if entry.name == self.baseline_name]
                others = [entry for entry in groups[lane.index] if entry.name != self.baseline_name]
                subgroups = timing_subgroups(others, self.budget.per_device) or [[]]
                for number, subgroup in enumerate(subgroups):
                    self._time_lane(lane, subgroup + baseline, number)

        self._on_lanes(time_lanes_of_one_device, list(by_device.values()))

    def _time_lane(self, lane: Lane, group: list[Entry], number: int = 0) -> None:
        """Subgroup ``number`` of ``lane``: interleaved rounds of its submissions and the baseline."""
        assert self.split is not None
        timing = self.config.timing
        images = len(self.split)
        key = (lane.index, number)
        for entry in group:
            entry.timed[key] = Timed(lane, number)
            if entry.lane is lane and entry.timing_key is None:
                entry.timing_key = key
            self._ask(entry, lane, msg.PrepareTiming(), f"the copy of the inputs to {lane.label}")
        by_name = {entry.name: entry for entry in group}
        open_names = set(by_name)
        started = time.perf_counter()
        # The orders of every possible round are drawn at once, so a seed gives the same order to
        # round k whether the run stops early or not; a round skips the names that stopped.
        # Subgroup 0 keeps the seed a lane always had, so a run that fits one subgroup is unchanged.
        seed = self.seed + lane.index + 1_000_003 * number
        orders = round_orders(list(by_name), timing.rounds or timing.max_rounds, seed)
        for round_index, every_order in enumerate(orders):
            order = [name for name in every_order if name in open_names]
            retries_before = {entry.name: len(entry.retries) for entry in group}
            rounds_before = {entry.name: len(entry.timed[key].latencies) for entry in group}
            log = self._time_round(key, by_name, order, round_index, images)
            restarted = [
                entry for entry in group if entry.ok and len(entry.retries) != retries_before[entry.name]
            ]
            if restarted:  # a worker was lost and restarted mid-round: that round is measured again
                for entry in restarted:
                    self._ask(
                        entry, lane, msg.PrepareTiming(), f"the second copy of the inputs to {lane.label}"
                    )
                for entry in group:
                    timed = entry.timed[key]
                    before = rounds_before[entry.name]
                    del timed.latencies[before:], timed.warmup_passes[before:]
                log = self._time_round(key, by_name, order, round_index, images, attempt=1)
                log["repeated_after_restart"] = [entry.name for entry in restarted]
            self.round_log.append(log)
            if timing.rounds is None:
                out_of_time = (
                    timing.max_timing_seconds is not None
                    and time.perf_counter() - started >= timing.max_timing_seconds
                )
                self._look(key, group, open_names, out_of_time)
                if not open_names:
                    break
        # Last: its forward pass at the counting size must not disturb the warm state timed above.
        for entry in group:
            if entry.lane is lane and entry.complete is None and entry.state["complexity"] is None:
                self._count_complexity(entry, lane)

    def _look(
        self, key: tuple[int, int], group: list[Entry], open_names: set[str], out_of_time: bool
    ) -> None:
        """After a round: stop timing the submissions whose verdict is decided (or all, at the cap).

        The baseline is timed while any submission beside it is open; without a baseline there is
        no ratio to decide, so everyone is timed the minimum number of rounds.
        """
        timing = self.config.timing
        plan = SequentialPlan(
            limit=timing.ratio_limit,
            resolution=timing.resolution,
            min_rounds=timing.min_rounds,
            max_rounds=timing.max_rounds,
        )
        baseline = next((e for e in group if e.name == self.baseline_name and e.ok), None)
        for entry in group:
            timed = entry.timed[key]
            if entry.name not in open_names or entry is baseline:
                continue
            if not entry.ok:
                open_names.discard(entry.name)
                continue
            if baseline is None:
                if len(timed.latencies) >= plan.min_rounds:
                    open_names.discard(entry.name)
                continue
            beside = baseline.timed[key].latencies[: len(timed.latencies)]
            ratios = paired_round_ratios(timed.latencies, beside)
            result = look([math.log(ratio) for ratio in ratios], plan)
            stop = result.stop
            if stop is None and out_of_time and result.rounds >= plan.min_rounds:
                stop = "cap"
            timed.looks.append(result)
            if stop is not None:
                timed.stop_reason = stop
                open_names.discard(entry.name)
        # Alone (every submission beside it stopped, or none), the baseline still gets min rounds.
        if (
            baseline is not None
            and open_names <= {baseline.name}
            and len(baseline.timed[key].latencies) >= plan.min_rounds
        ):
            open_names.discard(baseline.name)

    def _count_complexity(self, entry: Entry, lane: Lane) -> None:
        """Params, FLOPs, activations and #conv, by the worker of the lane that times the entry."""
        reply = self._ask(entry, lane, msg.CountComplexity(self.config.flop_counter), "the complexity count")
        if isinstance(reply, msg.ComplexityCounted):
            with self._lock:
                entry.state["complexity"] = reply.counts
                entry.slot.save(entry.state)  # type: ignore[union-attr]

    def _time_round(
        self,
        key: tuple[int, int],
        by_name: dict[str, Entry],
        order: list[str],
        round_index: int,
        images: int,
        attempt: int = 0,
    ) -> dict[str, Any]:
        """One round of one lane's subgroup: everyone warms up, then takes turns image by image.

        Every call's input is dithered from a seed derived from the round's (recorded in its log),
        the submission and the image; a round measured again gets new seeds.
        """
        lane = self.lanes[key[0]]
        timing = self.config.timing
        rounds = timing.rounds or timing.max_rounds
        dither_seed = derive_seed(self.seed, "dither", *key, round_index, attempt)
        for name in order:
            entry = by_name[name]
            warmup = msg.WarmUp(
                timing.warmup_seconds,
                timing.warmup_min_passes,
                timing.warmup_max_passes,
                derive_seed(dither_seed, name, "warm-up"),
            )
            reply = self._ask(entry, lane, warmup, f"the warm-up of timing round {round_index + 1}")
            if isinstance(reply, msg.WarmedUp):
                entry.timed[key].warmup_passes.append(reply.passes)
                entry.timed[key].latencies.append([])
        timed_ms = 0.0
        started = time.perf_counter()
        for index in range(images):
            for name in turn_order(order, index):
                entry = by_name[name]
                doing = f"timing round {round_index + 1} at image {index + 1}/{images}"
                request = msg.TimeImage(index, timing.repeats, derive_seed(dither_seed, name, index))
                reply = self._ask(entry, lane, request, doing)
                if isinstance(reply, msg.Timed):
                    entry.timed[key].latencies[-1].append(reply.milliseconds)
                    timed_ms += reply.milliseconds
                    done = round_index * images + index + 1
                    self.progress.show(
                        entry, lane.label, f"timing round {round_index + 1}/{rounds}", done, rounds * images
                    )
        wall_ms = (time.perf_counter() - started) * 1000.0
        log = {
            "lane": lane.label,
            "order": order,
            "wall_ms": wall_ms,
            "timed_ms": timed_ms,
            "dither_seed": dither_seed,
        }
        return log if key[1] == 0 else {**log, "subgroup": key[1]}

    # -- records --------------------------------------------------------------------------------

    def record(self, entry: Entry) -> dict[str, Any]:
        if not entry.ok:
            return _failed_record(entry)
        timed = entry.timed.get(entry.timing_key) if entry.timing_key is not None else None
        if entry.complete is not None and timed is None:
            return schema.cached_record(entry.complete, role=entry.role)
        assert timed is not None and entry.key is not None
        source = entry.complete or entry.state
        order = {name: index for index, name in enumerate(self.dataset.names)}
        scored = sorted(source["per_image"], key=lambda r: order[r["name"]])
        per_image = []
        for image_index, image in enumerate(scored):
            rounds_ms = [latencies[image_index] for latencies in timed.latencies]
            per_image.append(schema.per_image_row(image, rounds_ms, statistics.fmean(rounds_ms)))
        every = [latency for latencies in timed.latencies for latency in latencies]
        round_means = [statistics.fmean(latencies) for latencies in timed.latencies]
        first_call = (
            source.get("first_call_ms") if entry.complete is None else source["runtime_ms"]["first_call_ms"]
        )
        resumed = bool(source.get("resumed"))
        runtime = schema.runtime_record(
            RuntimeStats.from_latencies(every).as_dict(),
            rounds=round_means,
            cv=statistics.pstdev(round_means) / statistics.fmean(round_means),
            first_call_ms=first_call,
            mean_without_warmup=(
                (first_call + sum(timed.latencies[0][1:])) / len(per_image)
                if first_call is not None and not resumed
                else None
            ),
        )
        complexity = (
            source["complexity"]
            if entry.complete is None
            else {key: source.get(key) for key in RECORD_FIELDS}
        )
        lane = timed.lane
        record = schema.ok_record(
            _identity(entry),
            metrics={key: _mean_or_none([image[key] for image in per_image]) for key in METRIC_KEYS},
            runtime=runtime,
            max_memory_mb=source["max_memory_mb"],
            complexity=complexity,
            warmup_passes=timed.warmup_passes,
            torch_settings_changed=entry.loaded.changed_by_submission if entry.loaded else {},
            timing_session=self.session,
            timed_on=schema.timed_on(
                lane=lane.index,
                label=lane.label,
                node=lane.node,
                device=lane.device,
                fingerprint_id=fingerprint_id(self.fingerprints[lane.index]),
            ),
            pairing=self._pairing(entry, timed),
            rounds_used=len(timed.latencies),
            stop_reason=timed.stop_reason,
            rounds_until_decided=[result.as_dict() for result in timed.looks],
            retries=entry.retries,
            resumed=resumed,
            per_image=per_image,
        )
        self.cache.save_complete(entry.key, record)
        if entry.slot is not None:
            entry.slot.release(remove=True)
            entry.slot = None
        return schema.with_cached(record, cached=False)

    def _pairing(self, entry: Entry, timed: Timed) -> dict[str, Any] | None:
        """How ``entry`` compares with the baseline timed beside it on its lane (None: no baseline)."""
        baseline = next((other for other in self.entries if other.name == self.baseline_name), None)
        if baseline is None or not baseline.ok:
            return None
        beside = baseline.timed.get((timed.lane.index, timed.group))
        if beside is None or len(beside.latencies) < len(timed.latencies):
            return None
        # The baseline may have been timed on after this entry's verdict was decided: pair its rounds.
        paired = beside.latencies[: len(timed.latencies)]
        every = [latency for latencies in paired for latency in latencies]
        return schema.pairing(
            baseline=baseline.name,
            lane=timed.lane.index,
            baseline_mean_ms=statistics.fmean(every),
            round_ratios=paired_round_ratios(timed.latencies, paired),
        )

    # -- the whole run --------------------------------------------------------------------------

    def _on_lanes(self, work: Callable[[Any], None], items: Sequence[Any]) -> None:
        """``work(item)`` for every item, each on a thread of its own (one item: in this thread)."""
        if len(items) <= 1:
            for item in items:
                work(item)
            return
        errors: list[BaseException] = []

        def guarded(item: Any) -> None:
            try:
                work(item)
            except BaseException as error:  # noqa: BLE001 - re-raised in the coordinator's thread
                errors.append(error)

        threads = [threading.Thread(target=guarded, args=(item,), daemon=True) for item in items]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def _snapshot_devices(self, when: str) -> None:
        """Each lane's GPU clocks and temperature (NVML), as its executor can see them."""
        for lane in self.lanes:
            self.device_state.setdefault(lane.index, {})[when] = self.executor.snapshot(lane)

    def run(self) -> tuple[list[dict[str, Any]], list[str]]:
        """The records in order, and the names of cached results that were timed again."""
        with contextlib.ExitStack() as stack:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="esr-workers-"))
            stack.callback(self.close)  # runs first: workers stop before their log folder goes
            self.logs = self.logs or Path(scratch)
            self.prepare()
            if self.all_cached_together() or not any(entry.ok for entry in self.entries):
                return [self.record(entry) for entry in self.entries], []
            retimed = [entry.name for entry in self.entries if entry.ok and entry.complete is not None]
            self.accuracy_pass()
            self._snapshot_devices("before")
            self.performance_pass()
            self._snapshot_devices("after")  # while the timed workers still hold their devices
            return [self.record(entry) for entry in self.entries], retimed
