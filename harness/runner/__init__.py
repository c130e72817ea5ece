"""The runner: evaluates submissions on a dataset and returns one run document (results + identities).

Data flows one way: dataset -> submission -> worker -> records. The runner knows nothing about
constraints or leaderboards; the command layer applies those to the run document it returns.

Every submission runs in a worker of its own (:mod:`harness.runner.worker`), a local process
(:mod:`harness.runner.process`) or a Ray actor (:mod:`harness.runner.ray_lanes`), on one of the
run's *lanes* (:mod:`harness.runner.lanes`: one device each). The coordinator
(:mod:`harness.runner.coordinator`) verifies weights, decodes the data once, spreads the untimed
accuracy pass over every lane, and times each lane's submissions beside a baseline of their own in
interleaved rounds, so that every runtime ratio compares two measurements of one device. A
submission that fails (import error, bad weights, exception, NaN output, wrong size, out of memory,
a crashed or hung worker) becomes a record with ``status: failed`` and its reason; the others carry
on and are still ranked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.runner.coordinator import Coordinator, Entry
from harness.runner.lanes import Executor, LocalExecutor
from harness.runner.settings import RunConfig, TimingSettings, worker_threads
from harness.submissions import Submission
from harness.timing import fingerprint_id

if TYPE_CHECKING:
    from harness.data import Dataset


__all__ = ["RunConfig", "TimingSettings", "evaluate_run", "worker_threads"]


def evaluate_run(
    submissions: Sequence[Submission],
    dataset: Dataset,
    config: RunConfig,
    *,
    baseline: Submission | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Evaluate ``submissions`` (and ``baseline``, marked as such) and return the run document.

    ``executor`` provides the lanes workers run on (default: this machine's ``config.device``).
    ``config.weights`` replaces the weights of the submissions (the command allows it with a single
    submission): it is how a user evaluates their own checkpoint with a bundled architecture
    (``esr evaluate clb_imdn --weights mine.pth``). The baseline always uses its own weights.
    """
    executor = executor or LocalExecutor([config.device])
    threads = worker_threads(config.threads, config.device)
    entries = [Entry(submission, "submission", config.weights) for submission in submissions]
    if baseline is not None and baseline.name not in {sub.name for sub in submissions}:
        entries.append(Entry(baseline, "baseline", None))
    coordinator = Coordinator(
        dataset, config, entries, baseline.name if baseline is not None else None, executor, threads
    )
    results, retimed = coordinator.run()
    first = coordinator.fingerprints[0]
    return {
        "harness": coordinator.harness,
        "protocol": config.protocol_name,
        "protocol_version": config.protocol_version,
        "device": {**first, "fingerprint_id": fingerprint_id(first)},
        # Lane 0's GPU before and after the performance pass; every lane's is in "lanes".
        "device_state": coordinator.device_state.get(0, {"before": None, "after": None}),
        "lanes": [
            {
                "lane": lane.index,
                "label": lane.label,
                "node": lane.node,
                "device": lane.device,
                "fingerprint_id": fingerprint_id(fingerprint),
                "fingerprint": fingerprint,
                "device_state": coordinator.device_state.get(lane.index, {"before": None, "after": None}),
            }
            for lane, fingerprint in zip(coordinator.lanes, coordinator.fingerprints, strict=True)
        ],
        "dataset": coordinator.description,
        "timing": {
            **config.timing.as_dict(),
            "threads": threads,
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
