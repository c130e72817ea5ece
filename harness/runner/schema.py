"""The run document and its result records, written down once: their keys, types and versions.

A submission's result changes hands many times (worker, coordinator, command layer, results.json,
leaderboard, report); this module is the one place that spells its keys. The coordinator builds
records through :func:`ok_record`, :func:`failed_record` and :func:`cached_record`, the runner the
document through :func:`run_document`, the command layer adds verdicts through :func:`judged_record`,
and every reader gets a document through :func:`upgrade`, which migrates older versions and
validates the result, so readers never branch on the version that wrote a file.

Each ``TypedDict`` key carries a comment saying what it holds and, for ``NotRequired`` keys, when
it is present. ``docs/results-schema.md`` has one row per key; a test keeps the two in step.

Versions:

- 1 (no ``schema_version`` key): constraint records may lack ``verdict`` and ``interval``; ok
  records may lack ``num_images``, ``pairing`` and ``timed_on`` (runs before paired timing and lanes).
- 2: ``schema_version`` is written; every constraint record has ``verdict`` and ``interval``;
  every ok record has ``num_images``, ``pairing`` and ``timed_on`` (null in runs migrated from 1);
  runs record ``timing.statistic``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict, get_type_hints

from harness.errors import HarnessError

__all__ = [
    "SCHEMA_VERSION",
    "ConstraintRecord",
    "LaneRecord",
    "PairingRecord",
    "PerImageRow",
    "ResultRecord",
    "RoundLogEntry",
    "RunDocument",
    "RuntimeRecord",
    "TimedOnRecord",
    "TimingRecord",
    "cached_record",
    "failed_record",
    "identity",
    "judged_record",
    "lane_record",
    "ok_record",
    "pairing",
    "per_image_row",
    "run_document",
    "runtime_record",
    "timed_on",
    "timing_record",
    "upgrade",
    "with_cached",
    "with_cells",
]

#: The version this harness writes; :func:`upgrade` reads every version up to it.
SCHEMA_VERSION = 2

Status = Literal["ok", "failed"]
Verdict = Literal["pass", "fail", "inconclusive"]


class PerImageRow(TypedDict):
    """One image of a record's ``per_image`` list, in the dataset's order."""

    name: str  # the image's name (file stem without the scale suffix)
    psnr_rgb: float | None  # PSNR over RGB in dB after the protocol's border crop; always, null without HR
    psnr_y: NotRequired[float | None]  # PSNR on the Y channel; present unless scoring was PSNR-only
    ssim_rgb: NotRequired[float | None]  # SSIM over RGB; present unless scoring was PSNR-only
    ssim_y: NotRequired[float | None]  # SSIM on the Y channel; present unless scoring was PSNR-only
    runtime_ms_rounds: NotRequired[list[float]]  # latency per timing round in ms; present when timed
    runtime_ms: NotRequired[float]  # mean of runtime_ms_rounds; present when timed


class RuntimeRecord(TypedDict):
    """A record's ``runtime_ms``: statistics over every timed latency of every round, in ms."""

    mean: float  # plain mean over images and rounds (the protocol figure)
    median: float  # median of the same latencies
    p90: float  # NumPy's linearly interpolated 90th percentile of the same latencies
    std: float  # population standard deviation (ddof 0) of the same latencies
    rounds: NotRequired[list[float]]  # mean latency of each round; written by every run
    cv: NotRequired[float]  # std / mean of the round means; written by every run
    first_call_ms: NotRequired[float | None]  # the cold first forward pass; written, null when resumed
    mean_without_warmup: NotRequired[float | None]  # mean with the cold first call; null when resumed


class PairingRecord(TypedDict):
    """A record's ``pairing``: how it compares with the baseline timed beside it on its lane."""

    baseline: str  # the baseline submission's name
    lane: int  # index of the lane both were timed on
    baseline_mean_ms: float  # the baseline's mean latency on that lane
    round_ratios: list[float]  # per round, median over images of submission / baseline latency


