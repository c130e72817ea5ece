"""The 2024+ leaderboard: Score_Final and its rank, measured beside the edition's published rows.

One builder for every edition that ranks by a score: the protocol's fields (score weights, PSNR
thresholds per split, baseline) are all that differ. Measured entries are scored against the
baseline measured in the same run; published rows against the published table's own baseline row,
from the printed metrics. Entries below a PSNR threshold are listed, not ranked. Where the edition
publishes per-image figures, the notes add each runtime's 95% interval, the neighbours in the
published order that their own measurements do not tell apart, and the rows whose printed PSNR and
unrounded PSNR fall on different sides of a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.constraints import baseline_name, find_baseline
from harness.errors import HarnessError
from harness.leaderboard.edition_tables import PublishedEdition, paired_runtime_difference
from harness.leaderboard.measured import MeasuredEntry, describe_measured, measured_entries
from harness.leaderboard.ranking import min_rank
from harness.leaderboard.runs import RunFile
from harness.leaderboard.scores import score
from harness.leaderboard.table import Column, Leaderboard, frame_of
from harness.protocols import Protocol, ScoreFormula

__all__ = ["COLUMNS", "build_edition"]

COLUMNS: tuple[Column, ...] = (
    Column("source", "Source"),
    Column("team", "Team"),
    Column("rank", "Rank", 0),
    Column("score_final", "Score_Final", 4),
    Column("score_runtime", "Score_Runtime", 4),
    Column("score_flops", "Score_FLOPs", 4),
    Column("score_params", "Score_Params", 4),
    Column("val_psnr", "Val PSNR [dB]", 2),
    Column("test_psnr", "Test PSNR [dB]", 2),
    Column("time_ms", "Time [ms]", 2),
    Column("time_interval", "Time 95% [ms]"),
    Column("time_ratio", "Time / baseline", 3),
    Column("params_m", "Params [M]", 3),
    Column("flops_g", "FLOPs [G]", 2),
    Column("note", "Note"),
)


def _scored(row: dict[str, Any], formula: ScoreFormula, baseline: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its scores, from its time, FLOPs and params over the baseline row's."""
    ratios = {key: row[key] / baseline[key] for key in ("time_ms", "flops_g", "params_m")}
    found = score(
        formula,
        runtime_ratio=ratios["time_ms"],
        flops_ratio=ratios["flops_g"],
        params_ratio=ratios["params_m"],
    )
    return {
        **row,
        "time_ratio": ratios["time_ms"],
        "score_runtime": found.runtime,
        "score_flops": found.flops,
        "score_params": found.params,
        "score_final": found.final,
    }


