"""Plain-text summaries of a run document, as `esr evaluate` and `esr check` print them.

Tables stay within about 120 columns: columns empty in every row are left out (GPU memory on a CPU
run, intervals of an old run), and long texts (a failed submission's reason, a constraint's
explanation) are printed once under the table, as numbered footnotes, instead of widening a column.
"""

from __future__ import annotations

from typing import Any

from harness.footnotes import Footnotes
from harness.integrity import integrity_failure
from harness.texttable import format_table
from harness.timing import device_name
from harness.verdicts import (
    VALIDITY_LABELS,
    format_interval,
    interval,
    record_validity,
    runtime_constraint,
    verdict,
)

MISSING = "-"
_HEADINGS = {"pass": "VALID", "fail": "NOT VALID", "inconclusive": "INCONCLUSIVE"}


def _fmt(value: float | None, digits: int) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def _number(value: float | None) -> str:
    return MISSING if value is None else f"{value:.6g}"


def _ratio(record: dict[str, Any]) -> str:
    """The runtime ratio to the baseline of the same run, with its 95% interval when the run has one."""
    item = runtime_constraint(record.get("constraints") or [])
    if item is None or item.get("value") is None:
        return MISSING
    bounds = format_interval(interval(item))
    return f"{item['value']:.3f}" + (f" {bounds}" if bounds else "")


def _validity(record: dict[str, Any]) -> str:
    """The "valid" column: yes, no, inconclusive, or failed (the reason is printed under the table)."""
    if record["status"] != "ok":
        return record["status"]
    validity = record_validity(record)
    return MISSING if validity is None else VALIDITY_LABELS[validity]


def _table(headers: list[str], rows: list[list[str]], *, numeric: range, keep: int = 1) -> str:
    """A plain table; columns after the first ``keep`` that are empty in every row are left out."""
    shown = [
        index
        for index in range(len(headers))
        if index < keep or any(row[index] not in (MISSING, "") for row in rows)
    ]
    return format_table(
        [headers[index] for index in shown],
        [[row[index] for index in shown] for row in rows],
        numeric={position for position, index in enumerate(shown) if index in numeric},
    )


def clock_note(run: dict[str, Any]) -> str | None:
    """A line saying the runtimes are CPU time (``--clock cpu``), not the protocol's; None on wall time."""
    if (run.get("timing") or {}).get("clock") != "cpu":
        return None
    return (
        "Runtimes are CPU time (--clock cpu): steadier on a loaded machine, but not the protocol's "
        "wall clock, so not official and not comparable with wall-time results."
    )


def results_table(run: dict[str, Any]) -> str:
    """One row per submission: fidelity, runtime (and ratio to the baseline of the same run), size."""
    rows = []
    for record in run.get("results", []):
        runtime = (record.get("runtime_ms") or {}).get("mean")
        rows.append(
            [
                record["submission"],
                _fmt(record.get("psnr_rgb"), 4),
                _fmt(record.get("psnr_y"), 4),
                _fmt(record.get("ssim_y"), 5),
                _fmt(runtime, 2),
                _ratio(record),
                _fmt(record.get("max_memory_mb"), 1),
                _fmt(None if record.get("params") is None else record["params"] / 1e6, 4),
                _fmt(None if record.get("flops") is None else record["flops"] / 1e9, 2),
                _validity(record),
            ]
        )
    headers = [
        "submission",
        "PSNR RGB",
        "PSNR Y",
        "SSIM Y",
        "time ms",
        "x baseline [95% CI]" if any("[" in row[5] for row in rows) else "x baseline",
        "mem MB",
        "params M",
        "FLOPs G",
        "valid",
    ]
    dataset = run["dataset"]
    device = run["device"]
    where = device_name(device, fallback=device.get("device_type"))
    title = (
        f"{dataset['name']}"
        + (f" {dataset['split']}" if dataset.get("split") else "")
        + f", {dataset['num_images']} images, x{dataset['scale']}, on {run['timing']['device']} ({where}),"
        + f" protocol {run['protocol']} v{run['protocol_version']}"
    )
    lines = [title, _table(headers, rows, numeric=range(1, 9))]
    lanes = run.get("lanes") or []
    if run.get("baseline") and len(lanes) > 1:
        lines.append(
            f"x baseline: paired runtime ratio to the {run['baseline']} timed beside it on its own lane; "
            "absolute times compare only within a lane:"
        )
        for lane in lanes:
            names = [
                r["submission"]
                for r in run.get("results", [])
                if (r.get("timed_on") or {}).get("lane") == lane["lane"]
            ]
            lines.append(f"  {lane['label']}: {', '.join(names) or '-'}")
    elif run.get("baseline") and any(r.get("pairing") for r in run.get("results", [])):
        lines.append(
            f"x baseline: paired runtime ratio to {run['baseline']}, timed side by side in this run on this device."
        )
    elif run.get("baseline"):  # a run document from before paired timing
        lines.append(f"x baseline: runtime / {run['baseline']}'s, measured in this run on this device.")
    results = run.get("results", [])
    rounds = rounds_line(run)
    if rounds:
        lines.append(rounds)
    note = clock_note(run)
    if note:
        lines.append(note)
    lines += [f"FAILED {r['submission']}: {r['error']}" for r in results if r["status"] != "ok"]
    lines += [
        f"INVALID {r['submission']}: {reason}"
        for r in results
        if (reason := integrity_failure(r)) is not None
    ]
    cached = [r["submission"] for r in results if r["status"] == "ok" and r.get("cached")]
    if cached:
        lines.append(f"Reused from the cache (timed together by an earlier command): {', '.join(cached)}.")
    if run.get("retimed"):
        lines.append(
            f"Timed again: {', '.join(run['retimed'])} (cached by an earlier command; "
            "the runtimes of one run are always measured together)."
        )
    if run["timing"]["device"] == "cpu":
        lines.append("Runtimes were measured on the CPU (no GPU): compare them only with other CPU runs.")
    cells = cells_summary(run)
    return "\n".join(lines + ([cells] if cells else []))