class TimedOnRecord(TypedDict):
    """A record's ``timed_on``: the lane its performance pass ran on."""

    lane: int  # index into the run document's lanes
    label: str  # the lane's human name, e.g. cpu or node1/cuda:0
    node: str  # the machine the lane belongs to
    device: str  # the torch device of the lane
    fingerprint_id: str  # short hash of the lane's device fingerprint


class ConstraintRecord(TypedDict):
    """One verdict in a judged record's ``constraints`` (harness.constraints.ConstraintResult)."""

    name: str  # complete, params, runtime or psnr
    value: float | None  # what was found; null when the check could not run
    limit: float | None  # what the protocol allows; null when the check could not run
    operator: str  # how value compares with limit: ==, <= or >= ('' when the check could not run)
    passed: bool  # true for verdict pass alone
    kind: str  # absolute, relative (to the baseline), proxy or completeness
    unit: str  # the unit of value and limit
    note: str  # why it failed, or how the value was found
    verdict: Verdict  # pass, fail or inconclusive (a runtime ratio whose interval straddles the limit)
    interval: list[float] | None  # 95% interval [low, high] of a paired runtime ratio, else null


class IntegrityCheck(TypedDict):
    """One entry of a record's ``integrity.checks`` (harness.integrity.Check)."""

    name: str  # timed_outputs, timed_scores, clocks, repeated_inputs, threads or idle_work
    verdict: Literal["pass", "fail"]  # fail makes the submission invalid: listed, not ranked
    detail: str  # one line: what was compared and what was found


class IntegrityRecord(TypedDict):
    """A record's ``integrity``: what was checked from outside the submission's process."""

    sandbox: dict[str, Any]  # how its worker was confined: enabled and bwrap, or enabled false and reason
    checks: list[IntegrityCheck]  # each check that ran, in the order they ran
    verdict: Literal["pass", "fail"]  # fail when one check failed


class ResultRecord(TypedDict):
    """One submission's result in the run document's ``results``."""

    submission: str  # the submission's name
    team: NotRequired[str | None]  # its team, from submission.yaml; written by every run
    role: NotRequired[str]  # submission, or baseline (added to time against); written by every run
    weights_sha256: NotRequired[str | None]  # sha256 of the weights used; written, null when unresolved
    official_model_id: NotRequired[int | None]  # the edition's model id; written, null outside a zoo
    status: Status  # ok, or failed (then error says why); always
    error: NotRequired[str | None]  # the failure's one-line reason; written, null when ok
    psnr_rgb: NotRequired[float | None]  # mean per-image PSNR over RGB in dB; written, null when failed
    psnr_y: NotRequired[float | None]  # mean per-image PSNR on Y in dB; written, null when failed
    ssim_rgb: NotRequired[float | None]  # mean per-image SSIM over RGB; written, null when failed
    ssim_y: NotRequired[float | None]  # mean per-image SSIM on Y; written, null when failed
    runtime_ms: NotRequired[RuntimeRecord | None]  # latency statistics; written, null when failed
    max_memory_mb: NotRequired[float | None]  # peak GPU memory, accuracy pass; written, null on CPU/failed
    params: NotRequired[int | None]  # parameter count; written, null when failed
    flops: NotRequired[float | None]  # FLOPs by the protocol's counter; written, null when failed
    flops_counter: NotRequired[str]  # which counter gave flops; present when ok
    flops_ntire2022: NotRequired[float | None]  # FLOPs by the NTIRE 2022 counter; present when ok
    flops_fvcore: NotRequired[float | None]  # FLOPs by fvcore; present when ok
    flops_lower_bound: NotRequired[bool]  # true when a counter missed operations; present when ok
    activations: NotRequired[int | None]  # activation count; written, null when failed
    num_conv: NotRequired[int | None]  # number of convolution layers; written, null when failed
    fvcore_unsupported_ops: NotRequired[dict[str, int] | None]  # ops fvcore skipped; present when ok
    fvcore_uncounted_work: NotRequired[list[str] | None]  # ops fvcore could not count; present when ok
    counter_errors: NotRequired[dict[str, str]]  # counters that raised, and why; present when ok
    num_images: NotRequired[int]  # images scored (0 when failed); written by every run
    warmup_passes: NotRequired[list[int]]  # warm-up passes before each round; present when ok
    torch_settings_changed: NotRequired[dict[str, Any]]  # torch flags the model changed; present when ok
    timing_session: NotRequired[str]  # id of the run that timed it (cached: theirs); present when ok
    timed_on: NotRequired[TimedOnRecord | None]  # its lane; present when ok, null if migrated from 1
    pairing: NotRequired[PairingRecord | None]  # baseline timed beside it; present when ok, null without
    runtime_clock: NotRequired[str]  # timer of runtime_ms: perf_counter, cuda_event, or process_time
    # (CPU time, --clock cpu, not the protocol's); present when ok, in runs since --clock
    rounds_used: NotRequired[int]  # timing rounds it took part in; present when ok (runs since rounds auto)
    stop_reason: NotRequired[str | None]  # decided, resolution or cap; present when ok, null: fixed rounds
    rounds_until_decided: NotRequired[list[dict[str, Any]]]  # the rule's look after each round; when ok
    retries: NotRequired[list[str]]  # why its worker was restarted, one line each; written by every run
    resumed: NotRequired[bool]  # the accuracy pass continued a checkpoint; present when ok
    per_image: NotRequired[list[PerImageRow]]  # one row per image; written, empty when failed
    cached: NotRequired[bool]  # true when read from the result cache; written by every run
    constraints: NotRequired[list[ConstraintRecord]]  # verdicts; present once the command layer judged it
    valid: NotRequired[bool | None]  # all verdicts pass (null: inconclusive); present once judged
    integrity: NotRequired[IntegrityRecord]  # checks made outside its process; present when they ran
    cells: NotRequired[dict[str, dict[str, Any]]]  # each cell's cell_record; present when --cells adds one
    sandbox: NotRequired[dict[str, Any]]  # how the worker was confined; present when it ran sandboxed
    placement: NotRequired[str | None]  # "cuda calls mapped to cpu" when they were; null otherwise; when ok


