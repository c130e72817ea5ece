"""Measured entries: result records of comparable runs, judged by the protocol's constraints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.constraints import ConstraintResult, baseline_name, check_constraints, find_baseline
from harness.errors import HarnessError
from harness.integrity import integrity_failure
from harness.leaderboard.runs import RunFile, dataset_label, same_dataset
from harness.leaderboard.table import PlotPanel
from harness.protocols import Protocol
from harness.verdicts import Verdict, interval, overall, record_validity, runtime_constraint

__all__ = ["MeasuredEntry", "describe_measured", "measured_entries", "reference_panel", "measurement_note"]


@dataclass(frozen=True)
class MeasuredEntry:
    """One record with its run and its constraint verdicts (computed here, from the protocol)."""

    run: RunFile
    record: dict[str, Any]
    constraints: tuple[ConstraintResult, ...]
    is_baseline: bool = False

    @property
    def name(self) -> str:
        return str(self.record["submission"])

    def verdict(self, name: str) -> ConstraintResult | None:
        """The verdict of constraint ``name``; None when the protocol does not state that constraint."""
        return next((item for item in self.constraints if item.name == name), None)

    @property
    def validity(self) -> Verdict | None:
        """pass, fail or inconclusive; inconclusive also when the run recorded it so.

        The verdicts are recomputed under the protocol; a result its run could not decide is
        never shown as valid, whichever harness version recomputes it; a failed integrity check
        makes it invalid whatever its constraints say.
        """
        if integrity_failure(self.record):
            return "fail"
        recomputed = overall(item.as_dict() for item in self.constraints)
        if recomputed == "pass" and record_validity(self.record) == "inconclusive":
            return "inconclusive"
        return recomputed

    @property
    def valid_cell(self) -> bool | str | None:
        """The Valid column's raw value: True, False, or "inconclusive"."""
        validity = self.validity
        if validity == "inconclusive":
            return validity
        return None if validity is None else validity == "pass"

    @property
    def runtime_ms(self) -> float | None:
        runtime = self.record.get("runtime_ms")
        value = runtime.get("mean") if isinstance(runtime, dict) else None
        return float(value) if isinstance(value, int | float) else None

    @property
    def runtime_ratio(self) -> float | None:
        """Runtime over the baseline's in the same run (None when there is no usable baseline, or the
        protocol has no runtime constraint)."""
        verdict = self.verdict("runtime")
        return None if verdict is None else verdict.value

    @property
    def runtime_interval(self) -> tuple[float, float] | None:
        """The 95% interval of the runtime ratio: the verdict's, else as the run recorded it (None if neither)."""
        recorded = runtime_constraint(self.record.get("constraints") or [])
        return interval(self.verdict("runtime").as_dict()) or interval(recorded)

    def number(self, key: str, scale: float = 1.0) -> float | None:
        value = self.record.get(key)
        return (
            float(value) / scale if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    def problem(self, required: Sequence[str]) -> str:
        """Why this entry is not ranked, given the constraints it must pass; '' when it is ranked.

        The baseline is the reference the others are judged against: listed, never ranked (as in
        the official table).
        """
        if self.is_baseline:
            return "baseline: the constraint reference, not ranked"
        if self.record.get("status") != "ok":
            return f"failed: {self.record.get('error') or 'no reason recorded'}"
        integrity = integrity_failure(self.record)
        if integrity:
            return f"not ranked: {integrity}"
        reasons = []
        for item in self.constraints:
            if item.name in required and not item.passed:
                found = (
                    "" if item.value is None else f" {item.value:.4g}, limit {item.operator} {item.limit:.4g}"
                )
                reasons.append(f"{item.name}{found}" + (f" ({item.note})" if item.note else ""))
        return "not ranked: " + "; ".join(reasons) if reasons else ""


def measured_entries(runs: Sequence[RunFile], protocol: Protocol) -> list[MeasuredEntry]:
    """Entries of runs on one dataset; a submission may appear in one run only (the baseline excepted).

    Each record is judged against the baseline of its own run, so every runtime ratio compares two
    measurements taken in the same run on the same device.
    """
    if not runs:
        return []
    first = runs[0]
    for run in runs[1:]:
        if not same_dataset(first.dataset, run.dataset):
            raise HarnessError(
                f"{run.path}: dataset {dataset_label(run.dataset)} differs from "
                f"{dataset_label(first.dataset)} in {first.path}; one leaderboard ranks one dataset "
                "(use --style table2 for a val and a test run)"
            )
    entries: list[MeasuredEntry] = []
    seen: dict[str, RunFile] = {}
    for run in runs:
        document = run.document
        baseline = find_baseline(document, protocol)
        for record in run.results:
            name = record["submission"]
            if name in seen:
                if name == baseline_name(run.baseline, protocol):
                    continue
                raise HarnessError(
                    f"{run.path}: submission {name!r} is also in {seen[name].path}; give one of them"
                )
            seen[name] = run
            verdicts = check_constraints(record, baseline=baseline, protocol=protocol, dataset=run.dataset)
            is_baseline = baseline is not None and record is baseline
            entries.append(MeasuredEntry(run, record, tuple(verdicts), is_baseline))
    return entries


def measurement_note(run: RunFile, protocol: Protocol) -> str:
    """What a run measured, where, and what its runtime ratios divide by (and on what clock, when
    it was not the protocol's: ``--clock cpu`` times are CPU time, not official)."""
    cpu_time = (run.metadata.get("timing") or {}).get("clock") == "cpu"
    time = (
        "mean CPU time per image (--clock cpu: not the protocol's clock, not official)"
        if cpu_time
        else "mean per image"
    )
    return (
        f"{dataset_label(run.dataset)} on {run.device_name} (device {run.fingerprint_id}), "
        f"protocol {protocol.name} v{protocol.version}; time = {time}, ratio to "
        f"{baseline_name(run.baseline, protocol)} in the same run"
    )


def _lane_notes(run: RunFile, protocol: Protocol) -> list[str]:
    """For a run timed on several lanes: who was timed where, and what compares with what."""
    lanes = run.metadata.get("lanes") or []
    if len(lanes) < 2:
        return []
    groups = []
    for lane in lanes:
        names = [
            r["submission"] for r in run.results if (r.get("timed_on") or {}).get("lane") == lane["lane"]
        ]
        groups.append(f"{lane['label']}: {', '.join(names) or '-'}")
    return [
        f"{run.path} was timed on {len(lanes)} lanes, each beside its own {baseline_name(run.baseline, protocol)}: "
        f"{'; '.join(groups)}. Ratios compare each submission with the baseline of its lane; "
        "absolute times compare only within a lane."
    ]


def describe_measured(
    runs: Sequence[RunFile], entries: Sequence[MeasuredEntry], protocol: Protocol
) -> tuple[list[str], PlotPanel | None]:
    """Note lines saying what was measured where, and the plot panel of the measured PSNR scale."""
    if not runs:
        return [], None
    run = runs[0]
    notes = [f"measured: {measurement_note(run, protocol)}"]
    for each in runs:
        notes += _lane_notes(each, protocol)
    verdicts = [entry.verdict("psnr") for entry in entries]
    limits = [verdict for verdict in verdicts if verdict is not None and verdict.limit is not None]
    if not limits:
        return notes, None
    verdict = limits[0]
    assert verdict.limit is not None
    if verdict.kind == "proxy":
        notes.append(f"PSNR condition on {run.dataset.get('name')}: {verdict.note}")
        label = f"{verdict.limit:.2f} dB (proxy)"
    else:
        label = f"{verdict.limit:.2f} dB"
    panel = PlotPanel(
        f"measured: {dataset_label(run.dataset)}",
        ("measured",),
        verdict.limit,
        label,
        verdict.kind == "proxy",
    )
    return notes, panel


def reference_panel(protocol: Protocol) -> PlotPanel:
    """The plot panel of published results: PSNR on the protocol's reference data, absolute limit."""
    reference = protocol.constraints.psnr_reference_data
    limit = protocol.constraints.psnr_min_db
    if reference is None or limit is None:
        raise HarnessError(
            f"protocol {protocol.name} states no PSNR threshold to plot published results against"
        )
    return PlotPanel(
        f"published: {reference.dataset} {reference.split}", ("published",), limit, f"{limit:.2f} dB"
    )
