"""Does the per-call dither change an honest model's runtime? clb_imdn, dithered vs identical inputs.

Every timed call of the harness gets its LR image with a seeded ±1-level dither
(:mod:`harness.runner.dither`), so that a submission cannot answer repeated rounds from a cache.
That must cost an honest model nothing: this script times clb_imdn on the embedded samples in one
process, each image twice per round, once on a freshly dithered input and once on an identical copy
of the exact input (both made outside the timed span, the order alternating from image to image),
and reports the paired ratio dithered / identical over rounds with its 95% interval
(:func:`harness.timing.rounds.ratio_estimate`). Target: the ratio within 2% of 1, interval included.

    .venv/bin/python benchmarks/dither_runtime.py --rounds 10
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from harness.commands._common import env_path
from harness.data import open_dataset
from harness.metrics import to_tensor
from harness.runner import worker_threads
from harness.runner.dither import derive_seed, device_pixels, dithered
from harness.submissions import load_resolved, resolve_submission, resolve_weights
from harness.timing import make_timer, warm_up
from harness.timing.rounds import paired_round_ratios, ratio_estimate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--model-zoo", type=Path, default=env_path("ESR_MODEL_ZOO"), help="default: $ESR_MODEL_ZOO"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(worker_threads(None, device))
    submission = resolve_submission("clb_imdn")
    model = load_resolved(
        submission, resolve_weights(submission, model_zoo=args.model_zoo), device=device
    ).model
    images = [np.array(lr) for _, lr, _ in open_dataset("samples")]
    exact = [to_tensor(image, submission.input_range).to(device) for image in images]
    pixels = [device_pixels(image, device) for image in images]
    timer = make_timer(device)

    def timed(make_input: Callable[[], torch.Tensor]) -> float:
        lr = make_input()  # outside the timed span, as in the worker
        with torch.inference_mode():
            return timer.time(lambda: model(lr))[1]

    warm_up(timer, lambda: timed(lambda: exact[0].clone()), min_seconds=1.0, max_passes=20)
    latencies: dict[str, list[list[float]]] = {"dithered": [], "identical": []}
    for round_index in range(args.rounds):
        for mode in latencies.values():
            mode.append([])
        for index in range(len(images)):
            seed = derive_seed(args.seed, round_index, index)
            calls = {
                "dithered": lambda: dithered(pixels[index], seed, submission.input_range),  # noqa: B023
                "identical": lambda: exact[index].clone(),  # noqa: B023
            }
            order = ["dithered", "identical"] if (round_index + index) % 2 == 0 else ["identical", "dithered"]
            for mode in order:
                latencies[mode][-1].append(timed(calls[mode]))
    ratios = paired_round_ratios(latencies["dithered"], latencies["identical"])
    estimate = ratio_estimate(ratios, limit=1.02)
    mean = {mode: float(np.mean(values)) for mode, values in latencies.items()}
    print(f"clb_imdn on samples ({len(images)} images), {args.device}, {args.rounds} rounds")
    print(f"mean latency: dithered {mean['dithered']:.2f} ms, identical {mean['identical']:.2f} ms")
    print("per-round ratios dithered / identical: " + ", ".join(f"{ratio:.4f}" for ratio in ratios))
    low, high = estimate.interval or (estimate.value, estimate.value)
    print(f"ratio {estimate.value:.4f}, 95% interval [{low:.4f}, {high:.4f}] (target: within 2% of 1)")


if __name__ == "__main__":
    main()
