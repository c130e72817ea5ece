"""PSNR against runtime ratio: labelled points, the constraint lines and the Pareto front.

One panel per PSNR scale (measured data and the published DIV2K-val figures are only drawn on one
axis when they share it). The x axis is the runtime over the IMDN baseline's, on a log scale, so a
point left of the vertical line at 1.0 is faster than the baseline, whatever the GPU.
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
from harness.leaderboard.table import Leaderboard, PlotPanel

__all__ = ["pareto_front", "write_plot"]

# Above this many points in a panel only measured points and the Pareto front are labelled.
_LABEL_ALL_UP_TO = 15
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
    frame = pd.DataFrame(
        {
            "team": rows["team"],
            "source": rows["source"],
            "ranked": rows["ranked"].fillna(False).astype(bool),
            "psnr": pd.to_numeric(rows[psnr_key], errors="coerce"),
            "ratio": pd.to_numeric(rows[ratio_key], errors="coerce"),
        }
    )
    return frame[frame["psnr"].map(math.isfinite) & (frame["ratio"] > 0)]


def _draw(axes: Axes, board: Leaderboard, panel: PlotPanel) -> None:
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
        for _, point in group.iterrows():
            if label_all or source == "measured" or (point["ratio"], point["psnr"]) in on_front:
                axes.annotate(
                    str(point["team"]),
                    (point["ratio"], point["psnr"]),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
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
        axes.set_xlim(min(visible["ratio"].min(), 1.0) / 1.2, max(visible["ratio"].max(), 1.0) * 1.2)
        if hidden:
            title += f" ({hidden} unranked below {low:.2f} dB not shown)"
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


def _nice(value: float) -> bool:
    """Minor ticks worth a label on a log axis: 2, 3 and 5 times a power of ten."""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return any(abs(mantissa - nice) < 1e-6 for nice in (2, 3, 5))


def write_plot(board: Leaderboard, path: str | Path) -> None:
    """Draw ``board`` to a PNG at ``path`` (written atomically)."""
    if not board.panels:
        raise HarnessError(f"{path}: nothing to plot (no entry with a PSNR and a runtime ratio)")
    figure = Figure(figsize=(7.5 * len(board.panels), 6), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    for index, panel in enumerate(board.panels):
        _draw(figure.add_subplot(1, len(board.panels), index + 1), board, panel)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_bytes_atomic(path, buffer.getvalue())
