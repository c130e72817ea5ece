"""One record per submission, built through :mod:`harness.runner.schema` from what the run measured.

An ok record joins the submission's accuracy results (this run's, or a cached record's when only
its timing was done again) with its timings on the lane that timed it, and says how it pairs with
the baseline timed beside it there.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from harness.integrity import integrity_record
from harness.metrics import METRIC_KEYS
from harness.runner import schema
from harness.runner.entries import AccuracyState, Entry, SubgroupTimings
from harness.timing import ClockName, RuntimeStats, timer_method
from harness.timing.rounds import paired_round_ratios


def identity(entry: Entry) -> dict[str, Any]:
    """The keys that say whose record it is."""
    return schema.identity(
        submission=entry.name,
        team=entry.submission.team,
        role=entry.role,
        weights_sha256=entry.weights.sha256 if entry.weights else None,
        official_model_id=entry.submission.official_model_id,
    )


def failed_record(entry: Entry) -> dict[str, Any]:
    return schema.failed_record(identity(entry), error=entry.failure, retries=entry.retries)


def mean_or_none(values: list[float | None]) -> float | None:
    """Mean over images, None when a split has no HR; inf stays inf (identical images)."""
    present = [value for value in values if value is not None]
    return float(sum(present) / len(present)) if present else None


def ok_record(
    entry: Entry,
    timed: SubgroupTimings,
    *,
    image_names: Sequence[str],
    session: str,
    fingerprint_id: str,
    baseline: Entry | None,
    sandbox: Mapping[str, Any],
    clock: ClockName,
) -> dict[str, Any]:
    """The record of ``entry`` timed in ``timed`` (as the cache keeps it: without ``cached``).

    ``image_names`` is the dataset's order, ``fingerprint_id`` the timing lane's device, ``baseline``
    the run's baseline entry (None when the run has none), ``sandbox`` how the workers were confined,
    ``clock`` the run's (its record names the timer that clock is on the lane's device).
    """
    source = (
        AccuracyState.from_record(entry.cached_record) if entry.cached_record is not None else entry.state
    )
    order = {name: index for index, name in enumerate(image_names)}
    scored = sorted(source.per_image, key=lambda r: order[r["name"]])
    per_image = []
    for image_index, image in enumerate(scored):
        rounds_ms = [latencies[image_index] for latencies in timed.latencies]
        per_image.append(schema.per_image_row(image, rounds_ms, statistics.fmean(rounds_ms)))
    every = [latency for latencies in timed.latencies for latency in latencies]
    round_means = [statistics.fmean(latencies) for latencies in timed.latencies]
    first_call = source.first_call_ms
    runtime = schema.runtime_record(
        RuntimeStats.from_latencies(every).as_dict(),
        rounds=round_means,
        cv=statistics.pstdev(round_means) / statistics.fmean(round_means),
        first_call_ms=first_call,
        mean_without_warmup=(
            (first_call + sum(timed.latencies[0][1:])) / len(per_image)
            if first_call is not None and not source.resumed
            else None
        ),
    )
    assert source.complexity is not None  # counted after the rounds, else the entry failed
    lane = timed.lane
    return schema.ok_record(
        identity(entry),
        metrics={key: mean_or_none([image[key] for image in per_image]) for key in METRIC_KEYS},
        runtime=runtime,
        max_memory_mb=source.max_memory_mb,
        complexity=source.complexity,
        warmup_passes=timed.warmup_passes,
        torch_settings_changed=entry.loaded.changed_by_submission if entry.loaded else {},
        timing_session=session,
        timed_on=schema.timed_on(
            lane=lane.index,
            label=lane.label,
            node=lane.node,
            device=lane.device,
            fingerprint_id=fingerprint_id,
        ),
        pairing=pairing(timed, baseline),
        runtime_clock=timer_method(lane.device, clock),
        rounds_used=len(timed.latencies),
        stop_reason=timed.stop_reason,
        rounds_until_decided=[result.as_dict() for result in timed.looks],
        retries=entry.retries,
        resumed=source.resumed,
        per_image=per_image,
        integrity=integrity_record(sandbox, timed.checks),
    )


def pairing(timed: SubgroupTimings, baseline: Entry | None) -> dict[str, Any] | None:
    """How ``timed`` compares with the baseline timed beside it on its lane (None: no baseline)."""
    if baseline is None or not baseline.ok:
        return None
    beside = baseline.timings.get((timed.lane.index, timed.group))
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