class LaneRecord(TypedDict):
    """One of the run document's ``lanes``: a device the run's workers ran on."""

    lane: int  # the lane's index, as records' timed_on.lane name it
    label: str  # the lane's human name
    node: str  # the machine it belongs to
    device: str  # its torch device
    fingerprint_id: str  # short hash of fingerprint
    fingerprint: dict[str, Any]  # GPU, driver, CPU and library versions (harness.timing fingerprint)
    device_state: NotRequired[dict[str, Any]]  # its NVML state around timing; written by every run


class RoundLogEntry(TypedDict):
    """One timing round of one lane, in ``timing.round_log``."""

    lane: str  # the lane's label
    order: list[str]  # the submissions' turn order in this round
    wall_ms: float  # wall time of the round's timed part
    timed_ms: float  # sum of the latencies it measured
    repeated_after_restart: NotRequired[list[str]]  # workers restarted mid-round; present when one was
    subgroup: NotRequired[int]  # the lane's timing subgroup (device sharing); present when not the first
    dither_seed: NotRequired[int]  # seed of this round's input dithers (harness.runner.dither); runs since it


class TimingRecord(TypedDict):
    """The run document's ``timing``: the settings in force and how the rounds went."""

    warmup_seconds: NotRequired[float]  # warm-up time before each round; written by every run
    warmup_min_passes: NotRequired[int]  # fewest warm-up passes; written by every run
    warmup_max_passes: NotRequired[int]  # most warm-up passes; written by every run
    repeats: NotRequired[int]  # timed calls per image, median kept; written by every run
    cudnn_benchmark: NotRequired[bool]  # torch.backends.cudnn.benchmark during timing; written by every run
    rounds: NotRequired[int | None]  # fixed count of timing rounds, null for --rounds auto; every run
    min_rounds: NotRequired[int]  # fewest rounds of --rounds auto; written by runs since rounds auto
    max_rounds: NotRequired[int]  # most rounds of --rounds auto; written by runs since rounds auto
    max_timing_seconds: NotRequired[float | None]  # no new round after this long; null: no limit
    ratio_limit: NotRequired[float | None]  # what auto decides runtime ratios against; null: none
    resolution: NotRequired[float]  # auto stops when the interval is this narrow (±); runs since auto
    clock: NotRequired[str]  # wall (the protocol's clocks) or cpu (CPU time); runs since --clock
    fresh_workers: NotRequired[bool]  # a fresh worker for each round; runs since --fresh-workers
    timeout_seconds: NotRequired[float]  # time limit of one worker; written by every run
    statistic: NotRequired[str]  # runtime figure the constraints compare; written by every run
    threads: NotRequired[int]  # torch threads of each worker; written by every run
    device: NotRequired[str]  # the run's device as asked; written by every run
    seed: NotRequired[int]  # seed of the round order; written by every run
    round_log: NotRequired[list[RoundLogEntry]]  # every round of every lane, in order; written by every run
    torch_settings: NotRequired[dict[str, Any] | None]  # torch flags in the workers; null if none loaded


