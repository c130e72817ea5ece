"""`esr report`: one self-contained HTML page of runs, with visual comparisons of their SR images."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.atomic import write_text_atomic
from harness.commands._common import add_weights_source_options, add_zoo_option, leaderboard_of
from harness.comparison import load_comparisons
from harness.errors import HarnessError
from harness.leaderboard import load_run, styles
from harness.timing import resolve_device
from harness.webreport import ReportSettings, build_report, parse_crop

NAME = "report"
HELP = "write a self-contained HTML report of runs: leaderboard, plot, per-image table, visual comparisons"
EXAMPLE = (
    "esr report results/runs/set5 --out report.html --crop img_001:100,120,64,64\n"
    "  esr report --compare compare.json --out compare.html   (the JSON of esr compare, with or without runs)\n"
    "  (open report.html in any browser; it needs no network. Evaluate with --save-images so that the\n"
    "  crops use the run's own SR images; otherwise the submissions are run again on the images shown)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs",
        nargs="*",
        metavar="RUN_DIR_OR_JSON",
        help="run directories (holding results.json) or run JSON files",
    )
    parser.add_argument(
        "--compare",
        action="append",
        type=Path,
        default=[],
        metavar="JSON",
        help="a document of `esr compare --json` to show in a section of runtime comparisons (repeatable)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("report.html"), help="the HTML file (default report.html)"
    )
    parser.add_argument(
        "--style", choices=styles(), default="ntire2022", help="leaderboard layout (default ntire2022)"
    )
    parser.add_argument(
        "--published",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show the published rows beside the measured ones (default: yes)",
    )
    parser.add_argument(
        "--crop",
        action="append",
        default=[],
        metavar="IMAGE:x,y,w,h",
        help="a crop by hand, in HR pixels (repeatable); other images get the crop where outputs differ most",
    )
    parser.add_argument(
        "--images",
        nargs="+",
        default=[],
        metavar="IMAGE",
        help="the images to compare (default: see --max-images)",
    )
    parser.add_argument(
        "--max-images",
        type=int,
        default=12,
        help="compare every image up to this many, else those whose PSNR varies most across submissions (default 12)",
    )
    parser.add_argument(
        "--crop-size", type=int, default=64, help="side of automatic crops, HR pixels (default 64)"
    )
    parser.add_argument(
        "--zoom", type=int, default=3, help="nearest-neighbour enlargement of the crops (default 3)"
    )
    parser.add_argument(
        "--data", default=None, help="the runs' dataset folder, when it has moved since the run"
    )
    parser.add_argument("--no-comparisons", action="store_true", help="leave out the visual comparisons")
    parser.add_argument(
        "--device",
        default="cpu",
        help="where submissions run when SR images must be made again (default cpu)",
    )
    add_weights_source_options(parser)
    add_zoo_option(parser)


def run(args: argparse.Namespace) -> int:
    if not args.runs and not args.compare:
        raise HarnessError("esr report: give run directories or JSON files, or --compare JSON (or both)")
    runs = [load_run(path) for path in args.runs]
    comparisons = [(str(path), load_comparisons(path)) for path in args.compare]
    board = leaderboard_of(runs, style=args.style, published=args.published) if runs else None
    settings = ReportSettings(
        comparisons=not args.no_comparisons,
        images=tuple(args.images),
        crops=tuple(parse_crop(spec) for spec in args.crop),
        max_images=args.max_images,
        crop_size=args.crop_size,
        zoom=args.zoom,
        data=args.data,
        device=resolve_device(args.device),
        model_zoo=args.model_zoo,
        zoo=args.zoo,
        weights_cache=args.weights_cache,
        trust_weights=args.trust_weights,
    )
    report = build_report(runs, board, settings, comparisons)
    write_text_atomic(args.out, report.html)
    for note in report.notes:
        print(note)
    rows = report.comparison_rows
    print(
        f"wrote {args.out} ({len(report.html) // 1024} KB, {rows} comparison row{'' if rows == 1 else 's'})"
    )
    return 0
