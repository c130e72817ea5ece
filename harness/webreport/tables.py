"""The report's tables as plain data (cells with their text, sort key and style), ready for the template.

Every table is complete static HTML, readable without JavaScript; a cell's ``sort`` value (the raw
number behind a formatted one such as ``27.11 (1)``) only lets the page's small script sort numbers
as numbers. Long texts go to numbered footnotes under the table, as in the terminal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.comparison import ComparisonDocument
from harness.footnotes import Footnotes
from harness.leaderboard import Leaderboard, RunFile
from harness.leaderboard.render import shown_columns
from harness.verdicts import VALIDITY_LABELS, format_interval, interval, record_validity, verdict

__all__ = [
    "Cell",
    "Table",
    "cells_table",
    "constraints_table",
    "leaderboard_table",
    "per_image_table",
    "runtime_comparisons_table",
]

CONSTRAINT_ORDER = ("complete", "params", "runtime", "psnr")


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, the number it sorts by, CSS classes, and optional styled parts."""

    text: str
    sort: float | None = None
    css: str = ""
    parts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Table:
    """Headers, an optional pinned first row (Table 2's Target), rows with their CSS class, footnotes."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, tuple[Cell, ...]], ...]
    pinned: tuple[str, ...] | None = None
    footnotes: tuple[tuple[int, str], ...] = field(default_factory=tuple)
    numeric: tuple[bool, ...] = ()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _valid_css(value: Any) -> str:
    if value is True:
        return "pass"
    if value is False:
        return "fail"
    return "inconclusive" if value == "inconclusive" else ""


def leaderboard_table(board: Leaderboard) -> Table:
    """The leaderboard as shown in the terminal, with raw values to sort by and verdict colours."""
    footnotes = Footnotes()
    shown = shown_columns(board, footnotes)
    records = board.rows.to_dict("records")
    rows = []
    for index, record in enumerate(records):
        cells = []
        for column, texts in shown:
            raw = record[column.key]
            css = _valid_css(raw) if column.key == "valid" else ""
            cells.append(Cell(texts[index], _number(raw), css))
        ranked = " ranked" if record.get("ranked") is True else ""
        rows.append((f"{record['source']}{ranked}", tuple(cells)))
    pinned = None
    if board.target is not None:
        pinned = tuple(board.target.get(column.key, "-") for column, _ in shown)
    numeric = tuple(any(_number(record[column.key]) is not None for record in records) for column, _ in shown)
    return Table(
        tuple(column.header for column, _ in shown), tuple(rows), pinned, tuple(footnotes.items()), numeric
    )


def per_image_table(
    names: Sequence[str], metrics: Mapping[str, Mapping[str, tuple[float | None, float | None]]], channel: str
) -> Table:
    """PSNR and SSIM of every submission on every image; the best of each row is highlighted.

    ``metrics`` maps submission -> image -> (PSNR, SSIM) as the run recorded them.
    """
    submissions = list(metrics)
    rows = []
    for image in names:
        values = [metrics[name].get(image, (None, None)) for name in submissions]
        psnrs = [value[0] for value in values if value[0] is not None]
        ssims = [value[1] for value in values if value[1] is not None]
        best_psnr, best_ssim = max(psnrs, default=None), max(ssims, default=None)
        cells = [Cell(image)]
        for psnr, ssim in values:
            if psnr is None or ssim is None:
                cells.append(Cell("-"))
                continue
            parts = (
                (f"{psnr:.2f}", "best" if psnr == best_psnr else ""),
                (" / ", ""),
                (f"{ssim:.4f}", "best" if ssim == best_ssim else ""),
            )
            cells.append(Cell("".join(text for text, _ in parts), psnr, "", parts))
        rows.append(("", tuple(cells)))
    headers = ("Image", *(f"{name} PSNR / SSIM ({channel.upper()})" for name in submissions))
    return Table(headers, tuple(rows), numeric=(False, *(True for _ in submissions)))


def _figure(value: float) -> str:
    """A count with thousands separators, any other figure to four significant digits."""
    return f"{int(value):,}" if value.is_integer() and abs(value) >= 1000 else f"{value:.4g}"


def _constraint_cell(item: Mapping[str, Any] | None, footnotes: Footnotes) -> Cell:
    if item is None:
        return Cell("-")
    found = verdict(item)
    value = _number(item.get("value"))
    limit = _number(item.get("limit"))
    text = found.upper()
    if value is not None:
        text += f" {_figure(value)}"
        bounds = format_interval(interval(item))
        if bounds:
            text += f" {bounds}"
        if limit is not None:
            text += f" ({item.get('operator')} {_figure(limit)})"
    note = item.get("note") or ""
    if note:
        text += f" [{footnotes.number(note)}]"
    return Cell(text, value, found)


def constraints_table(runs: Sequence[RunFile]) -> Table:
    """Each measured result's constraint verdicts as its run recorded them (pass, fail, inconclusive)."""
    footnotes = Footnotes()
    rows = []
    for run in runs:
        for record in run.results:
            items = {item.get("name"): item for item in record.get("constraints") or []}
            failed = record.get("status") != "ok"
            validity = "fail" if failed else record_validity(record)
            label = "failed" if failed else VALIDITY_LABELS[validity] if validity else "-"
            cells = [Cell(str(record["submission"])), Cell(str(run.dataset.get("name", "?")))]
            cells += [_constraint_cell(items.get(name), footnotes) for name in CONSTRAINT_ORDER]
            cells.append(Cell(label, None, validity or ""))
            rows.append(("", tuple(cells)))
    headers = ("Submission", "Data", *CONSTRAINT_ORDER, "Valid")
    return Table(headers, tuple(rows), footnotes=tuple(footnotes.items()))


