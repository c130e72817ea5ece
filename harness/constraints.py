"""The challenge constraints as records: what was expected, what was found, and the verdict.

Every check runs, even after another has failed, and an exception inside a check is a failed check
whose note says why, never a skip: a result is valid only when every record says passed. The
constraints come from the protocol file, so the numbers live in one place:

- ``complete``: the submission ran (status ``ok``) on every image of the dataset;
- ``params``: parameter count <= the protocol's limit (an exact count);
- ``runtime``: protocol runtime statistic / the baseline's, measured in the same run on the same
  device, <= the limit ratio (1.0): a ratio, so it holds on any GPU. When both were timed side by
  side in interleaved rounds (the record's ``pairing``), the ratio is the paired one (each round's
  median of the per-image ratios, over rounds their geometric mean; the ratio of means is in the
  note) and the verdict is three-valued: ``pass`` when its 95% interval lies at or under the limit,
  ``fail`` when it lies over it, ``inconclusive`` when it straddles it;
- ``psnr``: on a threshold's reference data (complete DIV2K val for ntire2022, DIV2K_LSDIR val or
  test for 2024+) PSNR >= its limit; on any other data PSNR >= the baseline's PSNR on that data minus
  the threshold's margin, labelled ``proxy``.

Which checks run is data: a constraint the protocol does not state (no params or runtime limit in
the 2024+ editions, no threshold at all in 2023) is not checked; ``complete`` always is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from harness.integrity import integrity_failure
from harness.protocols import Protocol
from harness.runner.schema import judged_record, with_cells
from harness.timing.rounds import RatioEstimate, Verdict, ratio_estimate

__all__ = [
    "ConstraintResult",
    "apply_constraints",
    "check_constraints",
    "find_baseline",
    "is_valid",
    "validity",
]


@dataclass(frozen=True)
class ConstraintResult:
    """One verdict. ``kind`` is absolute, relative (to the baseline), proxy or completeness.

    ``verdict`` is pass, fail or inconclusive (only a runtime ratio whose interval straddles its
    limit is inconclusive); ``passed`` is true for pass alone. ``interval`` is the confidence
    interval of ``value`` where one was measured (the runtime ratio), else None.
    """

    name: str
    value: float | None
    limit: float | None
    operator: str
    passed: bool
    kind: str
    unit: str
    note: str = ""
    verdict: Verdict | None = None
    interval: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.verdict is None:
            object.__setattr__(self, "verdict", "pass" if self.passed else "fail")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["interval"] = list(self.interval) if self.interval is not None else None
        return out


class _CheckError(Exception):
    """A precondition of one check failed (e.g. no baseline); its message becomes the note."""


def _number(record: dict[str, Any], key: str, who: str) -> float:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _CheckError(f"{who} has no numeric {key!r} (got {value!r})")
    return float(value)


def _runtime(record: dict[str, Any], statistic: str, who: str) -> float:
    runtime = record.get("runtime_ms")
    if not isinstance(runtime, dict):
        raise _CheckError(f"{who} has no runtime_ms record")
    return _number(runtime, statistic, f"{who} runtime_ms")


def _usable_baseline(baseline: dict[str, Any] | None, protocol: Protocol) -> dict[str, Any]:
    if baseline is None:
        raise _CheckError(f"no baseline result ({protocol.baseline}) in this run to compare with")
    if baseline.get("status") != "ok":
        raise _CheckError(f"the baseline {protocol.baseline} failed: {baseline.get('error')}")
    return baseline


def _complete(result: dict[str, Any], dataset: dict[str, Any]) -> ConstraintResult:
    expected = dataset.get("expected_images", dataset.get("num_images"))
    evaluated = result.get("num_images")
    status = result.get("status")
    note = f"status {status}: {result.get('error')}" if status != "ok" else ""
    passed = status == "ok" and isinstance(expected, int) and evaluated == expected
    if status == "ok" and not passed:
        note = f"{evaluated} of {expected} images evaluated (a partial result is never ranked)"
    return ConstraintResult("complete", evaluated, expected, "==", passed, "completeness", "images", note)


def _params(result: dict[str, Any], protocol: Protocol) -> ConstraintResult:
    limit = protocol.constraints.params_max
    assert limit is not None  # checked only when the protocol states it
    value = _number(result, "params", "result")
    return ConstraintResult("params", value, limit, "<=", value <= limit, "absolute", "parameters")


def _sequential(result: dict[str, Any], estimate: RatioEstimate, limit: float) -> RatioEstimate:
    """With rounds chosen by the data (``--rounds auto``), the interval of the last look instead.

    A plain t-interval after a data-dependent number of rounds is narrower than it should be; the
    sequential rule's interval (:mod:`harness.timing.sequential`) keeps its 95%.
    """
    looks = result.get("rounds_until_decided") or []
    if not looks or looks[-1]["interval"] is None:
        return estimate
    low, high = looks[-1]["interval"]
    verdict: Verdict = "pass" if high <= limit else "fail" if low > limit else "inconclusive"
    needed = estimate.rounds_to_decide if verdict == "inconclusive" else None
    return replace(estimate, interval=(low, high), verdict=verdict, rounds_to_decide=needed)


def _runtime_ratio(
    result: dict[str, Any], baseline: dict[str, Any] | None, protocol: Protocol
) -> ConstraintResult:
    statistic = protocol.timing.statistic
    limit = protocol.constraints.runtime_ratio_max
    mine = _runtime(result, statistic, "result")
    usable = _usable_baseline(baseline, protocol)
    reference = _runtime(usable, statistic, "baseline")
    if reference <= 0:
        raise _CheckError(f"baseline runtime {statistic} is {reference} ms, cannot divide by it")
    ratio = mine / reference
    note = f"{statistic} {mine:.2f} ms / {protocol.baseline} {reference:.2f} ms, same run and device"
    pairing = _pairing(result, usable)
    if pairing is None or statistic != "mean":
        return ConstraintResult("runtime", ratio, limit, "<=", ratio <= limit, "relative", "x baseline", note)
    estimate = _sequential(result, ratio_estimate(pairing["round_ratios"], limit=limit), limit)
    means = mine / pairing["baseline_mean_ms"]  # its own baseline, timed beside it on its device
    note = f"paired ratio over {estimate.rounds} round(s) of side-by-side timings"
    if estimate.interval is not None:
        low, high = estimate.interval
        note += f", {estimate.confidence:.0%} interval {low:.3f}-{high:.3f}"
    note += f"; ratio of means {mine:.2f} ms / {protocol.baseline} {pairing['baseline_mean_ms']:.2f} ms = {means:.3f}"
    if estimate.verdict == "inconclusive":
        decide = (
            f"; about {estimate.rounds_to_decide} rounds would decide it at this spread (--rounds)"
            if estimate.rounds_to_decide
            else ""
        )
        note += f"; inconclusive: the interval straddles {limit:g}{decide}"
    return ConstraintResult(
        "runtime",
        estimate.value,
        limit,
        "<=",
        estimate.verdict == "pass",
        "relative",
        "x baseline",
        note,
        verdict=estimate.verdict,
        interval=estimate.interval,
    )


def _pairing(result: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any] | None:
    """How a result was timed against the baseline, when a baseline was timed beside it: the
    baseline's mean on that device and the paired per-round ratios."""
    pairing = result.get("pairing")
    lane, baseline_lane = ((record.get("timed_on") or {}).get("lane") for record in (result, baseline))
    if not isinstance(pairing, dict) and lane != baseline_lane:
        raise _CheckError(
            f"no baseline was timed beside it on its device (lane {lane}); runtimes of two devices are never compared"
        )
    if not isinstance(pairing, dict) or result.get("timing_session") != baseline.get("timing_session"):
        return None
    ratios = pairing.get("round_ratios")
    mean = pairing.get("baseline_mean_ms")
    if not isinstance(ratios, list) or not ratios or not isinstance(mean, int | float) or mean <= 0:
        raise _CheckError(f"result's pairing with the baseline is incomplete: {pairing!r}")
    return pairing


