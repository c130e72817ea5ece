"""The published tables in ``results/published/``: the official NTIRE 2022 results and the seed's Table 2.

They are read as transcribed, with their columns checked, and are never edited by code: the
official ranks are recomputed from the metrics beside them (see :mod:`harness.leaderboard.ranking`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from harness.errors import HarnessError
from harness.leaderboard.ranking import METRICS, Difference, Reproduction, TrackRanks, reproduce_ranks

__all__ = [
    "OFFICIAL_FILE",
    "SEED_FILE",
    "OfficialTable",
    "load_official_table",
    "load_seed_table",
]

OFFICIAL_FILE = "ntire2022_esr_official_results.csv"
SEED_FILE = "seed_table2.csv"

# Official CSV column of each ranked metric.
METRIC_COLUMNS: dict[str, str] = {
    "time": "ave_time_ms",
    "params": "params_m",
    "flops": "flops_g",
    "acts": "acts_m",
    "mem": "gpu_mem_mb",
}
TRACK_COLUMNS = (
    "main_track_rank",
    "sub_track1_score",
    "sub_track1_rank",
    "sub_track2_score",
    "sub_track2_rank",
)


def _rank_column(metric: str) -> str:
    """The official table's rank column of ``metric`` (e.g. ``ave_time_rank``)."""
    return f"{METRIC_COLUMNS[metric].rsplit('_', 1)[0]}_rank"


OFFICIAL_COLUMNS = (
    "team",
    "official_model_id",
    "status",
    *TRACK_COLUMNS,
    "val_psnr_db",
    "test_psnr_db",
    *(column for key in METRICS for column in (METRIC_COLUMNS[key], _rank_column(key))),
    "num_conv",
    "note",
)
SEED_COLUMNS = (
    "team",
    "official_team_name",
    "val_psnr_db",
    "test_psnr_db",
    "avg_psnr_db",
    "val_time_ms",
    "test_time_ms",
    "note",
)
STATUSES = ("ranked", "unranked", "baseline")


def _read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise HarnessError(f"{path}: published table not found")
    try:
        frame = pd.read_csv(path, keep_default_na=True)
    except (OSError, ValueError) as error:
        raise HarnessError(f"{path}: not a readable CSV ({error})") from error
    if tuple(frame.columns) != columns:
        missing = [column for column in columns if column not in frame.columns]
        extra = [column for column in frame.columns if column not in columns]
        raise HarnessError(f"{path}: unexpected columns (missing {missing}, unexpected {extra})")
    frame["note"] = frame["note"].fillna("")
    return frame


def _ints(series: pd.Series) -> list[int | None]:
    return [None if pd.isna(value) else int(value) for value in series]


def _documented(difference: Difference, note: str) -> str:
    """The row's note when it documents this very difference (it names the column), else ''."""
    # e.g. column "sub_track1_rank" -> "sub-track-1", "params_rank" -> "params"
    phrase = difference.column.removesuffix("_rank").removesuffix("_score").replace("sub_track", "sub-track-")
    return note if phrase in note.lower() else ""


@dataclass(frozen=True)
class OfficialTable:
    """The official results, with our recomputation of its ranks for the ``ranked`` rows."""

    rows: pd.DataFrame
    ranked: pd.DataFrame
    tracks: TrackRanks
    reproduction: Reproduction


def load_official_table(folder: Path) -> OfficialTable:
    """Read the official table and recompute every rank of its ranked rows from their metrics."""
    path = folder / OFFICIAL_FILE
    rows = _read_csv(path, OFFICIAL_COLUMNS)
    unknown = sorted(set(rows["status"]) - set(STATUSES))
    if unknown:
        raise HarnessError(f"{path}: status {unknown[0]!r} is not one of {', '.join(STATUSES)}")
    ranked = rows[rows["status"] == "ranked"].reset_index(drop=True)
    for column in (*METRIC_COLUMNS.values(), *(_rank_column(key) for key in METRICS), *TRACK_COLUMNS):
        if ranked[column].isna().any():
            raise HarnessError(f"{path}: a ranked row has no {column}")
    names = list(ranked["team"])
    tracks, reproduction = reproduce_ranks(
        names,
        {key: [float(value) for value in ranked[column]] for key, column in METRIC_COLUMNS.items()},
        {key: _ints(ranked[_rank_column(key)]) for key in METRICS},
        {column: _ints(ranked[column]) for column in TRACK_COLUMNS},
    )
    notes = dict(zip(ranked["team"], ranked["note"], strict=True))
    differences = tuple(
        replace(item, known=_documented(item, notes[item.name])) for item in reproduction.differences
    )
    reproduction = replace(reproduction, differences=differences)
    return OfficialTable(rows=rows, ranked=ranked, tracks=tracks, reproduction=reproduction)


def load_seed_table(folder: Path) -> pd.DataFrame:
    """Read the seed's Table 2 as published (12 rows, two of them without a test time)."""
    return _read_csv(folder / SEED_FILE, SEED_COLUMNS)
