"""`esr bench train`: cost of a training step with explicit and online collapsible blocks."""

from __future__ import annotations

import argparse

NAME = "bench"
HELP = "benchmark training: time per step and peak memory of the explicit and online CLB forms"
EXAMPLE = "esr bench train --patch 64 160 --batch 2 --steps 5 --json results/bench_train.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["train"], help="what to benchmark")
    parser.add_argument("--patch", type=int, nargs="+", default=[64, 160, 256], help="LR patch sizes")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: 16 on CUDA, 2 on CPU)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement (after 1 warm-up)")
    parser.add_argument("--expansion", type=int, default=4, help="expansion of the collapsible blocks")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--json", help="write {device, results} to this file")


def run(args: argparse.Namespace) -> int:
    from harness.atomic import write_json_atomic
    from harness.errors import HarnessError
    from harness.timing import device_fingerprint, device_name, resolve_device
    from harness.training.bench import format_table, run_benchmark
    from harness.training.config import ModelConfig

    device = resolve_device(args.device)
    if any(p < 8 for p in args.patch) or args.steps < 1 or (args.batch is not None and args.batch < 1):
        raise HarnessError("--patch must be at least 8, --steps and --batch at least 1")
    batch = args.batch or (16 if device.type == "cuda" else 2)
    model_config = ModelConfig(expansion=args.expansion)
    results = run_benchmark(
        patches=args.patch, batch=batch, steps=args.steps, device=device, model_config=model_config
    )
    fingerprint = device_fingerprint(device)
    print(format_table(results, f"{device.type} ({device_name(fingerprint, fallback=device.type)})"))
    if args.json:
        write_json_atomic(args.json, {"device": fingerprint, "results": results})
    return 0
