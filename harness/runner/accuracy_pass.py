"""The accuracy pass: every lane scores shards of the submissions still to score, untimed.

Which lane scores which shard is decided by :mod:`harness.runner.scheduling`; this module carries
the decisions out on the lanes' threads, checkpoints each scored image in the submission's partial
slot, and takes the official cold first call (image 0 on a fresh worker) with the device alone.
"""

from __future__ import annotations

import time

from harness.runner import messages as msg
from harness.runner import scheduling
from harness.runner.entries import Entry
from harness.runner.fan_out import on_threads
from harness.runner.lanes import Lane
from harness.runner.progress import Progress
from harness.runner.scorer import Scorer, scoring_device
from harness.runner.worker_pool import WorkerPool


class AccuracyPass:
    """The accuracy pass of one run on ``lanes``, with the workers of ``pool``."""

    def __init__(self, pool: WorkerPool, lanes: list[Lane], progress: Progress) -> None:
        self.pool = pool
        self.lanes = lanes
        self.progress = progress
        self._lock = pool.lock  # the entries' states, written by the lanes' threads

    def run(self, entries: list[Entry]) -> None:
        """Score every image not yet scored of the entries without a cached record."""
        split = self.pool.split
        assert split is not None
        # Bigger weights, more work (a rough guess before any model is loaded): started first, so
        # that the small ones fill the lanes' last gaps.
        todo_entries = sorted(
            (entry for entry in entries if entry.ok and entry.cached_record is None),
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

        on_threads(work, self.lanes)

    def _score(self, entry: Entry, shard: scheduling.Shard, *, lane: Lane) -> None:
        """The shard's outputs from the entry's worker on ``lane``, each scored here as it comes
        (:mod:`harness.runner.scorer`) and checkpointed."""
        assert self.pool.split is not None
        state = entry.state
        total = len(self.pool.split)
        save_dir = self.pool.config.save_images_dir
        scorer = Scorer(
            self.pool.split,
            shard,
            scale=entry.submission.scale,
            border=self.pool.config.border,
            device=scoring_device(lane.device, lane.node),
            save_dir=save_dir / entry.name if save_dir is not None else None,
        )

        def checkpoint(output: msg.ImageOutput) -> None:
            record = scorer.score(output)
            with self._lock:
                state.per_image.append(record)
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
        if entry.ok and scorer.missing:
            self.pool.fail(entry, f"{entry.name}: the worker sent no output for {', '.join(scorer.missing)}")