def _rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank the eligible rows by Score_Final (lower is better), listing the others after them."""
    eligible = [row for row in rows if not row["note"]]
    for row, rank in zip(eligible, min_rank([row["score_final"] for row in eligible]), strict=True):
        row.update(rank=rank, ranked=True)
    others = [{**row, "ranked": False} for row in rows if row["note"]]
    return sorted(eligible, key=lambda row: (row["rank"], row["team"])) + others


def _psnr_problems(values: dict[str, float | None], protocol: Protocol) -> str:
    """Why PSNRs keep an entry out of the ranking ('' when every stated threshold is met)."""
    problems = []
    for limit in protocol.constraints.psnr_limits():
        split = limit.reference_data.split
        value = values.get(split)
        if value is None:
            continue
        if value < limit.min_db:
            problems.append(f"{split} PSNR {value:.2f} < {limit.min_db:.2f} dB")
    return "not ranked: " + "; ".join(problems) if problems else ""


# ----------------------------------------------------------------------------- published rows


def _published_rows(
    published: PublishedEdition, protocol: Protocol
) -> tuple[list[dict[str, Any]], list[str]]:
    assert protocol.score is not None and protocol.published_baseline is not None
    rows = []
    for item in published.rows.itertuples(index=False):
        psnr = {"val": float(item.val_psnr_db), "test": float(item.test_psnr_db)}
        rows.append(
            {
                "source": "published",
                "team": item.model,
                "val_psnr": psnr["val"],
                "test_psnr": psnr["test"],
                "time_ms": float(item.ave_time_ms),
                "params_m": float(item.params_m),
                "flops_g": float(item.flops_g),
                "note": _psnr_problems(psnr, protocol),
            }
        )
    base_name = protocol.published_baseline.team
    baseline = next((row for row in rows if row["team"] == base_name), None)
    if baseline is None:
        raise HarnessError(f"{published.source}: no row for the baseline {base_name}")
    ranked = _rank([_scored(row, protocol.score, baseline) for row in rows])
    notes = [
        f"published: {published.source.name} as printed (time = mean of val and test; scores from the printed "
        f"time, FLOPs and params over {base_name}'s row: {baseline['time_ms']} ms, {baseline['flops_g']} G, "
        f"{baseline['params_m']} M)"
    ]
    if published.per_image:
        notes += _uncertainty(ranked, published, protocol)
    return ranked, notes


def _uncertainty(rows: list[dict[str, Any]], published: PublishedEdition, protocol: Protocol) -> list[str]:
    """Runtime intervals, unresolved neighbours and rounding across thresholds, from per-image figures."""
    assert protocol.score is not None
    notes = [
        f"Time 95%: Student-t interval of the mean over the published per-image runtimes "
        f"({published.source.name.replace('results', 'per_image')}; one timed pass per image)"
    ]
    for row in rows:
        figures = published.per_image.get(row["team"])
        if figures is not None:
            interval = figures.ave_time()
            row["time_interval"] = f"[{interval.low:.2f}, {interval.high:.2f}]"
            for limit in protocol.constraints.psnr_limits():
                split = limit.reference_data.split
                printed, exact = row[f"{split}_psnr"], figures.mean_psnr(split)
                if (printed >= limit.min_db) != (exact >= limit.min_db):
                    notes.append(
                        f"{row['team']}: {split} PSNR printed {printed:.2f} but unrounded {exact:.4f} dB: the two "
                        f"fall on different sides of the {limit.min_db:.2f} dB threshold"
                    )
    ranked = [row for row in rows if row["ranked"]]
    for better, worse in zip(ranked, ranked[1:], strict=False):
        first, second = published.per_image.get(better["team"]), published.per_image.get(worse["team"])
        if first is None or second is None:
            continue
        difference = paired_runtime_difference(second, first)
        # Holding the better entry where it is, move the other's time across the interval of the
        # paired difference: the order is resolved only if Score_Final keeps its sign throughout.
        signs = {
            _scored(
                {**worse, "time_ms": better["time_ms"] + end}, protocol.score, _baseline_of(rows, protocol)
            )["score_final"]
            > better["score_final"]
            for end in (difference.low, difference.high)
        }
        if len(signs) > 1:
            notes.append(
                f"published order not resolved: {better['team']} (rank {better['rank']}) before {worse['team']} "
                f"(rank {worse['rank']}), but {worse['team']} - {better['team']} Ave Time is {difference.mean:+.3f} ms, "
                f"95% interval [{difference.low:+.3f}, {difference.high:+.3f}] over paired images, which allows "
                "either order of Score_Final"
            )
    return notes


def _baseline_of(rows: list[dict[str, Any]], protocol: Protocol) -> dict[str, Any]:
    assert protocol.published_baseline is not None
    return next(row for row in rows if row["team"] == protocol.published_baseline.team)


# ----------------------------------------------------------------------------- measured rows


def _figures(entry: MeasuredEntry) -> dict[str, float | None]:
    """The three figures a score divides: runtime [ms], params [M] and FLOPs [G]."""
    return {
        "time_ms": entry.runtime_ms,
        "params_m": entry.number("params", 1e6),
        "flops_g": entry.number("flops", 1e9),
    }


def _run_baselines(entries: list[MeasuredEntry], protocol: Protocol) -> dict[Path, dict[str, Any] | None]:
    """Each run's own baseline figures, by run file (None where its baseline is absent or failed).

    An entry is scored against the baseline counted and timed in its own run: two runs on one device
    still differ in load, so a runtime divided by another run's baseline would mix two measurements.
    """
    baselines: dict[Path, dict[str, Any] | None] = {}
    for entry in entries:
        if entry.run.path not in baselines:
            record = find_baseline(entry.run.document, protocol)
            if record is not None and record.get("status") == "ok":
                baselines[entry.run.path] = _figures(MeasuredEntry(entry.run, record, ()))
            else:
                baselines[entry.run.path] = None
    return baselines


def _measured_rows(entries: list[MeasuredEntry], protocol: Protocol) -> list[dict[str, Any]]:
    assert protocol.score is not None
    baselines = _run_baselines(entries, protocol)
    scored, unscored = [], []
    for entry in entries:
        psnr = entry.number("psnr_rgb")
        split = entry.run.dataset.get("split") or "val"
        row = {
            "source": "measured",
            "team": entry.name,
            "val_psnr": psnr if split != "test" else None,
            "test_psnr": psnr if split == "test" else None,
            **_figures(entry),
            # the baseline is ranked too: its score is exp(2) on every term by definition
            "note": replace(entry, is_baseline=False).problem(("complete", "psnr")),
        }
        if entry.record.get("flops_lower_bound"):
            row["note"] = "; ".join(filter(None, [row["note"], "FLOPs is an fvcore lower bound"]))
        reference = baselines[entry.run.path]
        if reference is None:
            missing = f"no usable baseline ({baseline_name(entry.run.baseline, protocol)}) in the run to score against"
            unscored.append({**row, "note": row["note"] or missing})
        elif None in (*(row[key] for key in reference), *reference.values()):
            unscored.append({**row, "note": row["note"] or "no runtime, FLOPs or params to score"})
        else:
            scored.append(_scored(row, protocol.score, reference))
    return _rank(scored + unscored)


def build_edition(
    runs: Sequence[RunFile],
    protocol: Protocol,
    published: PublishedEdition | None,
    *,
    asked_published: bool = False,
) -> Leaderboard:
    """The score leaderboard of ``runs`` (one protocol, one device), with ``published`` rows appended
    (``asked_published`` without a table: a note says the edition publishes none)."""
    if protocol.score is None:
        raise HarnessError(f"protocol {protocol.name} ranks by no score; use --style ntire2022 or table2")
    entries = measured_entries(runs, protocol)
    rows = _measured_rows(entries, protocol) if entries else []
    notes, _panel = describe_measured(runs, entries, protocol)
    weights = protocol.score.weights
    notes.insert(
        0,
        f"Score_X = exp({protocol.score.factor:g} X / X_{protocol.baseline}) for runtime, FLOPs and params; "
        f"Score_Final = {weights.runtime:g} Score_Runtime + {weights.flops:g} Score_FLOPs + "
        f"{weights.params:g} Score_Params (lower is better); ranks are within each source",
    )
    if published is not None:
        published_rows, published_notes = _published_rows(published, protocol)
        rows += published_rows
        notes += published_notes
    elif asked_published:
        notes.append(f"published: the {protocol.name} repository publishes no results table")
    return Leaderboard(
        title=f"NTIRE {protocol.name.removeprefix('ntire')} Efficient SR score ({protocol.name} v{protocol.version})",
        columns=COLUMNS,
        rows=frame_of(rows, COLUMNS),
        notes=tuple(notes),
        plot_keys=("val_psnr", "time_ratio"),
    )
