"""The seed poster's Table 2: entries meeting the constraints, ranked by validation PSNR.

A Target row states the constraints; then the entries that meet them, best validation PSNR first;
entries without a test result carry a dagger and come after those with one (as in the seed). The
measured input is one or two groups of runs: validation (any split but ``test``) and, optionally,
test, merged by submission. Validity is judged on the validation run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from harness.errors import HarnessError
from harness.leaderboard.measured import (
    MeasuredEntry,
    describe_measured,
    measured_entries,
    measurement_note,
    reference_panel,
)
from harness.leaderboard.published import OfficialTable
from harness.leaderboard.runs import RunFile
from harness.leaderboard.table import Column, Leaderboard, combine_panels, frame_of, interval_cells
from harness.protocols import Protocol

__all__ = ["COLUMNS", "DAGGER", "build_table2"]

DAGGER = "\N{DAGGER}"

COLUMNS: tuple[Column, ...] = (
    Column("source", "Source"),
    Column("team", "Team"),
    Column("val_psnr", "Val PSNR [dB]", 2),
    Column("test_psnr", "Test PSNR [dB]", 2),
    Column("avg_psnr", "Avg. PSNR [dB]", 2),
    Column("val_time_ms", "Val Time [ms]", 2),
    Column("val_ratio", "Val Time / IMDN", 3, interval=True),
    Column("test_time_ms", "Test Time [ms]", 2),
    Column("test_ratio", "Test Time / IMDN", 3, interval=True),
    Column("params_m", "#Params [M]", 3),
    Column("valid", "Valid"),
    Column("note", "Note", footnote=True),
)


def _order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries with a test result first, each group by validation PSNR, best first (stable)."""
    return sorted(rows, key=lambda row: (row["test_psnr"] is None, -(row["val_psnr"] or float("-inf"))))


def _label(name: str, has_test: bool) -> str:
    return name if has_test else f"{name} {DAGGER}"


def _measured_rows(val: list[MeasuredEntry], test: dict[str, MeasuredEntry]) -> list[dict[str, Any]]:
    ranked, others = [], []
    for entry in val:
        tested = test.get(entry.name)
        test_problem = tested.problem(("complete",)) if tested is not None else ""
        test_note = f"test run {test_problem}" if test_problem else ""
        if test_problem:
            tested = None  # a failed or partial test run counts as no test result
        val_psnr = entry.number("psnr_rgb")
        test_psnr = None if tested is None else tested.number("psnr_rgb")
        average = None if val_psnr is None or test_psnr is None else (val_psnr + test_psnr) / 2
        row = {
            "source": "measured",
            "team": _label(entry.name, test_psnr is not None),
            "val_psnr": val_psnr,
            "test_psnr": test_psnr,
            "avg_psnr": average,
            "val_time_ms": entry.runtime_ms,
            "val_ratio": entry.runtime_ratio,
            "test_time_ms": None if tested is None else tested.runtime_ms,
            "test_ratio": None if tested is None else tested.runtime_ratio,
            "params_m": entry.number("params", 1e6),
            "valid": entry.valid_cell,
            **interval_cells("val_ratio", entry.runtime_interval),
            **interval_cells("test_ratio", None if tested is None else tested.runtime_interval),
        }
        problem = entry.problem(("complete", "params", "runtime", "psnr"))
        if problem:
            others.append({**row, "ranked": False, "note": "; ".join(filter(None, (problem, test_note)))})
        else:
            ranked.append({**row, "ranked": True, "note": test_note})
    return _order(ranked) + others


def _published_rows(
    seed: pd.DataFrame, official: OfficialTable | None, protocol: Protocol
) -> list[dict[str, Any]]:
    baseline = protocol.published_baseline
    params = (
        {} if official is None else dict(zip(official.rows["team"], official.rows["params_m"], strict=True))
    )
    rows = []
    for _, series in seed.iterrows():
        test_time = None if pd.isna(series["test_time_ms"]) else float(series["test_time_ms"])
        team_params = (
            params.get(series["official_team_name"])
            if isinstance(series["official_team_name"], str)
            else None
        )
        rows.append(
            {
                "source": "published",
                "ranked": True,
                "team": _label(series["team"], test_time is not None),
                "val_psnr": float(series["val_psnr_db"]),
                "test_psnr": float(series["test_psnr_db"]),
                "avg_psnr": float(series["avg_psnr_db"]),
                "val_time_ms": float(series["val_time_ms"]),
                "val_ratio": float(series["val_time_ms"]) / baseline.val_time_ms,
                "test_time_ms": test_time,
                "test_ratio": None if test_time is None else test_time / baseline.test_time_ms,
                "params_m": None if team_params is None else float(team_params),
                "note": series["note"],
            }
        )
    # The seed lists dagger rows (no test time) last; order on the test *time* for published rows.
    return sorted(rows, key=lambda row: (row["test_time_ms"] is None, -row["val_psnr"]))


def _target(protocol: Protocol, val_runs: Sequence[RunFile]) -> dict[str, str]:
    limits = protocol.constraints
    official = not val_runs or limits.psnr_reference_data.matches(val_runs[0].dataset)
    psnr = (
        f">= {limits.psnr_min_db:.2f}"
        if official
        else f">= {protocol.baseline} - {limits.psnr_proxy_margin_db} (proxy)"
    )
    return {
        "source": "",
        "team": "Target",
        "val_psnr": psnr,
        "val_time_ms": f"<= {protocol.baseline}",
        "val_ratio": f"<= {limits.runtime_ratio_max:.2f}",
        "params_m": f"<= {limits.params_max / 1e6:.3f}",
    }


def build_table2(
    runs: Sequence[RunFile],
    protocol: Protocol,
    *,
    seed: pd.DataFrame | None,
    official: OfficialTable | None,
) -> Leaderboard:
    """Table 2 of comparable ``runs`` (val and optionally test), with the seed's rows when given."""
    val_runs = [run for run in runs if run.dataset.get("split") != "test"]
    test_runs = [run for run in runs if run.dataset.get("split") == "test"]
    if test_runs and not val_runs:
        raise HarnessError(f"{test_runs[0].path}: a test run needs a validation run beside it for Table 2")
    val = measured_entries(val_runs, protocol)
    test = {entry.name: entry for entry in measured_entries(test_runs, protocol)}
    rows = _measured_rows(val, test)
    notes, measured_panel = describe_measured(val_runs, val, protocol)
    if test_runs:
        notes.append(f"test times and PSNR: {measurement_note(test_runs[0], protocol)}")
    published_panel = None
    if seed is not None:
        rows += _published_rows(seed, official, protocol)
        baseline = protocol.published_baseline
        over = [row["team"] for row in rows if row["source"] == "published" and row["val_ratio"] > 1.0]
        notes.append(
            f"published: the seed's Table 2 as printed; ratios to {baseline.team} {baseline.val_time_ms} ms (val) "
            f"and {baseline.test_time_ms} ms (test); {DAGGER}: no test result"
        )
        if over:
            notes.append(
                f"published rows over the seed's own Val Time limit ({baseline.val_time_ms} ms): {', '.join(over)}"
            )
        published_panel = reference_panel(protocol)
    return Leaderboard(
        title=f"Table 2: ranked by validation PSNR under the constraints ({protocol.name} v{protocol.version})",
        columns=COLUMNS,
        rows=frame_of(rows, COLUMNS),
        notes=tuple(notes),
        target=_target(protocol, val_runs),
        panels=combine_panels(measured_panel, published_panel),
        plot_keys=("val_psnr", "val_ratio"),
    )
