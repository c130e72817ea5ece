"""PSNR against runtime ratio: labelled points, error bars, the constraint lines and the Pareto front.

One panel per PSNR scale (measured data and the published DIV2K-val figures are only drawn on one
axis when they share it). The x axis is the runtime over the IMDN baseline's, on a log scale, so a
point left of the vertical line at 1.0 is faster than the baseline, whatever the GPU. A measured
ratio with a 95% confidence interval gets a horizontal error bar. Every point is labelled, in places
where labels overlap neither each other nor the markers (:mod:`harness.leaderboard.labels`); in a
panel of more than ``_LABEL_ALL_UP_TO`` points only measured points and the Pareto front are.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from harness.atomic import write_bytes_atomic
from harness.errors import HarnessError
from harness.leaderboard.labels import Label, place_labels
from harness.leaderboard.table import Leaderboard, PlotPanel, interval_keys

__all__ = ["draw_figure", "pareto_front", "plot_png", "write_plot"]

# Above this many points in a panel only measured points and the Pareto front are labelled.
_LABEL_ALL_UP_TO = 60
_STYLE = {"measured": {"marker": "o", "color": "tab:red"}, "published": {"marker": "s", "color": "tab:blue"}}


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (ratio, psnr) points no other point beats on both (lower ratio, higher PSNR), by ratio."""
    front: list[tuple[float, float]] = []
    for ratio, psnr in sorted(points, key=lambda point: (point[0], -point[1])):
        if not front or psnr > front[-1][1]:
            front.append((ratio, psnr))
    return front


def _points(board: Leaderboard, panel: PlotPanel) -> pd.DataFrame:
    psnr_key, ratio_key = board.plot_keys
    rows = board.rows[board.rows["source"].isin(panel.sources)]
    low_key, high_key = interval_keys(ratio_key)
    missing = pd.Series(float("nan"), index=rows.index)
    frame = pd.DataFrame(
        {
            "team": rows["team"],
            "source": rows["source"],
            "ranked": rows["ranked"].fillna(False).astype(bool),
            "psnr": pd.to_numeric(rows[psnr_key], errors="coerce"),
            "ratio": pd.to_numeric(rows[ratio_key], errors="coerce"),
            "low": pd.to_numeric(rows[low_key], errors="coerce") if low_key in rows else missing,
            "high": pd.to_numeric(rows[high_key], errors="coerce") if high_key in rows else missing,
        }
    )
    return frame[frame["psnr"].map(math.isfinite) & (frame["ratio"] > 0)]


def _error_bars(axes: Axes, points: pd.DataFrame) -> None:
    """Horizontal bars over the 95% interval of each ratio that has one."""
    with_interval = points[points["low"].notna() & points["high"].notna()]
    for index, (source, group) in enumerate(with_interval.groupby("source")):
        color = _STYLE.get(str(source), {"color": "gray"})["color"]
        axes.errorbar(
            group["ratio"],
            group["psnr"],
            xerr=[group["ratio"] - group["low"], group["high"] - group["ratio"]],
            fmt="none",
            ecolor=color,
            elinewidth=0.8,
            capsize=2.5,
            zorder=2,
            label="95% interval of the ratio" if index == 0 else None,
        )


