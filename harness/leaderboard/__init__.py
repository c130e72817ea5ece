"""Leaderboards of measured runs, optionally beside the published NTIRE 2022 results.

Entry points:

- :func:`load_run` reads a run file (``results.json`` in a run directory, or ``esr evaluate --json``);
- :func:`build_leaderboard` turns comparable runs (one protocol version, one device) into a
  :class:`Leaderboard` in the ``ntire2022`` track style, the seed's ``table2`` style, or the score
  style of a 2024+ edition (``ntire2024``, ``ntire2025``, ``ntire2026``: one builder, the protocol's
  fields);
- :func:`annotate_published` adds corrections of published figures (e.g. where the printed table
  disagrees with the organisers' own counter) to the published rows and the notes;
- :func:`render` writes it as Markdown, CSV, LaTeX or HTML; :func:`write_plot` draws it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from harness.errors import HarnessError
from harness.leaderboard.edition import build_edition
from harness.leaderboard.edition_tables import load_published_edition
from harness.leaderboard.ntire2022 import build_ntire2022
from harness.leaderboard.plot import write_plot
from harness.leaderboard.published import load_official_table, load_seed_table
from harness.leaderboard.render import DEFAULT_WIDTH, FORMATS, render
from harness.leaderboard.runs import RunFile, check_comparable, load_run
from harness.leaderboard.table import Leaderboard
from harness.leaderboard.table2 import build_table2
from harness.protocols import Protocol, list_protocols, load_protocol

__all__ = [
    "DEFAULT_WIDTH",
    "FORMATS",
    "BUILT_IN_STYLES",
    "Leaderboard",
    "RunFile",
    "annotate_published",
    "build_leaderboard",
    "load_run",
    "protocol_of",
    "render",
    "score_styles",
    "styles",
    "write_plot",
]

# The styles with builders of their own: the 2022 tracks and the seed's Table 2.
BUILT_IN_STYLES: tuple[str, ...] = ("ntire2022", "table2")
DEFAULT_PROTOCOL = "ntire2022"


@lru_cache(maxsize=1)
def score_styles() -> tuple[str, ...]:
    """One style per shipped protocol that states a ranking score (2024 on), named as the protocol.

    Derived from ``harness/protocols/*.yaml``, so an edition's protocol file with a ``score`` adds its
    style; one builder (``build_edition``) serves them all from the protocol's fields.
    """
    return tuple(name for name in list_protocols() if load_protocol(name).score is not None)


def styles() -> tuple[str, ...]:
    """Every leaderboard style: the built-in ones, then the score styles."""
    return (*BUILT_IN_STYLES, *score_styles())


def protocol_of(runs: Sequence[RunFile], default: str = DEFAULT_PROTOCOL) -> Protocol:
    """The protocol the runs were measured under (checked to be one name and version for all)."""
    protocol = load_protocol(runs[0].protocol if runs else default)
    check_comparable(runs, protocol=protocol.name, version=protocol.version)
    return protocol


def build_leaderboard(
    runs: Sequence[RunFile],
    *,
    style: str = "ntire2022",
    published_dir: Path | None = None,
) -> Leaderboard:
    """A leaderboard of ``runs`` in ``style``; ``published_dir`` (results/published) adds published rows.

    Runs of different protocol versions or device fingerprints are refused (HarnessError). With no
    run, ``published_dir`` is required and the published table alone is built.
    """
    if style not in styles():
        raise HarnessError(f"--style {style}: expected one of {', '.join(styles())}")
    if not runs and published_dir is None:
        raise HarnessError("nothing to show: give a run directory or JSON file, or --published")
    if style in score_styles():
        protocol = protocol_of(runs, default=style)
        if protocol.name != style:
            raise HarnessError(
                f"--style {style}: the runs are of protocol {protocol.name}; use --style {protocol.name}"
            )
        published = load_published_edition(published_dir, style) if published_dir is not None else None
        return build_edition(runs, protocol, published, asked_published=published_dir is not None)
    protocol = protocol_of(runs)
    official = load_official_table(published_dir) if published_dir is not None else None
    if style == "ntire2022":
        return build_ntire2022(runs, protocol, official)
    seed = load_seed_table(published_dir) if published_dir is not None else None
    return build_table2(runs, protocol, seed=seed, official=official)


def annotate_published(board: Leaderboard, corrections: Sequence[tuple[str, str]]) -> Leaderboard:
    """``board`` with each ``(team, text)`` appended to that team's published Note and to the notes.

    The published value itself is left as printed: the leaderboard shows both figures and says so,
    never silently replacing what the organisers published.
    """
    if not corrections:
        return board
    rows = board.rows.copy()
    published = rows["source"] == "published"
    for team, text in corrections:
        match = published & (rows["team"] == team)
        rows.loc[match, "note"] = [f"{note}; {text}" if note else text for note in rows.loc[match, "note"]]
    notes = (*board.notes, *(f"printed table vs organisers' counter: {text}" for _, text in corrections))
    return replace(board, rows=rows, notes=notes)
