"""`esr leaderboard`: rank measured runs (and the published results) in the official or Table-2 format."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.atomic import write_text_atomic
from harness.commands._common import leaderboard_of
from harness.leaderboard import DEFAULT_WIDTH, FORMATS, load_run, render, styles, write_plot

NAME = "leaderboard"
HELP = (
    "Rank run results in the NTIRE 2022 track format, the seed's Table 2 or a 2024+ edition's score, "
    "beside the published ones."
)
EXAMPLE = (
    "esr leaderboard results/runs/latest --published --style ntire2022 --plot board.png\n"
    "  esr leaderboard --published    (the official table and the check that its ranks are reproduced)\n"
    "  esr leaderboard --style ntire2026 --published    (the 2026 results.txt scored and ranked)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs",
        nargs="*",
        metavar="RUN_DIR_OR_JSON",
        help="run directories (holding results.json) or run JSON files from `esr evaluate --json`",
    )
    parser.add_argument(
        "--published",
        action="store_true",
        help="add the published rows (official NTIRE 2022 table, the seed's Table 2 with --style table2, "
        "or, with an edition's score style, its results.txt where the edition publishes one)",
    )
    parser.add_argument(
        "--style",
        choices=styles(),
        default="ntire2022",
        help="table layout: the 2022 tracks, Table 2, or a 2024+ edition's score (default ntire2022)",
    )
    parser.add_argument("--format", choices=FORMATS, default="md", help="output format (default md)")
    parser.add_argument(
        "--width",
        type=int,
        default=DEFAULT_WIDTH,
        metavar="COLUMNS",
        help=f"cut md tables into column groups no wider than this (default {DEFAULT_WIDTH}; 0: one table)",
    )
    parser.add_argument(
        "--out", type=Path, help="write the table to this file (atomically) instead of stdout"
    )
    parser.add_argument(
        "--plot", type=Path, metavar="PNG", help="also draw PSNR against runtime ratio to this PNG"
    )


def run(args: argparse.Namespace) -> int:
    runs = [load_run(path) for path in args.runs]
    board = leaderboard_of(runs, style=args.style, published=args.published)
    text = render(board, args.format, width=args.width)
    if args.out is not None:
        write_text_atomic(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.format == "csv":
        # CSV carries the table only; the notes (what was measured, reproduction check) go to stderr.
        for note in board.notes:
            print(f"note: {note}", file=sys.stderr)
    if args.plot is not None:
        write_plot(board, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
