"""`esr check`: evaluate one submission with its baseline and judge the challenge constraints."""

from __future__ import annotations

import argparse

from harness.commands._common import add_run_options, run_evaluation
from harness.terminal_summary import constraint_table

NAME = "check"
HELP = (
    "check a submission against the protocol's constraints "
    "(exit 0 when all pass, 1 when one fails, 3 when a runtime verdict is inconclusive)"
)
EXAMPLE = "esr check clb_imdn --data samples --device cpu"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submission", help="bundled name, or path to a submission.yaml or its folder")
    add_run_options(parser)


def run(args: argparse.Namespace) -> int:
    args.submissions = [args.submission]
    document = run_evaluation(args)
    record = next(r for r in document["results"] if r.get("role") == "submission")
    print(constraint_table(record))  # a failure's reason is in it once, under the table
    if record.get("valid") is None and record["status"] == "ok":
        return 3  # inconclusive: no constraint failed, but a runtime interval straddles its limit
    return 0 if record.get("valid") else 1
