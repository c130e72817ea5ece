"""The coordinator of one run: the order of its steps, each done by a module of its own.

1. Each submission's weights are found and verified, the dataset is decoded once and shared, and
   each submission's cache entry is looked up (:mod:`harness.runner.cache_lookup`: a complete
   record, or the partial slot to fill).
2. **Accuracy pass** (:mod:`harness.runner.accuracy_pass`). The images still to score are cut into
   shards (:mod:`harness.runner.scheduling` decides which lane scores which); the lanes work
   through them, each on a worker of its own per submission (:mod:`harness.runner.worker_pool`),
   and checkpoint each scored image.
3. **Performance pass** (:mod:`harness.runner.performance_pass`). Each submission is timed on one
   lane, beside a baseline worker of that lane, in interleaved rounds
   (:mod:`harness.runner.timing_loop`); lanes of one device one after another. Then the worker of
   the lane that timed a submission counts its complexity.
4. One record per submission (:mod:`harness.runner.records`): its accuracy results, its lane's
   timings, and how it pairs with the baseline timed beside it.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.provenance import harness_identity
from harness.runner import records, schema
from harness.runner.accuracy_pass import AccuracyPass
from harness.runner.cache import ResultCache
from harness.runner.cache_lookup import CacheLookup, all_cached_together
from harness.runner.entries import Entry
from harness.runner.lanes import Executor
from harness.runner.performance_pass import PerformancePass
from harness.runner.progress import Progress
from harness.runner.sandbox import NOT_SANDBOXED
from harness.runner.settings import RunConfig
from harness.runner.shared_data import share_dataset
from harness.runner.worker_pool import WorkerPool
from harness.submissions import resolve_weights
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
        self.cache = ResultCache(config.cache_dir)
        self.lanes = list(executor.lanes)
        self.fingerprints = [executor.fingerprint(lane, threads) for lane in self.lanes]
        self.description = dataset.describe()
        self.harness = harness_identity()  # asks git: once per run, not once per submission
        self.session = uuid.uuid4().hex
        self.seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**32)
        self.round_log: list[dict[str, Any]] = []
        self.progress = Progress(config.quiet)
        # The entries' failures and states, written by the lanes' threads.
        self.pool = WorkerPool(executor, config, threads, threading.Lock())
        self.lookup = CacheLookup(
            self.cache, config, self.description, self.fingerprints, threads, self.harness, dataset.names
        )
        # NVML clocks and temperature of each lane's GPU, before and after the performance pass.
        self.device_state: dict[int, dict[str, Any]] = {}

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

    def prepare(self) -> None:
        """Everything before the passes: weights verified, the data decoded and shared, the cache read.

        Bad weights or a bad dataset file are errors (exit 2) before anything is cached or run.
        """
        self.verify_weights()
        self.pool.split = share_dataset(
            self.dataset, self.description["content_sha256"], self.config.cache_dir / "decoded"
        )
        self.lookup.look_up(self.entries)

    def close(self) -> None:
        """Stop every worker and let go of the partial slots still held (kept for a later resume)."""
        self.progress.close()
        for entry in self.entries:
            self.pool.close_workers(entry, self.lanes)
            if entry.slot is not None:  # kept for a later resume when it holds work
                entry.slot.release(remove=not entry.state.per_image)
                entry.slot = None

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
            sandbox=getattr(self.executor, "sandbox", NOT_SANDBOXED).record(),
            clock=self.config.timing.clock,
        )
        self.cache.save_complete(entry.key, record)
        if entry.slot is not None:
            entry.slot.release(remove=True)
            entry.slot = None
        return schema.with_cached(record, cached=False)

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
            if all_cached_together(self.entries) or not any(entry.ok for entry in self.entries):
                return [self.record(entry) for entry in self.entries], []
            retimed = [entry.name for entry in self.entries if entry.ok and entry.cached_record is not None]
            AccuracyPass(self.pool, self.lanes, self.progress).run(self.entries)
            self._snapshot_devices("before")
            PerformancePass(
                self.pool,
                self.lanes,
                self.progress,
                baseline_name=self.baseline_name,
                seed=self.seed,
                round_log=self.round_log,
            ).run(self.entries)
            self._snapshot_devices("after")  # while the timed workers still hold their devices
            return [self.record(entry) for entry in self.entries], retimed