class RunDocument(TypedDict):
    """One run: what ``esr evaluate`` writes as results.json (and to ``--json``)."""

    schema_version: int  # the schema version that wrote it; always once read (a file without it is 1)
    harness: NotRequired[dict[str, Any]]  # harness version, git commit and dirty flag; written by every run
    protocol: str  # the protocol's name, e.g. ntire2022
    protocol_version: int  # the protocol's version: runs of two versions are never ranked together
    device: dict[str, Any]  # the first lane's fingerprint plus its fingerprint_id
    device_state: NotRequired[dict[str, Any]]  # lane 0's NVML state around timing; written by every run
    lanes: NotRequired[list[LaneRecord]]  # every lane of the run; written by every run
    dataset: dict[str, Any]  # name, path, split, num_images, expected_images, scale, layout, content_sha256
    timing: NotRequired[TimingRecord]  # the timing settings and round log; written by every run
    baseline: NotRequired[str | None]  # the baseline timed beside the submissions; written, null without
    timing_session: NotRequired[str]  # id of this run's timing session; written by every run
    retimed: NotRequired[list[str]]  # cached results timed again in this run; written by every run
    cells: NotRequired[list[str]]  # deployment cells measured, fp32 first; written by every run
    sandbox: NotRequired[dict[str, Any]]  # enabled and bwrap, or enabled false and reason; runs since it
    results: list[ResultRecord]  # one record per submission, baseline last


# -- building ------------------------------------------------------------------------------------


def identity(
    *, submission: str, team: str | None, role: str, weights_sha256: str | None, official_model_id: int | None
) -> dict[str, Any]:
    """The keys that say whose record it is; every record starts with them."""
    return {
        "submission": submission,
        "team": team,
        "role": role,
        "weights_sha256": weights_sha256,
        "official_model_id": official_model_id,
    }


def failed_record(who: Mapping[str, Any], *, error: str | None, retries: list[str]) -> dict[str, Any]:
    """The record of a submission that failed: its reason, and null where a figure would be."""
    return {
        **who,
        "status": "failed",
        "error": error,
        **dict.fromkeys(("psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y")),
        "runtime_ms": None,
        "max_memory_mb": None,
        "params": None,
        "flops": None,
        "activations": None,
        "num_conv": None,
        "num_images": 0,
        "retries": retries,
        "per_image": [],
        "cached": False,
    }


def per_image_row(scored: Mapping[str, Any], rounds_ms: list[float], mean_ms: float) -> dict[str, Any]:
    """An image's scores (as the worker sent them) with its latency in each round and their mean."""
    return {**scored, "runtime_ms_rounds": rounds_ms, "runtime_ms": mean_ms}


def runtime_record(
    stats: Mapping[str, float],
    *,
    rounds: list[float],
    cv: float,
    first_call_ms: float | None,
    mean_without_warmup: float | None,
) -> dict[str, Any]:
    """A record's ``runtime_ms``: ``stats`` (mean, median, p90, std of every latency) and the rest."""
    return {
        **stats,
        "rounds": rounds,
        "cv": cv,
        "first_call_ms": first_call_ms,
        "mean_without_warmup": mean_without_warmup,
    }


