"""The coordinator of one run: the order of its steps, each done by a module of its own.

1. Each submission's weights are found and verified, the dataset is decoded once and shared, and
   each submission's cache entry is looked up (a complete record, or the partial slot to fill).
2. **Accuracy pass.** The images still to score are cut into shards (:mod:`harness.runner.scheduling`
   decides which lane scores which); the lanes work through them, each on a worker of its own per
   submission (:mod:`harness.runner.worker_pool`), and checkpoint each scored image.
3. **Performance pass.** Each submission is timed on one lane, beside a baseline worker of that lane,
   in R interleaved rounds (:mod:`harness.runner.timing_loop`). Lanes on distinct devices time at
   the same time; lanes that share a device (CPU lanes of one machine) one after another, so a
   performance round never shares its device with other work of the run. Then the worker of the
   lane that timed a submission counts its complexity.
4. One record per submission (:mod:`harness.runner.records`): its accuracy results, its lane's
   timings, and how it pairs with the baseline timed beside it.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.provenance import harness_identity
from harness.runner import messages as msg
from harness.runner import records, scheduling, schema
from harness.runner.cache import ResultCache, cache_key
from harness.runner.device_sharing import timing_subgroups
from harness.runner.entries import AccuracyState, Entry, SubgroupTimings
from harness.runner.lanes import Executor, Lane
from harness.runner.progress import Progress
from harness.runner.settings import RunConfig
from harness.runner.shared_data import share_dataset
from harness.runner.timing_loop import Subgroup, time_rounds
from harness.runner.worker_pool import WorkerPool
from harness.submissions import model_source_digest, resolve_weights
from harness.timing import fingerprint_id

if TYPE_CHECKING:
    from harness.data import Dataset


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
        self.progress = Progress(config.quiet)
        self._lock = threading.Lock()  # the entries' state, written by the lanes' threads
        self.pool = WorkerPool(executor, config, threads, self._lock)
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
        """Each submission's cache key; its complete record, or the partial slot this run fills."""
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
            entry.cached_record = self.cache.load_complete(entry.key)
            if entry.cached_record is not None and self._images_missing(entry):
                entry.cached_record = None  # images were asked for: the accuracy pass runs again
            if entry.cached_record is None:
                entry.slot = self.cache.open_partial(entry.key)
                entry.state = AccuracyState.from_slot(entry.slot.state)

    def _images_missing(self, entry: Entry) -> bool:
        folder = self.config.save_images_dir
        if folder is None:
            return False
        return any(not (folder / entry.name / f"{name}.png").is_file() for name in self.dataset.names)

    def all_cached_together(self) -> bool:
        ok = [entry for entry in self.entries if entry.ok]
        sessions = {
            entry.cached_record.get("timing_session") for entry in ok if entry.cached_record is not None
        }
        return bool(ok) and all(entry.cached_record is not None for entry in ok) and len(sessions) == 1

    def prepare(self) -> None:
        """Everything before the passes: weights verified, the data decoded and shared, the cache read.

        Bad weights or a bad dataset file are errors (exit 2) before anything is cached or run.
        """
        self.verify_weights()
        self.pool.split = share_dataset(
            self.dataset, self.description["content_sha256"], self.config.cache_dir / "decoded"
        )
        self.look_up_cache()

    def close(self) -> None:
        """Stop every worker and let go of the partial slots still held (kept for a later resume)."""
        self.progress.close()
        for entry in self.entries:
            self.pool.close_workers(entry, self.lanes)
            if entry.slot is not None:  # kept for a later resume when it holds work
                entry.slot.release(remove=not entry.state.per_image)
                entry.slot = None

    # -- accuracy pass --------------------------------------------------------------------------

    def accuracy_pass(self) -> None:
        """Every lane works through shards of the submissions still to score (who does what:
        :mod:`harness.runner.scheduling`)."""
        split = self.pool.split
        assert split is not None
        # Bigger weights, more work (a rough guess before any model is loaded): started first, so
        # that the small ones fill the lanes' last gaps.
        todo_entries = sorted(
            (entry for entry in self.entries if entry.ok and entry.cached_record is None),
            key=lambda entry: -(entry.weights.path.stat().st_size if entry.weights else 0),
        )
        by_name = {entry.name: entry for entry in todo_entries}
        todo: dict[str, list[int]] = {}
        for entry in todo_entries:
            done = {record["name"] for record in entry.state.per_image}
            todo[entry.name] = [index for index, image in enumerate(split.images) if image.name not in done]
            entry.state.resumed = bool(done) or entry.state.resumed
        queue = scheduling.ShardQueue.of(todo, len(self.lanes))

        def next_task(lane: Lane) -> tuple[Entry, scheduling.Shard] | None:
            with self._lock:
                failed = {entry.name for entry in todo_entries if not entry.ok}
                name = scheduling.next_submission(
                    queue, lane.index, failed=failed, start_seconds=self.pool.start_seconds
                )
                return None if name is None else (by_name[name], queue.take(name, lane.index))

        def work(lane: Lane) -> None:
            while (task := next_task(lane)) is not None:
                entry, shard = task
                loaded_before = lane.index in entry.workers
                started = time.perf_counter()
                self._score(entry, shard, lane=lane)
                if loaded_before:
                    with self._lock:
                        queue.scored(entry.name, (time.perf_counter() - started) / len(shard))

        self._on_lanes(work, self.lanes)

    def _score(self, entry: Entry, shard: scheduling.Shard, *, lane: Lane) -> None:
        assert self.pool.split is not None
        state = entry.state
        total = len(self.pool.split)

        def checkpoint(scored: msg.ImageScored) -> None:
            with self._lock:
                state.per_image.append(scored.record)
                entry.checkpoint()
                count = len(state.per_image)
            self.progress.show(entry.name, lane.label, "accuracy", count, total)

        cold = shard[0] == 0 and not state.resumed  # the official first call, on a fresh worker
        self.progress.show(entry.name, lane.label, "accuracy", len(state.per_image), total)
        requests = [msg.Accuracy(indices=shard, time_first_call=False)]
        if cold:
            # The worker is loaded while sharing the device; then the cold first call (image 0) has
            # the device alone, and the rest of the shard shares it again.
            self.pool.load(entry, lane)
            requests = [msg.Accuracy(indices=shard[:1], time_first_call=True)]
            requests += [msg.Accuracy(indices=shard[1:], time_first_call=False)] if len(shard) > 1 else []
        for request in requests:
            reply = self.pool.ask(
                entry, lane, request, "the accuracy pass", checkpoint, alone=request.time_first_call
            )
            if isinstance(reply, msg.AccuracyDone):
                with self._lock:
                    if reply.first_call_ms is not None:
                        state.first_call_ms = reply.first_call_ms
                    if reply.max_memory_mb is not None:
                        state.max_memory_mb = max(reply.max_memory_mb, state.max_memory_mb or 0.0)

    # -- performance pass -----------------------------------------------------------------------

    def _assign_lanes(self) -> dict[int, list[Entry]]:
        """Each submission to a lane, in turn; the baseline to every lane that times something."""
        by_name = {entry.name: entry for entry in self.entries if entry.ok}
        groups = scheduling.assign_lanes(list(by_name), self.baseline_name, len(self.lanes))
        for index, names in groups.items():
            for name in names:
                by_name[name].lane = self.lanes[0 if name == self.baseline_name else index]
        return {index: [by_name[name] for name in names] for index, names in groups.items()}

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
                subgroups = timing_subgroups(others, self.pool.budget.per_device) or [[]]
                for number, subgroup in enumerate(subgroups):
                    self._time_lane(lane, subgroup + baseline, number)

        self._on_lanes(time_lanes_of_one_device, list(by_device.values()))

    def _time_lane(self, lane: Lane, group: list[Entry], number: int = 0) -> None:
        """Subgroup ``number`` of ``lane``: interleaved rounds of its submissions and the baseline."""
        assert self.pool.split is not None
        key = (lane.index, number)
        for entry in group:
            entry.timings[key] = SubgroupTimings(lane, number)
            if entry.lane is lane and entry.timing_key is None:
                entry.timing_key = key
        by_name = {entry.name: entry for entry in group}
        subgroup = Subgroup(
            lane=lane.index,
            number=number,
            label=lane.label,
            names=list(by_name),
            baseline=self.baseline_name if self.baseline_name in by_name else None,
        )
        time_rounds(
            _LaneWorkers(self.pool, lane, by_name),
            subgroup,
            {entry.name: entry.timings[key] for entry in group},
            self.config.timing,
            run_seed=self.seed,
            images=len(self.pool.split),
            on_round=self.round_log.append,
            progress=lambda name, doing, done, total: self.progress.show(
                name, lane.label, doing, done, total
            ),
        )
        # Last: its forward pass at the counting size must not disturb the warm state timed above.
        for entry in group:
            if entry.lane is lane and entry.cached_record is None and entry.state.complexity is None:
                self._count_complexity(entry, lane)

    def _count_complexity(self, entry: Entry, lane: Lane) -> None:
        """Params, FLOPs, activations and #conv, by the worker of the lane that times the entry."""
        request = msg.CountComplexity(self.config.flop_counter)
        reply = self.pool.ask(entry, lane, request, "the complexity count")
        if isinstance(reply, msg.ComplexityCounted):
            with self._lock:
                entry.state.complexity = reply.counts
                entry.checkpoint()

    # -- records --------------------------------------------------------------------------------

    def record(self, entry: Entry) -> dict[str, Any]:
        """The entry's record; a new ok one is cached complete and its partial slot removed."""
        if not entry.ok:
            return records.failed_record(entry)
        timed = entry.timings.get(entry.timing_key) if entry.timing_key is not None else None
        if entry.cached_record is not None and timed is None:
            return schema.cached_record(entry.cached_record, role=entry.role)
        assert timed is not None and entry.key is not None
        record = records.ok_record(
            entry,
            timed,
            image_names=self.dataset.names,
            session=self.session,
            fingerprint_id=fingerprint_id(self.fingerprints[timed.lane.index]),
            baseline=next((other for other in self.entries if other.name == self.baseline_name), None),
        )
        self.cache.save_complete(entry.key, record)
        if entry.slot is not None:
            entry.slot.release(remove=True)
            entry.slot = None
        return schema.with_cached(record, cached=False)

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
            self.pool.logs = self.pool.logs or Path(scratch)
            self.prepare()
            if self.all_cached_together() or not any(entry.ok for entry in self.entries):
                return [self.record(entry) for entry in self.entries], []
            retimed = [entry.name for entry in self.entries if entry.ok and entry.cached_record is not None]
            self.accuracy_pass()
            self._snapshot_devices("before")
            self.performance_pass()
            self._snapshot_devices("after")  # while the timed workers still hold their devices
            return [self.record(entry) for entry in self.entries], retimed


class _LaneWorkers:
    """The round loop's view of one lane's workers (:class:`harness.runner.timing_loop.TimedWorkers`)."""

    def __init__(self, pool: WorkerPool, lane: Lane, by_name: dict[str, Entry]) -> None:
        self.pool = pool
        self.lane = lane
        self.by_name = by_name

    def prepare(self, name: str, doing: str) -> None:
        self.pool.ask(self.by_name[name], self.lane, msg.PrepareTiming(), doing)

    def warm_up(self, name: str, request: msg.WarmUp, doing: str) -> int | None:
        reply = self.pool.ask(self.by_name[name], self.lane, request, doing)
        return reply.passes if isinstance(reply, msg.WarmedUp) else None

    def time_image(self, name: str, request: msg.TimeImage, doing: str) -> float | None:
        reply = self.pool.ask(self.by_name[name], self.lane, request, doing)
        return reply.milliseconds if isinstance(reply, msg.ImageTimed) else None

    def failed(self, name: str) -> bool:
        return not self.by_name[name].ok

    def restarts(self, name: str) -> int:
        return len(self.by_name[name].retries)
