"""`esr list`: the bundled submissions, as a table or as JSON."""

from __future__ import annotations

import argparse
import json

from tabulate import tabulate

from harness.submissions import Submission, list_bundled, resolve_submission

NAME = "list"
HELP = "list the bundled submissions (name, team, description)"
EXAMPLE = "esr list --json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print a JSON list of the full manifests instead of a table"
    )


def run(args: argparse.Namespace) -> int:
    submissions = [resolve_submission(name) for name in list_bundled()]
    if args.json:
        print(json.dumps([submission.to_dict() for submission in submissions], indent=2))
        return 0
    rows = [
        (sub.name, sub.team, sub.description, f"{sub.input_range:g}", _weights(sub)) for sub in submissions
    ]
    print(tabulate(rows, headers=("name", "team", "description", "input range", "weights")))
    print(
        "\nAny folder with a submission.yaml (or the file itself) can be named by its path; "
        "ntire2022:<team> names an official model (needs --zoo)."
    )
    return 0


def _weights(submission: Submission) -> str:
    """The weights file name; '--weights' when none is released; '-' for a parameter-free model."""
    if submission.weights is None:
        return "-"
    return submission.weights.file or "--weights"