def ok_record(
    who: Mapping[str, Any],
    *,
    metrics: Mapping[str, float | None],
    runtime: Mapping[str, Any],
    max_memory_mb: float | None,
    complexity: Mapping[str, Any],
    warmup_passes: list[int],
    torch_settings_changed: dict[str, Any],
    timing_session: str,
    timed_on: Mapping[str, Any],
    pairing: Mapping[str, Any] | None,
    runtime_clock: str,
    rounds_used: int,
    stop_reason: str | None,
    rounds_until_decided: list[dict[str, Any]],
    retries: list[str],
    resumed: bool,
    per_image: list[dict[str, Any]],
    integrity: Mapping[str, Any],
) -> dict[str, Any]:
    """The record of a submission measured in this run (as the cache keeps it: without ``cached``)."""
    return {
        **who,
        "status": "ok",
        "error": None,
        **metrics,
        "runtime_ms": dict(runtime),
        "max_memory_mb": max_memory_mb,
        **complexity,
        "num_images": len(per_image),
        "warmup_passes": warmup_passes,
        "torch_settings_changed": torch_settings_changed,
        "timing_session": timing_session,
        "timed_on": dict(timed_on),
        "pairing": None if pairing is None else dict(pairing),
        "runtime_clock": runtime_clock,
        "rounds_used": rounds_used,
        "stop_reason": stop_reason,
        "rounds_until_decided": rounds_until_decided,
        "retries": retries,
        "resumed": resumed,
        "per_image": per_image,
        "integrity": dict(integrity),
    }


def timed_on(*, lane: int, label: str, node: str, device: str, fingerprint_id: str) -> dict[str, Any]:
    """A record's ``timed_on``."""
    return {"lane": lane, "label": label, "node": node, "device": device, "fingerprint_id": fingerprint_id}


def pairing(
    *, baseline: str, lane: int, baseline_mean_ms: float, round_ratios: list[float]
) -> dict[str, Any]:
    """A record's ``pairing``."""
    return {
        "baseline": baseline,
        "lane": lane,
        "baseline_mean_ms": baseline_mean_ms,
        "round_ratios": round_ratios,
    }


def with_cached(record: Mapping[str, Any], *, cached: bool) -> dict[str, Any]:
    """A record as the run reports it: whether it came from the cache."""
    return {**record, "cached": cached}


