"""Plain-text summaries of a run document, as `esr evaluate` and `esr check` print them."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate


def device_name(fingerprint: dict[str, Any], fallback: str) -> str:
    """What to call a run's device in titles: the GPU's name, else the CPU model, else ``fallback``."""
    return str(fingerprint.get("gpu_name") or fingerprint.get("cpu_model") or fallback)


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _runtime_ratio(record: dict[str, Any]) -> float | None:
    """The runtime constraint's value: this record's runtime over the baseline's in the same run."""
    return next((c["value"] for c in record.get("constraints", []) if c["name"] == "runtime"), None)


def run_summary(run: dict[str, Any]) -> str:
    """One row per submission: fidelity, runtime (and ratio to the baseline of the same run), size."""
    rows = []
    for record in run.get("results", []):
        runtime = (record.get("runtime_ms") or {}).get("mean")
        valid = record.get("valid")
        rows.append(
            [
                record["submission"] + (" (baseline)" if record.get("role") == "baseline" else ""),
                record["status"]
                if record["status"] != "ok"
                else ("cached" if record.get("cached") else "ok"),
                _fmt(record.get("psnr_rgb"), 4),
                _fmt(record.get("psnr_y"), 4),
                _fmt(record.get("ssim_y"), 5),
                _fmt(runtime, 2),
                _fmt(_runtime_ratio(record), 3),
                _fmt(record.get("max_memory_mb"), 1),
                _fmt(None if record.get("params") is None else record["params"] / 1e6, 4),
                _fmt(None if record.get("flops") is None else record["flops"] / 1e9, 2),
                "-" if valid is None else ("yes" if valid else "no"),
            ]
        )
    headers = [
        "submission",
        "status",
        "PSNR RGB",
        "PSNR Y",
        "SSIM Y",
        "time ms",
        "x baseline",
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
    lines = [title, tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)]
    failures = [r for r in run.get("results", []) if r["status"] != "ok"]
    lines += [f"FAILED {r['submission']}: {r['error']}" for r in failures]
    if run.get("retimed"):
        lines.append(
            f"Timed again: {', '.join(run['retimed'])} (cached by an earlier command; "
            "the runtimes of one run are always measured together)."
        )
    if run["timing"]["device"] == "cpu":
        lines.append("Runtimes were measured on the CPU (no GPU): compare them only with other CPU runs.")
    return "\n".join(lines)


def constraint_report(record: dict[str, Any]) -> str:
    """Each constraint of one record with value, limit and verdict."""
    rows = [
        [
            item["name"],
            item["kind"],
            _number(item["value"]),
            f"{item['operator']} {_number(item['limit'])}",
            item["unit"],
            (item.get("verdict") or ("pass" if item["passed"] else "fail")).upper(),
            item.get("note") or "",
        ]
        for item in record.get("constraints", [])
    ]
    headers = ["constraint", "kind", "value", "limit", "unit", "verdict", "note"]
    valid = record.get("valid")
    verdict = (
        "VALID"
        if valid
        else ("INCONCLUSIVE" if valid is None and record.get("status") == "ok" else "NOT VALID")
    )
    table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    return f"{record['submission']}: {verdict}\n{table}"
