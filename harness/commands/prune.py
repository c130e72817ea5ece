"""`esr prune`: remove whole blocks from the IMDN baseline, greedily by calibration PSNR."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from harness.atomic import atomic_path, write_json_atomic
from harness.commands._common import add_weights_source_options
from harness.data import open_dataset
from harness.errors import HarnessError
from harness.models.pruning import MAX_BLOCKS, MIN_BLOCKS, calibration_set, greedy_prune
from harness.submissions import load_model, resolve_submission, sha256_file

NAME = "prune"
HELP = "prune the IMDN baseline to fewer blocks (greedy, least PSNR loss) and write the weights"
EXAMPLE = "esr prune --blocks 7 --out imdn_pruned_nb7.pth"

SOURCE_SUBMISSION = "imdn_baseline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--blocks",
        type=int,
        required=True,
        choices=range(MIN_BLOCKS, MAX_BLOCKS + 1),
        metavar=f"{{{MIN_BLOCKS}..{MAX_BLOCKS}}}",
        help="blocks to keep",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="pruned weights file; a JSON record goes beside it (.json)"
    )
    parser.add_argument(
        "--calibration",
        default="samples",
        help="dataset the PSNR criterion is measured on: 'samples' (default) or a dataset folder",
    )
    parser.add_argument(
        "--crop",
        type=int,
        default=96,
        help="centre crop of each calibration LR image, in pixels (default: %(default)s; keeps it fast)",
    )
    parser.add_argument(
        "--weights", type=Path, default=None, help="8-block IMDN weights to prune (default: the baseline's)"
    )
    add_weights_source_options(parser)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--quiet", action="store_true", help="print only the result")


def run(args: argparse.Namespace) -> int:
    if args.crop < 8:
        raise HarnessError(f"--crop: must be at least 8 pixels, got {args.crop}")
    sidecar = args.out.with_suffix(".json")
    if sidecar == args.out:
        raise HarnessError(f"--out: {args.out} would be overwritten by its own JSON record; use a .pth name")
    submission = resolve_submission(SOURCE_SUBMISSION)
    loaded = load_model(
        submission,
        weights=args.weights,
        model_zoo=args.model_zoo,
        cache_dir=args.weights_cache,
        trust_weights=args.trust_weights,
    )
    dataset = open_dataset(args.calibration, scale=submission.scale)
    images = calibration_set(dataset, crop=args.crop, scale=submission.scale)
    result = greedy_prune(
        loaded.model.state_dict(),
        args.blocks,
        images,
        input_range=submission.input_range,
        device=args.device,
        progress=None if args.quiet else print,
    )
    with atomic_path(args.out) as tmp:
        torch.save(result.state_dict, tmp)
    record = {
        "source": {
            "submission": submission.name,
            "weights_path": str(loaded.weights_path),
            "weights_sha256": loaded.weights_sha256,
        },
        "calibration": {**dataset.describe(), "crop": args.crop, "metric": "psnr_rgb"},
        **result.as_dict(),
        "weights": {"file": args.out.name, "sha256": sha256_file(args.out)},
        "model": {"module": "harness.models.imdn", "class": "IMDN", "kwargs": {"nb": args.blocks}},
    }
    write_json_atomic(sidecar, record)
    removed = ", ".join(map(str, result.removed_blocks)) or "none"
    print(
        f"PSNR before fine-tuning: {result.psnr:.4f} dB on {dataset.name} "
        f"({len(images)} images, {args.crop}px crops; {result.source_blocks} blocks: {result.baseline_psnr:.4f} dB)"
    )
    print(f"removed blocks (0-based, in order): {removed}; kept: {', '.join(map(str, result.kept_blocks))}")
    print(f"wrote {args.out} (IMDN nb={args.blocks}) and {sidecar}")
    return 0
