"""`esr data`: make MATLAB-exact LR images, and show what a dataset folder is detected as."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "data"
HELP = "datasets: make LR images from HR (MATLAB-exact bicubic) or show how a folder is read"
EXAMPLE = (
    "esr data lr --scale 4 DIV2K/DIV2K_valid_HR --out DIV2K/DIV2K_valid_LR_bicubic/X4\n"
    "  esr data show ../shared/datasets/Set5"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    lr = actions.add_parser(
        "lr",
        help="write <name>x<scale>.png for every image of HR_DIR (DIV2K naming)",
        description="Mod-crop each HR image to the scale and resize it like MATLAB imresize(hr, 1/scale, "
        "'bicubic'); files are written atomically as <name>x<scale>.png.",
        epilog="Example:\n  esr data lr --scale 4 DIV2K/DIV2K_valid_HR --out DIV2K/DIV2K_valid_LR_bicubic/X4",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lr.add_argument("hr_dir", type=Path, metavar="HR_DIR", help="folder of HR images")
    lr.add_argument("--out", type=Path, required=True, help="folder for the LR images (created if needed)")
    lr.add_argument("--scale", type=int, choices=[2, 3, 4], default=4, help="downscaling factor (default: 4)")
    lr.add_argument("--quiet", action="store_true", help="no progress bar")

    show = actions.add_parser(
        "show",
        help="print the detected layout, image count and content hash of a dataset",
        epilog="Example:\n  esr data show DIV2K --split test",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("data", nargs="?", default="samples", help="dataset folder, or 'samples' (default)")
    show.add_argument("--split", choices=["val", "test"], default=None, help="DIV2K split (default: val)")
    show.add_argument("--scale", type=int, choices=[2, 3, 4], default=4, help="SR factor (default: 4)")
    show.add_argument("--allow-partial", action="store_true", help="accept a DIV2K split with fewer images")


def run(args: argparse.Namespace) -> int:
    from harness.data import make_lr_folder, open_dataset

    if args.action == "lr":
        written = make_lr_folder(args.hr_dir, args.out, scale=args.scale, progress=not args.quiet)
        print(f"wrote {len(written)} LR images (x{args.scale}) to {args.out}")
        return 0
    dataset = open_dataset(args.data, split=args.split, scale=args.scale, allow_partial=args.allow_partial)
    print(json.dumps(dataset.describe(), indent=2))
    return 0