def with_cells(record: Mapping[str, Any], cells: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A record with its ``cells``: per deployment cell, what harness.cells.cell_record built."""
    return {**record, "cells": cells}


def cached_record(complete: Mapping[str, Any], *, role: str) -> dict[str, Any]:
    """A complete cached record reused as it is, with this run's role for it."""
    return {**complete, "role": role, "cached": True}


def judged_record(
    record: Mapping[str, Any], constraints: list[dict[str, Any]], valid: bool | None
) -> dict[str, Any]:
    """A record with the command layer's verdicts (``constraints``) and overall ``valid``."""
    return {**record, "constraints": constraints, "valid": valid}


def lane_record(
    *,
    lane: int,
    label: str,
    node: str,
    device: str,
    fingerprint_id: str,
    fingerprint: dict[str, Any],
    device_state: dict[str, Any],
) -> dict[str, Any]:
    """One of the run document's ``lanes``."""
    return {
        "lane": lane,
        "label": label,
        "node": node,
        "device": device,
        "fingerprint_id": fingerprint_id,
        "fingerprint": fingerprint,
        "device_state": device_state,
    }


def timing_record(
    settings: Mapping[str, Any],
    *,
    threads: int,
    device: str,
    seed: int,
    round_log: list[dict[str, Any]],
    torch_settings: dict[str, Any] | None,
) -> dict[str, Any]:
    """The run document's ``timing``: the settings in force (``settings``) and how the rounds went."""
    return {
        **settings,
        "threads": threads,
        "device": device,
        "seed": seed,
        "round_log": round_log,
        "torch_settings": torch_settings,
    }


def run_document(
    *,
    harness: dict[str, Any],
    protocol: str,
    protocol_version: int,
    device: dict[str, Any],
    device_state: dict[str, Any],
    lanes: list[dict[str, Any]],
    dataset: dict[str, Any],
    timing: dict[str, Any],
    baseline: str | None,
    timing_session: str,
    retimed: list[str],
    cells: list[str],
    sandbox: dict[str, Any],
    results: list[dict[str, Any]],
) -> dict[str, Any]:
    """The run document of the current version."""
    return {
        "schema_version": SCHEMA_VERSION,
        "harness": harness,
        "protocol": protocol,
        "protocol_version": protocol_version,
        "device": device,
        "device_state": device_state,
        "lanes": lanes,
        "dataset": dataset,
        "timing": timing,
        "baseline": baseline,
        "timing_session": timing_session,
        "retimed": retimed,
        "cells": cells,
        "sandbox": sandbox,
        "results": results,
    }


# -- reading -------------------------------------------------------------------------------------


def _from_version_1(document: dict[str, Any]) -> dict[str, Any]:
    """Version 1 to 2: verdicts derived from ``passed``, num_images counted, missing timing parts null."""
    for record in document.get("results") or []:
        if not isinstance(record, dict):
            continue  # validation names it
        for item in record.get("constraints") or []:
            if isinstance(item, dict):
                item.setdefault("verdict", "pass" if item.get("passed") else "fail")
                item.setdefault("interval", None)
        if "num_images" not in record and isinstance(record.get("per_image"), list):
            record["num_images"] = len(record["per_image"])
        if record.get("status") == "ok":
            record.setdefault("pairing", None)
            record.setdefault("timed_on", None)
    document["schema_version"] = 2
    return document


_MIGRATIONS = {1: _from_version_1}


def _keys(kind: type) -> frozenset[str]:
    return frozenset(get_type_hints(kind))


def _require(mapping: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = mapping.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise HarnessError(f"{where}: field {key!r} is missing or not {kind.__name__}")
    return value


def _unknown(mapping: Mapping[str, Any], kind: type, where: str) -> None:
    extra = sorted(set(mapping) - _keys(kind))
    if extra:
        raise HarnessError(
            f"{where}: unknown field {extra[0]!r} (not in harness/runner/schema.py {kind.__name__})"
        )


def _validate(document: Mapping[str, Any], where: str) -> None:
    """The fields every reader relies on, with their types; any key the schema does not name is refused."""
    _unknown(document, RunDocument, where)
    _require(document, "protocol", str, where)
    _require(document, "protocol_version", int, where)
    _require(_require(document, "device", dict, where), "fingerprint_id", str, f"{where} device")
    _require(document, "dataset", dict, where)
    baseline = document.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise HarnessError(f"{where}: field 'baseline' is not a string or null")
    for index, record in enumerate(_require(document, "results", list, where)):
        at = f"{where} results[{index}]"
        if not isinstance(record, dict):
            raise HarnessError(f"{at}: a result record is a JSON object")
        _unknown(record, ResultRecord, at)
        _require(record, "submission", str, at)
        if record.get("status") not in ("ok", "failed"):
            raise HarnessError(f"{at}: field 'status' is missing or not ok/failed")
        for number, item in enumerate(record.get("constraints") or []):
            if not isinstance(item, dict):
                raise HarnessError(f"{at} constraints[{number}]: a constraint record is a JSON object")
            _unknown(item, ConstraintRecord, f"{at} constraints[{number}]")
            if item.get("verdict") not in ("pass", "fail", "inconclusive"):
                raise HarnessError(
                    f"{at} constraints[{number}]: field 'verdict' is not pass/fail/inconclusive"
                )


def upgrade(document: Any, where: str) -> dict[str, Any]:
    """A run document read from ``where``, migrated to :data:`SCHEMA_VERSION` and validated.

    A document without ``schema_version`` is version 1. The argument is not changed. A document of a
    newer version than this harness knows, or one that does not fit the schema, is a HarnessError
    naming ``where`` and the field.
    """
    if not isinstance(document, dict):
        raise HarnessError(f"{where}: a run file is a JSON object, got {type(document).__name__}")
    version = document.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise HarnessError(
            f"{where}: field 'schema_version' is {version!r}; this harness reads versions 1 to {SCHEMA_VERSION}"
        )
    migrated = copy.deepcopy(document)
    while version < SCHEMA_VERSION:
        migrated = _MIGRATIONS[version](migrated)
        version = migrated["schema_version"]
    _validate(migrated, where)
    return migrated
