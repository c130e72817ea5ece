"""`esr summary`: params, FLOPs, activations and #conv of submissions, as the organisers counted them."""

from __future__ import annotations

import argparse
import os
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from tabulate import tabulate

from harness.atomic import write_json_atomic
from harness.catalog import resolve_many
from harness.commands._common import add_zoo_option, zoo_checkouts
from harness.complexity import DEFAULT_INPUT_SIZE, complexity_record, parse_input_size
from harness.errors import HarnessError
from harness.protocols import load_protocol
from harness.submissions import Submission, build_model
from harness.submissions.building import run_after_load
from harness.submissions.manifest import zoo_edition
from harness.submissions.placement import CudaOnCpu

NAME = "summary"
HELP = "count params, FLOPs, activations and #conv of submissions (CPU, no weights or data needed)"
EXAMPLE = (
    "esr summary imdn_baseline span --json complexity.json\n  esr summary ntire2026:all --zoo ~/NTIRE2026_ESR"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "submissions",
        nargs="+",
        metavar="SUBMISSION",
        help="bundled name, manifest path or <edition>:<team|id|all> (ntire2022: ... ntire2026:)",
    )
    parser.add_argument(
        "--input-size",
        default="x".join(map(str, DEFAULT_INPUT_SIZE)),
        metavar="CxHxW",
        help="low-resolution input size the counts are taken at (default: %(default)s, the challenge's)",
    )
    parser.add_argument(
        "--protocol",
        default="ntire2022",
        help="whose FLOP counter is official for bundled and manifest submissions (default: %(default)s); "
        "a zoo model is always counted by its own edition's",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the counts to this JSON file")
    add_zoo_option(parser)


def run(args: argparse.Namespace) -> int:
    try:
        input_size = parse_input_size(args.input_size)
    except ValueError as error:
        raise HarnessError(f"--input-size: {error}") from None
    default_counter = load_protocol(args.protocol).flop_counter
    submissions = resolve_many(args.submissions, zoo=zoo_checkouts(args.zoo, args.submissions))
    records = [_count(sub, _counter_of(sub, default_counter), input_size) for sub in submissions]
    counted = [r for r in records if r["status"] == "ok"]
    print(tabulate(_rows(counted), headers=_HEADERS, colalign=_ALIGN, disable_numparse=True))
    print(
        f"\nat a 1x{'x'.join(map(str, input_size))} input; FLOPs are multiply-accumulates by the official "
        "counter (fvcore from 2024, the organisers' own before), the other counter's beside; "
        "'>=' marks an fvcore figure that leaves out operators that can carry real work"
    )
    print(_counts_by_edition(records))
    for r in records:
        if r["status"] != "ok":
            print(f"{r['status'].upper()} {r['submission']}: {r['error']}")
    if args.json is not None:
        write_json_atomic(args.json, records)
    return 0 if len(counted) == len(records) else 1


_HEADERS = (
    "submission",
    "params",
    "params [M]",
    "FLOPs [G]",
    "counter",
    "other [G]",
    "activations [M]",
    "#conv",
)
_ALIGN = ("left", "right", "right", "right", "left", "right", "right", "right")


def _giga(value: float | None, lower_bound: bool = False) -> str:
    return "-" if value is None else f"{'>=' if lower_bound else ''}{value / 1e9:.2f}"


def _rows(counted: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    rows = []
    for r in counted:
        other = "flops_fvcore" if r["flops_counter"] == "ntire2022" else "flops_ntire2022"
        other_bound = other == "flops_fvcore" and bool(r["fvcore_uncounted_work"])
        rows.append(
            (
                r["submission"],
                f"{r['params']:,}",
                f"{r['params'] / 1e6:.4f}",
                _giga(r["flops"], r["flops_lower_bound"]),
                r["flops_counter"],
                _giga(r[other], other_bound),
                "-" if r["activations"] is None else f"{r['activations'] / 1e6:.2f}",
                "-" if r["num_conv"] is None else r["num_conv"],
            )
        )
    return rows


def _counts_by_edition(records: list[dict[str, Any]]) -> str:
    """One line per zoo edition (and one for the other submissions): how many were counted."""
    groups = Counter(zoo_edition(r["submission"]) or "other" for r in records)
    counted = Counter(zoo_edition(r["submission"]) or "other" for r in records if r["status"] == "ok")
    lines = []
    for group, total in groups.items():
        label = "other submissions" if group == "other" else group
        statuses = Counter(
            r["status"]
            for r in records
            if (zoo_edition(r["submission"]) or "other") == group and r["status"] != "ok"
        )
        rest = "".join(f", {count} {status}" for status, count in sorted(statuses.items()))
        lines.append(f"{label}: {counted[group]} of {total} counted{rest}")
    return "\n".join(lines)


def _counter_of(submission: Submission, default: str) -> str:
    """The official FLOP counter for one submission: its zoo edition's, else the --protocol's."""
    edition = zoo_edition(submission.name)
    return load_protocol(edition).flop_counter if edition is not None else default


def _count(submission: Submission, counter: str, input_size: tuple[int, int, int]) -> dict[str, Any]:
    """One JSON entry; a model that cannot be built is recorded with its reason, never fatal."""
    record: dict[str, Any] = {"submission": submission.name}
    if submission.official_model_id is not None:
        record.update(team=submission.team, official_model_id=submission.official_model_id)
    if submission.unsupported is not None:
        return {
            **record,
            "status": "unsupported",
            "error": submission.unsupported,
            "input_size": list(input_size),
        }
    mapping = CudaOnCpu()  # counts are taken on the CPU: code written for CUDA is placed there
    try:
        with mapping:
            model = run_after_load(submission, build_model(submission))
            complexity = complexity_record(model, counter, input_size)
    except Exception as error:  # noqa: BLE001 - one failing model never stops the others
        needs_gpu = submission.needs_cuda or _raised_in_torch_cuda(error)
        status = "needs_gpu" if needs_gpu and not torch.cuda.is_available() else "failed"
        message = str(error) if isinstance(error, HarnessError) else f"{type(error).__name__}: {error}"
        return {**record, "status": status, "error": message, "input_size": list(input_size)}
    return {
        **record,
        "status": "ok",
        "error": None,
        **complexity,
        "placement": mapping.placement,
        "input_size": list(input_size),
    }


def _raised_in_torch_cuda(error: BaseException) -> bool:
    """True when the failure (or what it wraps) came from torch.cuda: code that assumes a GPU."""
    current: BaseException | None = error
    while current is not None:
        frames = traceback.extract_tb(current.__traceback__)
        if any(f"torch{os.sep}cuda{os.sep}" in frame.filename for frame in frames):
            return True
        current = current.__cause__ or current.__context__
    return False