def _psnr(
    result: dict[str, Any], baseline: dict[str, Any] | None, protocol: Protocol, dataset: dict[str, Any]
) -> ConstraintResult:
    key = f"psnr_{protocol.fidelity_channel}"
    threshold = protocol.constraints.psnr_limit_for(dataset)
    assert threshold is not None  # checked only when the protocol states a threshold
    value = _number(result, key, "result")
    reference = threshold.reference_data
    if reference.matches(dataset):
        limit = threshold.min_db
        return ConstraintResult("psnr", value, limit, ">=", value >= limit, "absolute", f"dB ({key})")
    base = _number(_usable_baseline(baseline, protocol), key, "baseline")
    limit = base - threshold.proxy_margin_db
    note = (
        f"proxy for {threshold.min_db:.2f} dB on {reference.dataset} {reference.split}: "
        f"{protocol.baseline} {base:.4f} dB on {dataset.get('name')} minus {threshold.proxy_margin_db} dB"
    )
    return ConstraintResult("psnr", value, limit, ">=", value >= limit, "proxy", f"dB ({key})", note)


def _guarded(name: str, kind: str, unit: str, check: Callable[[], ConstraintResult]) -> ConstraintResult:
    """Run one check; any exception becomes a failed record whose note says why."""
    try:
        return check()
    except _CheckError as error:
        return ConstraintResult(name, None, None, "", False, kind, unit, str(error))
    except Exception as error:  # noqa: BLE001 - a crashing check is a failure, never a skip
        return ConstraintResult(
            name, None, None, "", False, kind, unit, f"check raised {type(error).__name__}: {error}"
        )