def cells_table(runs: Sequence[RunFile], channel: str) -> Table | None:
    """The deployment-cell matrix: one row per measured submission, per cell its PSNR drop against
    fp32 eager and its runtime ratio to the baseline in the same cell (None: no run measured cells)."""
    records = [record for run in runs for record in run.results if record.get("cells")]
    if not records:
        return None
    names = list(dict.fromkeys(cell for record in records for cell in record["cells"]))
    footnotes = Footnotes()
    rows = []
    for record in records:
        cells = [Cell(str(record["submission"]))]
        for name in names:
            entry = record["cells"].get(name)
            if entry is None:
                cells += [Cell("-"), Cell("-")]
                continue
            if entry.get("reason"):
                mark = footnotes.mark(entry["reason"])
                cells += [Cell(f"not run {mark}", None, "fail"), Cell("-")]
                continue
            drop = _number((entry.get("drop") or {}).get(f"psnr_{channel}"))
            ratio = _number(entry.get("runtime_ratio"))
            bounds = entry.get("runtime_interval")
            ratio_text = "-" if ratio is None else f"{ratio:.3f}"
            if ratio is not None and bounds:
                ratio_text += " " + format_interval((bounds[0], bounds[1]))
            css = "" if entry.get("passes_threshold") is None else _valid_css(entry["passes_threshold"])
            cells += [Cell("-" if drop is None else f"{drop:+.4f}", drop, css), Cell(ratio_text, ratio)]
        rows.append(("", tuple(cells)))
    headers = ("Submission", *(f"{name} {what}" for name in names for what in ("PSNR drop dB", "x baseline")))
    numeric = (False, *(True for _ in names for _ in range(2)))
    return Table(headers, tuple(rows), footnotes=tuple(footnotes.items()), numeric=numeric)


def runtime_comparisons_table(documents: Sequence[tuple[str, ComparisonDocument]]) -> Table | None:
    """``esr compare`` results, one row per compared submission: its paired runtime ratio to the
    reference, the 95% interval, the decision (styled by its name) and the rounds it took; the
    source column names the document each row came from (None: no document)."""
    if not documents:
        return None
    rows = []
    for source, document in documents:
        for item in document.compared:
            rounds = "-" if item.rounds_used is None else str(item.rounds_used)
            if item.stop_reason:
                rounds += f" ({item.stop_reason})"
            cells = (
                Cell(item.submission),
                Cell(document.reference),
                Cell("-" if item.ratio is None else f"{item.ratio:.4f}", item.ratio),
                Cell(format_interval(item.interval, 4) or "-"),
                Cell(item.decision, None, item.decision),
                Cell(rounds, None if item.rounds_used is None else float(item.rounds_used)),
                Cell(f"±{document.resolution:.1%}", document.resolution),
                Cell(source),
            )
            rows.append(("", cells))
    headers = ("Submission", "Reference", "Ratio", "95% interval", "Decision", "Rounds", "Resolution", "From")
    return Table(headers, tuple(rows), numeric=(False, False, True, False, False, True, True, False))
