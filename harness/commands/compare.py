"""`esr compare`: is B faster than A? Paired runtime ratios to a reference, with a decision."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.atomic import write_json_atomic
from harness.commands._common import add_run_options, run_evaluation
from harness.comparison import Comparison, ComparisonDocument, compare_record
from harness.terminal_summary import clock_note
from harness.texttable import format_table

NAME = "compare"
HELP = (
    "compare the runtime of submissions with the first one's, timed side by side (faster/slower/equivalent)"
)
EXAMPLE = (
    "esr compare known_cost known_cost_plus2 --data samples --device cpu --json compare.json\n"
    "  esr report --compare compare.json --out compare.html   (the comparison as an HTML section)\n"
    "  with two submissions the exit code is the decision about the second:\n"
    "  0 faster, 5 slower, 4 equivalent (within --resolution), 3 undecided (the cap came first),\n"
    "  1 a submission failed, 2 bad input"
)

EXIT_CODES = {"faster": 0, "slower": 5, "equivalent": 4, "undecided": 3}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", help="the submission the others are compared with")
    parser.add_argument("others", nargs="+", metavar="SUBMISSION", help="submissions compared with it")
    add_run_options(parser)
    parser.add_argument(
        "--json", type=Path, default=None, help="write each comparison (decision, ratio, interval) here"
    )


def _table(reference: str, comparisons: list[Comparison]) -> str:
    rows = []
    for item in comparisons:
        ratio = f"{item.ratio:.4f}" if item.ratio is not None else "-"
        interval = f"{item.interval[0]:.4f}-{item.interval[1]:.4f}" if item.interval else "-"
        rounds = (
            f"{item.rounds_used} ({item.stop_reason})" if item.stop_reason else str(item.rounds_used or "-")
        )
        rows.append([item.submission, ratio, interval, item.decision, rounds])
    headers = ["submission", f"x {reference}", "95% interval", "decision", "rounds"]
    return format_table(headers, rows, numeric=(1,))


def run(args: argparse.Namespace) -> int:
    args.submissions = [args.reference, *args.others]
    document = run_evaluation(args, reference=True)
    compared = [record for record in document["results"] if record["submission"] != document["baseline"]]
    comparisons = [compare_record(record, args.resolution) for record in compared]
    print(_table(document["baseline"], comparisons))
    note = clock_note(document)
    if note:
        print(note)
    if args.json is not None:
        written = ComparisonDocument(document["baseline"], args.resolution, tuple(comparisons))
        write_json_atomic(args.json, written.as_dict())
    if any(record["status"] != "ok" for record in document["results"]):
        return 1
    return EXIT_CODES[comparisons[0].decision] if len(comparisons) == 1 else 0
