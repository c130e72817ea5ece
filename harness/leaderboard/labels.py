"""Point labels that do not overlap: each label takes the first free place around its point.

The rule is deliberately simple and deterministic. Labels are placed one after another, in the order
given (the most important first). For each, places around its point are tried from near to far, in
eight directions per distance; a place is free when the label's box stays inside the axes and
overlaps no label placed before, no point's marker and not the legend. The first free place is
taken; a label moved away from its point gets a thin leader line. When no place is free (a very
crowded panel), the place overlapping least is taken. Boxes are computed from the text's rendered
size, so placement needs the figure's final layout: call it after the layout is fixed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

__all__ = ["Label", "place_labels"]

# Distances from the point to the label, in points (1/72 inch), tried in this order.
_DISTANCES = (3.0, 9.0, 16.0, 24.0, 34.0, 46.0, 60.0, 76.0, 94.0, 114.0)
# Directions (degrees, counter-clockwise from east), tried in this order at every distance.
_DIRECTIONS = (45, -45, 135, -135, 0, 180, 90, -90)
_MARKER_HALF_SIZE = 4.0  # points: the half side of the box a marker occupies
_LEADER_FROM = 12.0  # points: labels further from their point than this get a leader line


@dataclass(frozen=True)
class Label:
    """A text to place next to the point (x, y), in data coordinates."""

    text: str
    x: float
    y: float


def _alignment(angle: float) -> tuple[str, str]:
    """Horizontal and vertical alignment that put the text on the side of ``angle``."""
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    horizontal = "left" if cos > 0.3 else "right" if cos < -0.3 else "center"
    vertical = "bottom" if sin > 0.3 else "top" if sin < -0.3 else "center"
    return horizontal, vertical


def _box(anchor_x: float, anchor_y: float, width: float, height: float, ha: str, va: str) -> Bbox:
    left = anchor_x - {"left": 0.0, "center": width / 2, "right": width}[ha]
    bottom = anchor_y - {"bottom": 0.0, "center": height / 2, "top": height}[va]
    return Bbox.from_bounds(left, bottom, width, height)


def _overlap(a: Bbox, b: Bbox) -> float:
    """Area shared by two boxes (0 when they only touch or are apart)."""
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width * height if width > 0 and height > 0 else 0.0


class Place(NamedTuple):
    """A label's offset from its point (points), its alignment and the box it would cover (pixels)."""

    dx: float
    dy: float
    ha: str
    va: str
    box: Bbox


def _places(x: float, y: float, width: float, height: float, to_pixels: float) -> Iterator[Place]:
    """The places around the point (x, y) (pixels) in the order they are tried: near to far."""
    for distance in _DISTANCES:
        for angle in _DIRECTIONS:
            ha, va = _alignment(angle)
            dx = distance * math.cos(math.radians(angle))
            dy = distance * math.sin(math.radians(angle))
            yield Place(dx, dy, ha, va, _box(x + dx * to_pixels, y + dy * to_pixels, width, height, ha, va))


def _cost(box: Bbox, frame: Bbox, obstacles: Sequence[Bbox]) -> float:
    """0 for a free place; else the area overlapped plus the area outside the axes."""
    outside = box.width * box.height - _overlap(box, frame)
    return outside + sum(_overlap(box, obstacle) for obstacle in obstacles)


def place_labels(
    axes: Axes,
    labels: Sequence[Label],
    renderer: RendererBase,
    *,
    fontsize: float = 7,
    avoid: Sequence[Bbox] = (),
) -> list[Annotation]:
    """Annotate ``axes`` with ``labels`` (most important first) where they overlap nothing.

    ``avoid`` holds further display-space boxes to keep clear (the legend). Returns the annotations.
    """
    to_pixels = renderer.points_to_pixels(1.0)
    frame = axes.get_window_extent(renderer)
    half = _MARKER_HALF_SIZE * to_pixels
    anchors = [axes.transData.transform((label.x, label.y)) for label in labels]
    obstacles = [Bbox.from_extents(x - half, y - half, x + half, y + half) for x, y in anchors]
    obstacles += list(avoid)
    placed = []
    for label, (x, y) in zip(labels, anchors, strict=True):
        width, height = _text_size(axes, label.text, fontsize, renderer)
        best: tuple[float, Place] | None = None
        for place in _places(x, y, width, height, to_pixels):
            cost = _cost(place.box, frame, obstacles)
            if best is None or cost < best[0]:
                best = (cost, place)
            if cost == 0:
                break
        assert best is not None  # _DISTANCES and _DIRECTIONS are not empty
        dx, dy, ha, va, box = best[1]
        leader = {"arrowstyle": "-", "color": "0.55", "lw": 0.5, "shrinkA": 1, "shrinkB": 2}
        annotation = axes.annotate(
            label.text,
            (label.x, label.y),
            xytext=(dx, dy),
            textcoords="offset points",
            fontsize=fontsize,
            ha=ha,
            va=va,
            arrowprops=leader if math.hypot(dx, dy) > _LEADER_FROM else None,
        )
        obstacles.append(box)
        placed.append(annotation)
    return placed


def _text_size(axes: Axes, text: str, fontsize: float, renderer: RendererBase) -> tuple[float, float]:
    """Width and height in pixels of ``text`` as the axes would render it."""
    probe = axes.text(0, 0, text, fontsize=fontsize)
    extent = probe.get_window_extent(renderer)
    probe.remove()
    return extent.width, extent.height
