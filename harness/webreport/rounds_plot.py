"""The interval of each runtime ratio narrowing round by round under ``--rounds auto``.

One line per submission: after each look of the sequential rule, the ratio and its repeated
confidence interval (a shaded band), with the runtime limit when the run had one. It shows at a
glance why a submission stopped: its band cleared the limit (decided), became narrower than the
resolution, or reached the cap.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.leaderboard import RunFile


def _looks(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [look for look in record.get("rounds_until_decided") or [] if look.get("interval")]


def rounds_plot_png(runs: Sequence[RunFile]) -> bytes | None:
    """The PNG of the narrowing intervals, or None when no run timed rounds until decided."""
    records = [(run, record) for run in runs for record in run.results if _looks(record)]
    if not records:
        return None
    figure = Figure(figsize=(8, 4.5), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    limits = set()
    for run, record in records:
        looks = _looks(record)
        rounds = [look["rounds"] for look in looks]
        lows = [look["interval"][0] for look in looks]
        highs = [look["interval"][1] for look in looks]
        (line,) = axes.plot(rounds, [look["ratio"] for look in looks], marker="o", markersize=3)
        axes.fill_between(rounds, lows, highs, color=line.get_color(), alpha=0.2)
        stop = record.get("stop_reason") or "-"
        line.set_label(f"{record['submission']} ({stop} after {record.get('rounds_used')} rounds)")
        limit = (run.metadata.get("timing") or {}).get("ratio_limit")
        if limit is not None:
            limits.add(limit)
    for limit in sorted(limits):
        axes.axhline(limit, color="black", linestyle="--", linewidth=1, label=f"runtime limit {limit:g}")
    axes.set_xlabel("timing round")
    axes.set_ylabel("runtime ratio to the baseline (95% repeated interval)")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
