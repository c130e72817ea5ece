"""`esr summary`: params, FLOPs, activations and #conv of submissions, as the organisers counted them."""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from harness.atomic import write_json_atomic
from harness.commands._common import add_zoo_option
from harness.complexity import DEFAULT_INPUT_SIZE, count_complexity, parse_input_size
from harness.errors import HarnessError
from harness.submissions import build_model, resolve_many

NAME = "summary"
HELP = "count params, FLOPs, activations and #conv of submissions (CPU, no weights or data needed)"
EXAMPLE = "esr summary imdn_baseline rfdn_baseline clb_imdn --json complexity.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "submissions", nargs="+", metavar="SUBMISSION", help="bundled name, manifest path or ntire2022:<team>"
    )
    parser.add_argument(
        "--input-size",
        default="x".join(map(str, DEFAULT_INPUT_SIZE)),
        metavar="CxHxW",
        help="low-resolution input size the counts are taken at (default: %(default)s, the challenge's)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the counts to this JSON file")
    add_zoo_option(parser)


def run(args: argparse.Namespace) -> int:
    try:
        input_size = parse_input_size(args.input_size)
    except ValueError as error:
        raise HarnessError(f"--input-size: {error}") from None
    records = []
    for submission in resolve_many(args.submissions, zoo=args.zoo):
        complexity = count_complexity(build_model(submission), input_size)
        records.append(
            {"submission": submission.name, **complexity.as_dict(), "input_size": list(input_size)}
        )
    rows = [
        (
            r["submission"],
            f"{r['params']:,}",
            f"{r['params'] / 1e6:.4f}",
            f"{r['flops'] / 1e9:.2f}",
            f"{r['activations'] / 1e6:.2f}",
            r["num_conv"],
        )
        for r in records
    ]
    headers = ("submission", "params", "params [M]", "FLOPs [G]", "activations [M]", "#conv")
    align = ("left", "right", "right", "right", "right", "right")
    print(tabulate(rows, headers=headers, colalign=align, disable_numparse=True))
    print(f"\nat a 1x{'x'.join(map(str, input_size))} input; FLOPs are multiply-accumulates")
    if args.json is not None:
        write_json_atomic(args.json, records)
    return 0
