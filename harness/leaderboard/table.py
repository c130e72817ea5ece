"""The leaderboard as data: raw rows plus how to show them, independent of the output format."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

__all__ = [
    "Column",
    "Leaderboard",
    "PlotPanel",
    "combine_panels",
    "frame_of",
    "interval_cells",
    "interval_keys",
]


@dataclass(frozen=True)
class Column:
    """One shown column: the row key, its header, decimals, and the key of a rank printed beside it.

    ``interval``: the value may have a 95% confidence interval, held under :func:`interval_keys`
    and shown beside it. ``footnote``: a long text in this column is printed once under the table.
    """

    key: str
    header: str
    decimals: int | None = None
    rank_key: str | None = None
    interval: bool = False
    footnote: bool = False


def interval_keys(key: str) -> tuple[str, str]:
    """The row keys of the low and high ends of the interval of the value under ``key``."""
    return f"{key}_low", f"{key}_high"


def interval_cells(key: str, bounds: tuple[float, float] | None) -> dict[str, float | None]:
    """The row entries holding ``bounds``, the interval of the value under ``key`` (None when absent)."""
    low, high = bounds if bounds is not None else (None, None)
    low_key, high_key = interval_keys(key)
    return {low_key: low, high_key: high}


@dataclass(frozen=True)
class PlotPanel:
    """Points that share one PSNR scale (one dataset), with the PSNR limit that applies to them."""

    title: str
    sources: tuple[str, ...]
    psnr_limit: float
    psnr_limit_label: str
    proxy: bool = False


@dataclass(frozen=True)
class Leaderboard:
    """A built leaderboard.

    ``rows`` holds raw values (one row per entry, ranked rows first, the rest below), keyed by the
    ``Column.key`` names plus ``source`` (measured or published) and ``ranked`` (bool).
    ``plot_keys`` names the PSNR and runtime-ratio keys the plot draws; ``panels`` groups the points
    by PSNR scale. ``target`` is the Table-2 "Target" row, shown first in display formats.
    ``notes`` are lines printed under the table.
    """

    title: str
    columns: tuple[Column, ...]
    rows: pd.DataFrame
    notes: tuple[str, ...] = ()
    target: dict[str, str] | None = None
    panels: tuple[PlotPanel, ...] = field(default_factory=tuple)
    plot_keys: tuple[str, str] = ("psnr", "time_ratio")


def frame_of(rows: list[dict[str, object]], columns: tuple[Column, ...]) -> pd.DataFrame:
    """Rows as a frame with every shown column and rank column present (missing values are NaN/None)."""
    keys = ["source", "ranked", *(column.key for column in columns)]
    keys += [column.rank_key for column in columns if column.rank_key]
    keys += [key for column in columns if column.interval for key in interval_keys(column.key)]
    return pd.DataFrame(rows, columns=list(dict.fromkeys(keys)))


def combine_panels(measured: PlotPanel | None, published: PlotPanel | None) -> tuple[PlotPanel, ...]:
    """One panel when both sources share a PSNR scale (same limit, not a proxy), else one each."""
    if (
        measured is not None
        and published is not None
        and not measured.proxy
        and measured.psnr_limit == published.psnr_limit
    ):
        title = published.title.removeprefix("published: ")
        return (
            PlotPanel(title, ("measured", "published"), published.psnr_limit, published.psnr_limit_label),
        )
    return tuple(panel for panel in (measured, published) if panel is not None)