def _drop(value: float | None) -> str:
    """A PSNR drop to 4 decimals; float noise around zero (-1e-15) prints as 0.0000, not -0.0000."""
    return _fmt(None if value is None else (0.0 if abs(value) < 5e-5 else value), 4)


_STOPPED = {
    "decided": "decided after {n} rounds",
    "resolution": "within the resolution after {n} rounds",
    "cap": "not decided within the cap ({n} rounds)",
}


def rounds_line(run: dict[str, Any]) -> str | None:
    """How many timing rounds each submission took under ``--rounds auto``, and why it stopped
    (None for a run with a fixed number of rounds, or one from before rounds until decided)."""
    stopped = [
        f"{record['submission']} {_STOPPED[record['stop_reason']].format(n=record.get('rounds_used'))}"
        for record in run.get("results", [])
        if record.get("status") == "ok" and record.get("stop_reason") in _STOPPED
    ]
    return "Rounds until decided: " + "; ".join(stopped) + "." if stopped else None


def cells_summary(run: dict[str, Any]) -> str | None:
    """The deployment cells beside fp32 eager (None when the run measured fp32 alone): per
    submission and cell, PSNR and its drop, the runtime ratio to the baseline in the same cell,
    whether the PSNR threshold still holds; a cell that could not run gives its reason below."""
    results = [record for record in run.get("results", []) if record.get("cells")]
    if not results:
        return None
    notes = Footnotes()
    rows = []
    for record in results:
        for cell, entry in record["cells"].items():
            ratio = _fmt(entry.get("runtime_ratio"), 3)
            bounds = entry.get("runtime_interval")
            if bounds:
                ratio += " " + format_interval((bounds[0], bounds[1]))
            passes = entry.get("passes_threshold")
            rows.append(
                [
                    record["submission"],
                    cell,
                    _fmt(entry.get("psnr_rgb"), 4),
                    _drop((entry.get("drop") or {}).get("psnr_rgb")),
                    _drop((entry.get("drop") or {}).get("psnr_y")),
                    _fmt(entry.get("runtime_ms"), 2),
                    ratio,
                    MISSING if passes is None else ("yes" if passes else "no"),
                    notes.mark(entry["reason"]) if entry.get("reason") else "",
                ]
            )
    headers = [
        "submission",
        "cell",
        "PSNR RGB",
        "drop RGB dB",
        "drop Y dB",
        "time ms",
        "x baseline in cell [95% CI]",
        "PSNR ok",
        "not run",
    ]
    lines = [
        "Deployment cells (not ranked; drop = fp32 eager's PSNR minus the cell's, same images):",
        _table(headers, rows, numeric=range(2, 7), keep=2),
    ]
    lines += notes.lines()
    return "\n".join(lines)


def constraint_table(record: dict[str, Any]) -> str:
    """Each constraint of one record with value, limit, three-valued verdict and, for the runtime, its interval."""
    footnotes = Footnotes()
    rows = [
        [
            item["name"],
            item["kind"],
            _number(item["value"]),
            format_interval(interval(item)) or MISSING,
            f"{item['operator']} {_number(item['limit'])}",
            item["unit"],
            verdict(item).upper(),
            footnotes.mark(item.get("note") or ""),
        ]
        for item in record.get("constraints", [])
    ]
    headers = ["constraint", "kind", "value", "95% CI", "limit", "unit", "verdict", "note"]
    validity = record_validity(record)
    heading = _HEADINGS.get(validity or "", "NO VERDICT")
    if validity == "inconclusive":
        heading += " (no constraint failed, but one is not decided yet: measure again or with more rounds)"
    lines = [
        f"{record['submission']}: {heading}",
        _table(headers, rows, numeric=range(2, 5), keep=3),
        *footnotes.lines(),
    ]
    return "\n".join(lines)
