"""Leaderboards as text: Markdown, CSV, LaTeX and HTML (pandas).

Display formats (md, latex, html) show values rounded as the official table prints them, with a
metric's rank beside it as ``27.11 (1)`` and a measured ratio's 95% interval as ``0.831 [0.801,
0.856]``, the Table-2 Target row first, empty columns dropped and the notes underneath. Markdown is
made to be read in a terminal: long notes (a failed submission's reason) become numbered footnotes
under the table, and a table wider than ``width`` characters is cut into column groups that each
repeat the Source and Team columns. CSV is for machines: raw unrounded values, ranks and interval
ends in their own columns, every column kept (the notes are not part of it).
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from harness.errors import HarnessError
from harness.footnotes import Footnotes
from harness.leaderboard.table import Column, Leaderboard, interval_keys
from harness.texttable import format_table

__all__ = ["DEFAULT_WIDTH", "FORMATS", "ShownColumn", "display_frame", "render", "shown_columns"]

FORMATS: tuple[str, ...] = ("md", "csv", "latex", "html")
MISSING = "-"
#: Markdown tables are cut into column groups no wider than this (0: never cut).
DEFAULT_WIDTH = 120
# Columns repeated in every column group of a cut Markdown table, so each group can be read alone.
_KEY_COLUMNS = ("source", "team")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _cell(value: Any, column: Column, rank: Any, bounds: tuple[Any, Any]) -> str:
    if _missing(value):
        return ""
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int | float) and column.decimals is not None:
        text = f"{value:.{column.decimals}f}"
        if not any(_missing(bound) for bound in bounds):
            text += f" [{bounds[0]:.{column.decimals}f}, {bounds[1]:.{column.decimals}f}]"
    else:
        text = str(value)
    return text if _missing(rank) else f"{text} ({int(rank)})"


ShownColumn = tuple[Column, list[str]]


def shown_columns(board: Leaderboard, footnotes: Footnotes | None = None) -> list[ShownColumn]:
    """Each column with a value in some row, and its display cells (one per row, Target row excluded).

    With ``footnotes``, long texts of footnote columns are replaced by their marks.
    """
    records = board.rows.to_dict("records")
    shown: list[ShownColumn] = []
    for column in board.columns:
        cells = []
        for row in records:
            rank = row.get(column.rank_key) if column.rank_key else None
            bounds = tuple(row.get(key) for key in interval_keys(column.key)) if column.interval else ()
            cell = _cell(row[column.key], column, rank, bounds or (None, None))
            cells.append(footnotes.mark(cell) if footnotes is not None and column.footnote else cell)
        if any(cells):
            shown.append((column, cells))
    return shown


def display_frame(board: Leaderboard, footnotes: Footnotes | None = None) -> pd.DataFrame:
    """The rows as formatted strings under their headers; columns empty in every row are dropped."""
    frame: dict[str, list[str]] = {}
    for column, cells in shown_columns(board, footnotes):
        target = [] if board.target is None else [board.target.get(column.key, MISSING)]
        frame[column.header] = target + cells
    return pd.DataFrame(frame)


def _pipe_table(frame: pd.DataFrame) -> str:
    return format_table(list(frame.columns), frame.values.tolist(), markdown=True)


def _column_groups(frame: pd.DataFrame, keys: list[str], width: int) -> list[list[str]]:
    """Columns in groups whose tables fit ``width`` (a single column may not), each starting with ``keys``."""
    groups: list[list[str]] = []
    current = list(keys)
    for header in frame.columns:
        if header in keys:
            continue
        widened = [*current, header]
        if len(current) > len(keys) and len(_pipe_table(frame[widened]).splitlines()[0]) > width:
            groups.append(current)
            widened = [*keys, header]
        current = widened
    return [*groups, current]


def _markdown(board: Leaderboard, width: int = DEFAULT_WIDTH) -> str:
    footnotes = Footnotes()
    frame = display_frame(board, footnotes)
    if width > 0:
        keys = [column.header for column in board.columns if column.key in _KEY_COLUMNS]
        groups = _column_groups(frame, [header for header in keys if header in frame.columns], width)
    else:
        groups = [list(frame.columns)]
    tables = "\n\n".join(_pipe_table(frame[group]) for group in groups)
    under = "".join(f"{line}\n" for line in footnotes.lines())
    notes = "".join(f"- {note}\n" for note in board.notes)
    return (
        f"## {board.title}\n\n{tables}\n" + (f"\n{under}" if under else "") + (f"\n{notes}" if notes else "")
    )


def _csv(board: Leaderboard) -> str:
    return board.rows.to_csv(index=False)


def _latex(board: Leaderboard) -> str:
    try:
        styler = display_frame(board).style
        styler = styler.hide(axis="index").format(escape="latex").format_index(escape="latex", axis=1)
        body = styler.to_latex(caption=board.title.replace("_", r"\_"), hrules=True)
    except ImportError as error:
        raise HarnessError(
            f"--format latex needs jinja2 ({error}); install it or choose md, csv or html"
        ) from error
    notes = "".join(f"% {note}\n" for note in board.notes)
    return body + notes


def _html(board: Leaderboard) -> str:
    table = display_frame(board).to_html(index=False, escape=True, border=0)
    notes = "".join(f"<li>{html.escape(note)}</li>\n" for note in board.notes)
    return f"<h2>{html.escape(board.title)}</h2>\n{table}\n" + (f"<ul>\n{notes}</ul>\n" if notes else "")


_RENDERERS = {"csv": _csv, "latex": _latex, "html": _html}


def render(board: Leaderboard, fmt: str = "md", *, width: int = DEFAULT_WIDTH) -> str:
    """``board`` as text in format ``fmt`` (one of :data:`FORMATS`); ``width`` cuts Markdown tables (0: never)."""
    if fmt == "md":
        return _markdown(board, width)
    if fmt not in _RENDERERS:
        raise HarnessError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    return _RENDERERS[fmt](board)
