"""Metrics speed: the harness's PSNR + SSIM on RGB and Y against the implementation it replaced.

Both compute the four protocol figures of one 2040x1356 SR/HR pair (the size of a DIV2K image).
They are timed in alternation, round after round, so that whatever else the machine is doing
affects both alike; the figure of merit is the ratio of their times within each round.

    .venv/bin/python benchmarks/metrics_speed.py --rounds 15

The replaced implementation is kept here, and only here, as the yardstick: SciPy's
``correlate1d`` for the SSIM window and float64 Y from ``np.dot`` (as the official code).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
from scipy.ndimage import correlate1d

from harness.metrics import fidelity, rgb_to_y
from harness.metrics.fidelity import C1, C2, gaussian_window

WINDOW = gaussian_window()


def _previous_filter(plane: np.ndarray) -> np.ndarray:
    return correlate1d(correlate1d(plane, WINDOW, axis=0), WINDOW, axis=1)[5:-5, 5:-5]


def _previous_ssim_plane(x: np.ndarray, y: np.ndarray) -> float:
    mu_x, mu_y = _previous_filter(x), _previous_filter(y)
    var_x = _previous_filter(x * x) - mu_x * mu_x
    var_y = _previous_filter(y * y) - mu_y * mu_y
    cov = _previous_filter(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + C1) * (2 * cov + C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + C1) * (var_x + var_y + C2)
    return float(np.mean(numerator / denominator))


def previous_fidelity(sr: np.ndarray, hr: np.ndarray, border: int) -> dict[str, float]:
    """The metrics as the harness computed them before (float64 throughout, SciPy filters)."""
    crop = (slice(border, -border), slice(border, -border))

    def y(img: np.ndarray) -> np.ndarray:
        return np.round(np.dot(img, [65.481, 128.553, 24.966]) / 255.0 + 16.0)

    def psnr(a: np.ndarray, b: np.ndarray) -> float:
        return 20 * math.log10(255.0 / math.sqrt(float(np.mean((a - b) ** 2))))

    def ssim(a: np.ndarray, b: np.ndarray) -> float:
        if a.ndim == 2:
            return _previous_ssim_plane(a, b)
        return float(np.mean([_previous_ssim_plane(a[..., c], b[..., c]) for c in range(3)]))

    s, h = sr[crop].astype(np.float64), hr[crop].astype(np.float64)
    sy, hy = y(sr)[crop], y(hr)[crop]
    return {"psnr_rgb": psnr(s, h), "psnr_y": psnr(sy, hy), "ssim_rgb": ssim(s, h), "ssim_y": ssim(sy, hy)}


def _pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (1356, 2040, 3), dtype=np.uint8)
    smooth = np.cumsum(rng.normal(0, 2, hr.shape), axis=1)
    sr = np.clip(hr + (smooth - smooth.mean()) % 17 - 8, 0, 255).astype(np.uint8)
    return sr, hr


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds (default 10)")
    args = parser.parse_args()
    sr, hr = _pair()
    hr_y = rgb_to_y(hr)
    candidates = {
        "harness": lambda: fidelity(sr, hr, border=4),
        "harness, HR Y shared": lambda: fidelity(sr, hr, border=4, hr_y=hr_y),
        "previous": lambda: previous_fidelity(sr, hr, 4),
    }
    scores = {name: run() for name, run in candidates.items()}  # warm-up, and the agreement check
    for key in scores["previous"]:
        print(f"{key}: harness {scores['harness'][key]!r}, previous {scores['previous'][key]!r}")
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.rounds):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    print(f"\n2040x1356 pair, {args.rounds} alternating rounds; seconds per call (median, min)")
    for name, values in times.items():
        print(f"  {name:22s} {statistics.median(values):.3f}  {min(values):.3f}")
    for name in ("harness", "harness, HR Y shared"):
        ratios = sorted(p / h for p, h in zip(times["previous"], times[name], strict=True))
        print(
            f"speed-up of '{name}' over 'previous', per round: median {statistics.median(ratios):.2f}x, "
            f"range {ratios[0]:.2f}x-{ratios[-1]:.2f}x"
        )


if __name__ == "__main__":
    main()
