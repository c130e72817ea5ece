"""`esr summary`: params, FLOPs, activations and #conv of submissions, as the organisers counted them."""

from __future__ import annotations

import argparse
import os
import traceback
from pathlib import Path
from typing import Any

import torch
from tabulate import tabulate

from harness.atomic import write_json_atomic
from harness.commands._common import add_zoo_option
from harness.complexity import DEFAULT_INPUT_SIZE, count_complexity, parse_input_size
from harness.errors import HarnessError
from harness.submissions import Submission, build_model, resolve_many

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
    records = [_count(submission, input_size) for submission in resolve_many(args.submissions, zoo=args.zoo)]
    counted = [r for r in records if r["status"] == "ok"]
    rows = [
        (
            r["submission"],
            f"{r['params']:,}",
            f"{r['params'] / 1e6:.4f}",
            f"{r['flops'] / 1e9:.2f}",
            f"{r['activations'] / 1e6:.2f}",
            r["num_conv"],
        )
        for r in counted
    ]
    headers = ("submission", "params", "params [M]", "FLOPs [G]", "activations [M]", "#conv")
    align = ("left", "right", "right", "right", "right", "right")
    print(tabulate(rows, headers=headers, colalign=align, disable_numparse=True))
    print(f"\nat a 1x{'x'.join(map(str, input_size))} input; FLOPs are multiply-accumulates")
    for r in records:
        if r["status"] != "ok":
            print(f"{r['status'].upper()} {r['submission']}: {r['error']}")
    if args.json is not None:
        write_json_atomic(args.json, records)
    return 0 if len(counted) == len(records) else 1


def _count(submission: Submission, input_size: tuple[int, int, int]) -> dict[str, Any]:
    """One JSON entry; a model that cannot be built is recorded with its reason, never fatal."""
    record: dict[str, Any] = {"submission": submission.name}
    if submission.official_model_id is not None:
        record.update(team=submission.team, official_model_id=submission.official_model_id)
    try:
        complexity = count_complexity(build_model(submission), input_size).as_dict()
    except Exception as error:  # noqa: BLE001 - one failing model never stops the others
        needs_gpu = submission.needs_cuda or _raised_in_torch_cuda(error)
        status = "needs_gpu" if needs_gpu and not torch.cuda.is_available() else "failed"
        message = str(error) if isinstance(error, HarnessError) else f"{type(error).__name__}: {error}"
        return {**record, "status": status, "error": message, "input_size": list(input_size)}
    return {**record, "status": "ok", "error": None, **complexity, "input_size": list(input_size)}


def _raised_in_torch_cuda(error: BaseException) -> bool:
    """True when the failure (or what it wraps) came from torch.cuda: code that assumes a GPU."""
    current: BaseException | None = error
    while current is not None:
        frames = traceback.extract_tb(current.__traceback__)
        if any(f"torch{os.sep}cuda{os.sep}" in frame.filename for frame in frames):
            return True
        current = current.__cause__ or current.__context__
    return False
