"""`esr package`: the challenge submission zip of one submission of a run (SR images + readme.txt)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.leaderboard import load_run
from harness.package import README_NAME, build_package

NAME = "package"
HELP = "build the NTIRE submission zip of a run: its SR images, named as the HR images, and readme.txt"
EXAMPLE = (
    "esr package results/runs/div2k --submission clb_imdn --extra-data 0 --out clb_imdn.zip\n"
    "  (the run must be complete and made with `esr evaluate --save-images`)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run", metavar="RUN_DIR_OR_JSON", help="a run directory (holding results.json and images/)"
    )
    parser.add_argument("--submission", required=True, help="which result of the run to package")
    parser.add_argument(
        "--extra-data",
        type=int,
        choices=[0, 1],
        required=True,
        help="1 if the model was trained on data beyond the challenge's training set, else 0 (no run can tell)",
    )
    parser.add_argument(
        "--description",
        default=None,
        help="the method, code and dependencies, for readme.txt's 'Other description' (the run's facts are added)",
    )
    parser.add_argument("--out", type=Path, default=None, help="the zip to write (default: <submission>.zip)")
    parser.add_argument(
        "--data", default=None, help="the run's dataset folder, when it has moved since the run"
    )


def run(args: argparse.Namespace) -> int:
    out = args.out or Path(f"{args.submission}.zip")
    package = build_package(
        load_run(args.run),
        args.submission,
        out,
        extra_data=bool(args.extra_data),
        description=args.description,
        data=args.data,
    )
    print(f"wrote {package.path}: {len(package.images)} SR images ({package.images[0]} …) and {README_NAME}:")
    print(package.readme, end="")
    return 0
