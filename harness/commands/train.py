"""`esr train`: one training stage of the collapsible-linear-block IMDN from a YAML config."""

from __future__ import annotations

import argparse
import os

from harness.training import distributed
from harness.training.config import load_config

NAME = "train"
HELP = "train the CLB-IMDN (one stage, from a YAML config); --nproc N runs data-parallel under torchrun"
EXAMPLE = "esr train --config configs/clb_imdn_stage1.yaml --data /data/DIV2K --nproc 2"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, help="training config (YAML), e.g. configs/clb_imdn_stage1.yaml"
    )
    parser.add_argument(
        "--data",
        help="training data: DIV2K root, any folder of HR images, or a dataset name (overrides data.train)",
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override config values by dotted key, e.g. --set optim.iterations=20 data.batch_size=8",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in the config's output_dir bit-for-bit (start it when there is none yet)",
    )
    parser.add_argument("--nproc", type=int, default=1, help="processes (GPUs) for DistributedDataParallel")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (the CSV log is still written)"
    )


def _esr_argv(args: argparse.Namespace) -> list[str]:
    """This command's arguments without --nproc, for the processes torchrun starts."""
    argv = ["train", "--config", args.config]
    if args.data is not None:
        argv += ["--data", args.data]
    if args.set:
        argv += ["--set", *args.set]
    if args.resume:
        argv.append("--resume")
    if args.no_progress:
        argv.append("--no-progress")
    return argv


def run(args: argparse.Namespace) -> int:
    ctx = distributed.context_from_env(dict(os.environ))
    # cuBLAS is deterministic only with a fixed workspace, which must be chosen before CUDA starts;
    # set here (inherited by torchrun's workers) unless the user chose one.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    config = load_config(
        args.config, data_override=args.data, overrides=args.set
    )  # config errors before any launch
    if args.nproc > 1 and not ctx.enabled:
        return distributed.launch_torchrun(args.nproc, _esr_argv(args))

    from harness.training.loop import prepare, train

    prepared = prepare(config, source=args.config, resume=args.resume, ctx=ctx)
    result = train(prepared, show_progress=not args.no_progress)
    if ctx.is_main:
        best = result.best
        print(
            f"{config.name}: {result.iterations} iterations; best validation PSNR {best['psnr_rgb']:.3f} dB "
            f"(RGB) at iteration {best['iteration']}; checkpoints in {config.output_dir}"
        )
    return 0
