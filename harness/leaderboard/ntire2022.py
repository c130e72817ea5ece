"""The official NTIRE 2022 track format: main track by runtime, two sub-tracks by sums of ranks.

Measured entries are ranked among themselves (one device, one dataset, one protocol version);
published entries keep the ranks recomputed from the official table. Only entries meeting the PSNR
condition (and, for measured ones, complete and not failed) are ranked; the rest are listed below.
Both sources show runtime as a ratio to their own IMDN baseline so that they can be read together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from harness.leaderboard.measured import MeasuredEntry, describe_measured, measured_entries, reference_panel
from harness.leaderboard.published import METRIC_COLUMNS, OfficialTable
from harness.leaderboard.ranking import METRICS, TrackRanks, rank_tracks
from harness.leaderboard.runs import RunFile
from harness.leaderboard.table import Column, Leaderboard, combine_panels, frame_of, interval_cells
from harness.protocols import Protocol

__all__ = ["COLUMNS", "build_ntire2022"]

COLUMNS: tuple[Column, ...] = (
    Column("source", "Source"),
    Column("team", "Team"),
    Column("main_rank", "Main Track", 0),
    Column("sub_track1_score", "Sub-Track 1", 0, "sub_track1_rank"),
    Column("sub_track2_score", "Sub-Track 2", 0, "sub_track2_rank"),
    Column("psnr", "PSNR [dB]", 2),
    Column("psnr_y", "PSNR Y [dB]", 2),
    Column("psnr_test", "PSNR Test [dB]", 2),
    Column("time_ms", "Time [ms]", 2, "time_rank"),
    Column("time_ratio", "Time / IMDN", 3, interval=True),
    Column("params_m", "#Params [M]", 3, "params_rank"),
    Column("flops_g", "FLOPs [G]", 2, "flops_rank"),
    Column("acts_m", "#Acts [M]", 2, "acts_rank"),
    Column("mem_mb", "GPU Mem. [MB]", 2, "mem_rank"),
    Column("num_conv", "#Conv", 0),
    Column("valid", "Valid"),
    Column("note", "Note", footnote=True),
)

# Where each ranked metric sits in a row, and the record key and unit divisor it comes from.
_METRIC_KEYS = {
    "time": "time_ms",
    "params": "params_m",
    "flops": "flops_g",
    "acts": "acts_m",
    "mem": "mem_mb",
}
_RECORD_UNITS = {"params_m": ("params", 1e6), "flops_g": ("flops", 1e9), "acts_m": ("activations", 1e6)}


def _measured_row(entry: MeasuredEntry) -> dict[str, Any]:
    row: dict[str, Any] = {
        "source": "measured",
        "team": entry.name,
        "psnr": entry.number("psnr_rgb"),
        "psnr_y": entry.number("psnr_y"),
        "time_ms": entry.runtime_ms,
        "time_ratio": entry.runtime_ratio,
        "mem_mb": entry.number("max_memory_mb"),
        "num_conv": entry.number("num_conv"),
        "valid": entry.valid_cell,
        **interval_cells("time_ratio", entry.runtime_interval),
    }
    for key, (record_key, divisor) in _RECORD_UNITS.items():
        row[key] = entry.number(record_key, divisor)
    return row


def _apply_tracks(rows: list[dict[str, Any]], tracks: TrackRanks) -> None:
    """Write ranks, track scores and track ranks into ``rows`` (in the order they were ranked)."""
    for index, row in enumerate(rows):
        row.update(
            ranked=True,
            main_rank=tracks.main_rank[index],
            sub_track1_score=tracks.sub_track1_score[index],
            sub_track1_rank=tracks.sub_track1_rank[index],
            sub_track2_score=tracks.sub_track2_score[index],
            sub_track2_rank=tracks.sub_track2_rank[index],
            **{f"{key}_rank": tracks.metric_ranks[key][index] for key in METRICS},
        )


def _measured_rows(entries: list[MeasuredEntry]) -> list[dict[str, Any]]:
    problems = [entry.problem(("complete", "psnr")) for entry in entries]
    eligible = [entry for entry, problem in zip(entries, problems, strict=True) if not problem]
    ranked = [_measured_row(entry) for entry in eligible]
    metrics = {key: [row[_METRIC_KEYS[key]] for row in ranked] for key in METRICS}
    _apply_tracks(ranked, rank_tracks([entry.name for entry in eligible], metrics))
    ranked.sort(key=lambda row: (row["main_rank"], row["team"]))
    others = [
        {**_measured_row(entry), "ranked": False, "note": problem}
        for entry, problem in zip(entries, problems, strict=True)
        if problem
    ]
    return ranked + others


def _published_rows(official: OfficialTable, baseline_ms: float) -> list[dict[str, Any]]:
    def row(series: pd.Series) -> dict[str, Any]:
        return {
            "source": "published",
            "team": series["team"],
            "psnr": float(series["val_psnr_db"]),
            "psnr_test": float(series["test_psnr_db"]),
            "time_ms": float(series["ave_time_ms"]),
            "time_ratio": float(series["ave_time_ms"]) / baseline_ms,
            **{_METRIC_KEYS[key]: float(series[column]) for key, column in METRIC_COLUMNS.items()},
            "num_conv": float(series["num_conv"]),
            "note": series["note"],
        }

    ranked = [row(series) for _, series in official.ranked.iterrows()]
    _apply_tracks(ranked, official.tracks)
    ranked.sort(key=lambda item: item["main_rank"])
    others = []
    for _, series in official.rows[official.rows["status"] != "ranked"].iterrows():
        reason = "baseline" if series["status"] == "baseline" else "not ranked by the organisers (PSNR)"
        note = f"{reason}; {series['note']}" if series["note"] else reason
        others.append({**row(series), "ranked": False, "note": note})
    return ranked + others


def build_ntire2022(
    runs: Sequence[RunFile], protocol: Protocol, official: OfficialTable | None
) -> Leaderboard:
    """The track leaderboard of comparable ``runs``, with the official table appended when given."""
    entries = measured_entries(runs, protocol)
    rows = _measured_rows(entries)
    notes, measured_panel = describe_measured(runs, entries, protocol)
    if any(row["ranked"] and row["mem_mb"] is None for row in rows):
        notes.append("Sub-Track 2 needs GPU memory: not scored for entries without it (a CPU run has none)")
    published_panel = None
    if official is not None:
        baseline = protocol.published_baseline
        rows += _published_rows(official, baseline.ave_time_ms)
        notes.append(
            "published: official NTIRE 2022 table (organisers' GPU; PSNR on DIV2K val; time = mean of val "
            f"and test); ratio = time / {baseline.ave_time_ms} ms ({baseline.team})"
        )
        notes.append(official.reproduction.summary())
        ties = "; ".join(tie.describe() for tie in official.reproduction.printed_ties)
        notes.append(f"ties at the printed precision: {ties}")
        published_panel = reference_panel(protocol)
        if entries:
            notes.append("ranks are within each source: measured entries are ranked among themselves")
    return Leaderboard(
        title=f"NTIRE 2022 Efficient SR tracks ({protocol.name} v{protocol.version})",
        columns=COLUMNS,
        rows=frame_of(rows, COLUMNS),
        notes=tuple(notes),
        panels=combine_panels(measured_panel, published_panel),
    )
