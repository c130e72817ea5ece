"""`esr evaluate`: fidelity, runtime, memory and complexity of submissions, the official way."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands._common import add_run_options, default_run_dir, run_evaluation, write_run
from harness.integrity import integrity_failure
from harness.terminal_summary import results_table

NAME = "evaluate"
HELP = "evaluate submissions on a dataset (PSNR/SSIM, runtime, memory, complexity, constraints)"
EXAMPLE = (
    "esr evaluate clb_imdn imdn_baseline --data samples --device cpu --out results/runs/demo\n"
    "  esr evaluate ntire2022:all --zoo ~/NTIRE2022_ESR --data /data/DIV2K --devices cuda:0,cuda:1\n"
    "  esr evaluate ntire2022:all --zoo ~/NTIRE2022_ESR --data /data/DIV2K --device cuda --executor ray"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "submissions",
        nargs="+",
        metavar="SUBMISSION",
        help="bundled name (esr list), path to a submission.yaml or its folder, or ntire2022:<team|id|all>",
    )
    add_run_options(parser)
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: results/runs/<time>)")
    parser.add_argument("--json", type=Path, default=None, help="also write the run document here")
    parser.add_argument("--save-images", action="store_true", help="write SR PNGs under <out>/images/")


def run(args: argparse.Namespace) -> int:
    out_dir = args.out or default_run_dir()
    images = out_dir / "images" if args.save_images else None
    document = run_evaluation(args, save_images_dir=images, log_dir=out_dir / "logs")
    results_path = write_run(document, out_dir, args.json)
    print(results_table(document))
    print(f"results: {results_path}")
    # A submission's fault (it failed, or failed an integrity check) is exit 1; the others still ranked.
    failed = [
        record
        for record in document["results"]
        if record["status"] != "ok" or integrity_failure(record) is not None
    ]
    return 1 if failed else 0