def check_constraints(
    result: dict[str, Any], *, baseline: dict[str, Any] | None, protocol: Protocol, dataset: dict[str, Any]
) -> list[ConstraintResult]:
    """Judge one result record against ``protocol``; every check runs and each gives one record.

    ``baseline`` is the protocol baseline's record from the same run (same device and data), or
    None when the run has none: the checks that need it then fail with a note saying so.
    ``dataset`` is the run's dataset description (name, split, num_images, ...). Only the
    constraints the protocol states are checked.
    """
    limits = protocol.constraints
    checks = [_guarded("complete", "completeness", "images", lambda: _complete(result, dataset))]
    if limits.params_max is not None:
        checks.append(_guarded("params", "absolute", "parameters", lambda: _params(result, protocol)))
    if limits.runtime_ratio_max is not None:
        checks.append(
            _guarded("runtime", "relative", "x baseline", lambda: _runtime_ratio(result, baseline, protocol))
        )
    threshold = limits.psnr_limit_for(dataset)
    if threshold is not None:
        kind = "absolute" if threshold.reference_data.matches(dataset) else "proxy"
        checks.append(_guarded("psnr", kind, "dB", lambda: _psnr(result, baseline, protocol, dataset)))
    return checks


def is_valid(constraints: Sequence[ConstraintResult]) -> bool:
    """A result is valid only when there are verdicts and every one passed."""
    return bool(constraints) and all(item.passed for item in constraints)


def validity(constraints: Sequence[ConstraintResult]) -> bool | None:
    """A record's ``valid``: True when every verdict passed, False when one failed, else None.

    None means no constraint failed but at least one (a runtime ratio) is inconclusive: the result is
    neither valid nor invalid yet, and more timing rounds would decide it.
    """
    if not constraints or any(item.verdict == "fail" for item in constraints):
        return False
    return True if is_valid(constraints) else None


def baseline_name(run_baseline: str | None, protocol: Protocol) -> str:
    """The baseline a run is judged against: the one it names, else the protocol's."""
    return run_baseline or protocol.baseline


def find_baseline(run: dict[str, Any], protocol: Protocol) -> dict[str, Any] | None:
    """The baseline's record in a run document (by the run's ``baseline`` name, else the protocol's)."""
    name = baseline_name(run.get("baseline"), protocol)
    matches = [record for record in run.get("results", []) if record.get("submission") == name]
    return matches[0] if matches else None


def apply_constraints(run: dict[str, Any], protocol: Protocol) -> dict[str, Any]:
    """A copy of run document ``run`` with ``constraints`` and ``valid`` filled in for every record."""
    baseline = find_baseline(run, protocol)
    dataset = run.get("dataset") or {}
    results = []
    for record in run.get("results", []):
        verdicts = check_constraints(record, baseline=baseline, protocol=protocol, dataset=dataset)
        # A failed integrity check makes the record invalid whatever its constraints say.
        valid = False if integrity_failure(record) else validity(verdicts)
        checked = judged_record(record, [item.as_dict() for item in verdicts], valid)
        if record.get("cells"):
            checked = with_cells(checked, _cells_checked(record["cells"], baseline, protocol, dataset))
        results.append(checked)
    return {**run, "results": results}


def _cells_checked(
    cells: dict[str, dict[str, Any]],
    baseline: dict[str, Any] | None,
    protocol: Protocol,
    dataset: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Each cell with ``passes_threshold``: the protocol's PSNR threshold checked on the cell's PSNR
    (against the same limit as the fp32 figure; None where the cell has no PSNR or there is none)."""
    if protocol.constraints.psnr_limit_for(dataset) is None:
        return cells
    checked = {}
    for name, cell in cells.items():
        passes = None
        if cell.get(f"psnr_{protocol.fidelity_channel}") is not None:
            try:
                passes = _psnr(cell, baseline, protocol, dataset).passed
            except _CheckError:
                passes = None  # no usable baseline for a proxy limit: said so by the fp32 check
        checked[name] = {**cell, "passes_threshold": passes}
    return checked
