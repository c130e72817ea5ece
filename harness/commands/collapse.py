"""`esr collapse`: fold a training checkpoint into released-format IMDN weights plus a submission."""

from __future__ import annotations

import argparse

from harness.training.export import export_checkpoint

NAME = "collapse"
HELP = "collapse an `esr train` checkpoint into IMDN weights (team26 format) plus a submission.yaml"
EXAMPLE = (
    "esr collapse results/runs/train/clb_imdn_stage2/best.pth --out results/runs/train/clb_imdn_collapsed.pth"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="best.pth or last.pth written by `esr train`")
    parser.add_argument("--out", required=True, help="weights file to write (.pth)")
    parser.add_argument(
        "--name", help="submission name in the written submission.yaml (default: <run>_collapsed)"
    )


def run(args: argparse.Namespace) -> int:
    manifest = export_checkpoint(args.checkpoint, args.out, name=args.name)
    print(f"wrote {args.out} and {manifest}; evaluate with: esr evaluate {manifest.parent}")
    return 0
