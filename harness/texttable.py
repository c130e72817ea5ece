"""Tables as text with no padding beyond the widest cell, so that they fit a terminal.

Two looks: plain (two spaces between columns, a dashed rule under the headers), for what the
commands print about a run, and Markdown pipe tables, for leaderboards that are also pasted into
documents. Numeric columns are aligned right.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

__all__ = ["format_table"]


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    markdown: bool = False,
    numeric: Collection[int] = (),
) -> str:
    """``rows`` of cell texts under ``headers``; the columns whose index is in ``numeric`` align right."""
    table = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[index]) for line in table) for index in range(len(headers))]
    if markdown:
        widths = [max(width, 2) for width in widths]

    def line(cells: list[str]) -> str:
        aligned = [
            cell.rjust(width) if index in numeric else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return f"| {' | '.join(aligned)} |" if markdown else "  ".join(aligned).rstrip()

    if markdown:
        rule = (
            "|"
            + "|".join(
                ("-" * (width + 1) + ":") if index in numeric else (":" + "-" * (width + 1))
                for index, width in enumerate(widths)
            )
            + "|"
        )
    else:
        rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(table[0]), rule, *(line(cells) for cells in table[1:])])
