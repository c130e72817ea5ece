"""The runner: evaluates submissions on a dataset and returns one run document (results + identities).

Data flows one way: dataset -> submission -> worker -> records. The runner knows nothing about
constraints or leaderboards; the command layer applies those to the run document it returns.

Every submission runs in a worker of its own (:mod:`harness.runner.worker`), a local process
(:mod:`harness.runner.process`), a Ray actor (:mod:`harness.runner.ray_lanes`) or, for tests and
debugging, the coordinator's own process (:mod:`harness.runner.in_process`), as the table of
:mod:`harness.runner.executors` makes them, on one of the run's *lanes* (:mod:`harness.runner.lanes`:
one device each). The coordinator
(:mod:`harness.runner.coordinator`) verifies weights, decodes the data once, spreads the untimed
accuracy pass over every lane, and times each lane's submissions beside a baseline of their own in
interleaved rounds, so that every runtime ratio compares two measurements of one device. A
submission that fails (import error, bad weights, exception, NaN output, wrong size, out of memory,
a crashed or hung worker) becomes a record with ``status: failed`` and its reason; the others carry
on and are still ranked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.cells import GPU_ONLY_CELLS, cell_record, unavailable
from harness.runner import schema
from harness.runner.coordinator import Coordinator
from harness.runner.entries import make_entries
from harness.runner.executors import ExecutorSettings, make_executor
from harness.runner.lanes import Executor
from harness.runner.sandbox import NOT_SANDBOXED
from harness.runner.settings import RunConfig, TimingSettings, worker_threads
from harness.submissions import Submission
from harness.timing import fingerprint_id

if TYPE_CHECKING:
    from harness.data import Dataset


# An executor that does not run its workers under bwrap (Ray lanes, for now).

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
    own_executor = executor is None
    executor = executor or make_executor("local", ExecutorSettings([config.device], sandbox=config.sandbox))
    threads = worker_threads(config.threads, config.device)
    entries = make_entries(submissions, baseline, config.weights)
    coordinator = Coordinator(
        dataset, config, entries, baseline.name if baseline is not None else None, executor, threads
    )
    try:
        results, retimed = coordinator.run()
        cells = _run_cells(submissions, dataset, config, baseline, executor, threads)
    finally:
        if own_executor:
            executor.close()
    if cells:
        results = [_with_cells(record, cells) for record in results]
    first = coordinator.fingerprints[0]
    return schema.run_document(
        harness=coordinator.harness,
        protocol=config.protocol_name,
        protocol_version=config.protocol_version,
        device={**first, "fingerprint_id": fingerprint_id(first)},
        # Lane 0's GPU before and after the performance pass; every lane's is in "lanes".
        device_state=coordinator.device_state.get(0, {"before": None, "after": None}),
        lanes=[
            schema.lane_record(
                lane=lane.index,
                label=lane.label,
                node=lane.node,
                device=lane.device,
                fingerprint_id=fingerprint_id(fingerprint),
                fingerprint=fingerprint,
                device_state=coordinator.device_state.get(lane.index, {"before": None, "after": None}),
            )
            for lane, fingerprint in zip(coordinator.lanes, coordinator.fingerprints, strict=True)
        ],
        dataset=coordinator.description,
        timing=schema.timing_record(
            config.timing.as_dict(),
            threads=threads,
            device=str(config.device),
            seed=coordinator.seed,
            round_log=coordinator.round_log,
            torch_settings=next(
                (entry.loaded.torch_settings for entry in entries if entry.loaded is not None), None
            ),
        ),
        baseline=baseline.name if baseline is not None else None,
        timing_session=coordinator.session,
        retimed=retimed,
        cells=list(config.cells),
        sandbox=getattr(executor, "sandbox", NOT_SANDBOXED).record(),
        results=results,
    )


def _run_cells(
    submissions: Sequence[Submission],
    dataset: Dataset,
    config: RunConfig,
    baseline: Submission | None,
    executor: Executor,
    threads: int,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Each cell other than fp32 eager as a run of its own: {cell: {submission: its record there}}.

    A cell's run has the same lanes, rounds and statistics as the protocol's, with the baseline in
    the same cell, so its runtime ratio compares like with like. A cell that needs a GPU is not run
    on a CPU: its records say so.
    """
    found: dict[str, dict[str, dict[str, Any]]] = {}
    on_cpu = all(not lane.device.startswith("cuda") for lane in executor.lanes)
    for cell in config.cells:
        if cell == "fp32":
            continue
        if on_cpu and cell in GPU_ONLY_CELLS:
            names = [sub.name for sub in submissions] + ([baseline.name] if baseline else [])
            found[cell] = {name: {"status": "failed", "error": "needs a GPU"} for name in names}
            continue
        cell_config = dataclasses.replace(config, save_images_dir=None)
        entries = make_entries(submissions, baseline, config.weights, cell=cell)
        name = baseline.name if baseline is not None else None
        records, _ = Coordinator(dataset, cell_config, entries, name, executor, threads).run()
        found[cell] = {record["submission"]: record for record in records}
    return found


def _with_cells(record: dict[str, Any], cells: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """``record`` with its ``cells``: fidelity and its drop from this record, runtime ratio, reason."""
    name = record["submission"]
    return schema.with_cells(
        record,
        {
            cell: cell_record(by_name[name], record) if name in by_name else unavailable("not run")
            for cell, by_name in cells.items()
        },
    )