def _draw(axes: Axes, board: Leaderboard, panel: PlotPanel) -> list[Label]:
    """Draw one panel; return the labels to place once the figure's layout is fixed (most important first)."""
    points = _points(board, panel)
    ranked = points[points["ranked"]]
    front = pareto_front(list(zip(ranked["ratio"], ranked["psnr"], strict=True)))
    on_front = set(front)
    label_all = len(points) <= _LABEL_ALL_UP_TO
    for (source, is_ranked), group in points.groupby(["source", "ranked"]):
        style = _STYLE.get(str(source), {"marker": "^", "color": "gray"})
        face = style["color"] if is_ranked else "none"
        label = str(source) if is_ranked else f"{source} (not ranked)"
        axes.scatter(
            group["ratio"],
            group["psnr"],
            s=24,
            label=label,
            zorder=3,
            marker=style["marker"],
            facecolors=face,
            edgecolors=style["color"],
        )
    _error_bars(axes, points)
    if front:
        xs = [p[0] for p in front]
        ys = [p[1] for p in front]
        axes.step(
            xs,
            ys,
            where="post",
            color="gray",
            lw=1,
            ls="--",
            marker="o",
            mfc="none",
            ms=9,
            label="Pareto front (ranked)",
        )
    axes.axvline(1.0, color="black", lw=0.8, label="runtime = IMDN")
    axes.axhline(panel.psnr_limit, color="tab:green", lw=0.8, label=f"PSNR limit {panel.psnr_limit_label}")
    title = panel.title
    if len(ranked):
        # Unranked outliers far below the limit would squeeze the ranked cluster into one line.
        low = min(ranked["psnr"].min(), panel.psnr_limit) - 0.05
        high = max(points["psnr"].max(), panel.psnr_limit) + 0.03
        visible = points[points["psnr"] >= low]
        hidden = len(points) - len(visible)
        axes.set_ylim(low, high)
        left = pd.concat([visible["ratio"], visible["low"]]).min()  # NaN (no interval) is skipped
        right = pd.concat([visible["ratio"], visible["high"]]).max()
        axes.set_xlim(min(left, 1.0) / 1.2, max(right, 1.0) * 1.2)
        if hidden:
            title += f" ({hidden} unranked below {low:.2f} dB not shown)"
        points = visible
    axes.set_xscale("log")
    low_x, high_x = axes.get_xlim()
    narrow = high_x / low_x < 10  # within a decade, label every minor tick, else only 2, 3 and 5
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    axes.xaxis.set_minor_formatter(
        FuncFormatter(lambda value, _pos: f"{value:g}" if narrow or _nice(value) else "")
    )
    axes.set_xlabel("runtime / IMDN baseline (log scale)")
    axes.set_ylabel("PSNR [dB]")
    axes.set_title(title, fontsize=9)
    axes.grid(True, which="both", lw=0.3, alpha=0.5)
    axes.legend(fontsize=7, loc="lower right")
    chosen = [
        (source != "measured", (ratio, psnr) not in on_front, ratio, str(team), psnr)
        for team, source, ratio, psnr in zip(
            points["team"], points["source"], points["ratio"], points["psnr"], strict=True
        )
        if label_all or source == "measured" or (ratio, psnr) in on_front
    ]
    # Measured points first, then the Pareto front, then the rest, each from left to right.
    return [Label(team, ratio, psnr) for _, _, ratio, team, psnr in sorted(chosen)]


def _nice(value: float) -> bool:
    """Minor ticks worth a label on a log axis: 2, 3 and 5 times a power of ten."""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return any(abs(mantissa - nice) < 1e-6 for nice in (2, 3, 5))


def draw_figure(board: Leaderboard) -> Figure:
    """The plot of ``board``: one panel per PSNR scale, labels placed after the layout is fixed."""
    if not board.panels:
        raise HarnessError("nothing to plot (no entry with a PSNR and a runtime ratio)")
    figure = Figure(figsize=(7.5 * len(board.panels), 6), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    panels = []
    for index, panel in enumerate(board.panels):
        axes = figure.add_subplot(1, len(board.panels), index + 1)
        panels.append((axes, _draw(axes, board, panel)))
    figure.canvas.draw()  # lays the panels out; labels must not move them afterwards
    figure.set_layout_engine("none")
    renderer = figure.canvas.get_renderer()
    for axes, labels in panels:
        legend = axes.get_legend()
        avoid = [] if legend is None else [legend.get_window_extent(renderer)]
        place_labels(axes, labels, renderer, avoid=avoid)
    return figure


def plot_png(board: Leaderboard) -> bytes:
    """The plot of ``board`` as PNG bytes."""
    buffer = io.BytesIO()
    draw_figure(board).savefig(buffer, format="png")
    return buffer.getvalue()


def write_plot(board: Leaderboard, path: str | Path) -> None:
    """Draw ``board`` to a PNG at ``path`` (written atomically)."""
    try:
        data = plot_png(board)
    except HarnessError as error:
        raise HarnessError(f"{path}: {error}") from None
    write_bytes_atomic(path, data)
