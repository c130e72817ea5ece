"""Leaderboards as text: Markdown (tabulate), CSV, LaTeX and HTML (pandas).

Display formats (md, latex, html) show values rounded as the official table prints them, with a
metric's rank beside it as ``27.11 (1)``, the Table-2 Target row first, empty columns dropped and
the notes underneath. CSV is for machines: raw unrounded values, ranks in their own columns, every
column kept (the notes are not part of it).
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd
from tabulate import tabulate

from harness.errors import HarnessError
from harness.leaderboard.table import Column, Leaderboard

__all__ = ["FORMATS", "display_frame", "render"]

FORMATS: tuple[str, ...] = ("md", "csv", "latex", "html")
MISSING = "-"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _cell(value: Any, column: Column, rank: Any) -> str:
    if _missing(value):
        return ""
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int | float) and column.decimals is not None:
        text = f"{value:.{column.decimals}f}"
    else:
        text = str(value)
    return text if _missing(rank) else f"{text} ({int(rank)})"


def display_frame(board: Leaderboard) -> pd.DataFrame:
    """The rows as formatted strings under their headers; columns empty in every row are dropped."""
    records = board.rows.to_dict("records")
    shown: dict[str, list[str]] = {}
    for column in board.columns:
        cells = [
            _cell(row[column.key], column, row.get(column.rank_key) if column.rank_key else None)
            for row in records
        ]
        if any(cells):
            target = [] if board.target is None else [board.target.get(column.key, MISSING)]
            shown[column.header] = target + cells
    return pd.DataFrame(shown)


def _markdown(board: Leaderboard) -> str:
    table = tabulate(
        display_frame(board), headers="keys", tablefmt="pipe", showindex=False, disable_numparse=True
    )
    notes = "".join(f"- {note}\n" for note in board.notes)
    return f"## {board.title}\n\n{table}\n" + (f"\n{notes}" if notes else "")


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


_RENDERERS = {"md": _markdown, "csv": _csv, "latex": _latex, "html": _html}


def render(board: Leaderboard, fmt: str = "md") -> str:
    """``board`` as text in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in _RENDERERS:
        raise HarnessError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    return _RENDERERS[fmt](board)
