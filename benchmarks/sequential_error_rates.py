"""Error rates of the stopping rule of ``--rounds auto`` alone, by Monte Carlo (no timing).

Draws per-round log ratios of known truth and noise (independent, normal, seeded), runs the rule
round by round as the round loop does, and prints per case how often the final interval covers the
truth (or how often a ratio 2% off the limit is decided the wrong way), the mean rounds used and why
runs stopped; and, for the plan's looks, how often *any* look's interval misses, with the rule's
calibrated per-look level and with Bonferroni's. The numbers quoted in docs/rounds-until-decided.md.

    .venv/bin/python benchmarks/sequential_error_rates.py [--runs 1000]
"""

from __future__ import annotations

import argparse
import math
from collections import Counter

import numpy as np
from scipy.stats import t as student_t

from harness.timing.sequential import SequentialPlan, look, per_look_alpha


def _final(plan: SequentialPlan, truth: float, noise: float, rng: np.random.Generator):
    logs: list[float] = []
    while True:
        logs.append(math.log(truth) + float(rng.normal(0.0, noise)))
        result = look(logs, plan)
        if result.stop is not None:
            return result


def _any_look_misses(error: float, plan: SequentialPlan, runs: int, rng: np.random.Generator) -> float:
    values = rng.standard_normal((runs, plan.max_rounds))
    missed = np.zeros(runs, dtype=bool)
    for n in range(plan.min_rounds, plan.max_rounds + 1):
        half = student_t.ppf(1 - error / 2, n - 1) * values[:, :n].std(axis=1, ddof=1) / math.sqrt(n)
        missed |= np.abs(values[:, :n].mean(axis=1)) > half
    return float(missed.mean())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1000, help="simulated runs per case (default 1000)")
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    plan = SequentialPlan(limit=1.0, resolution=0.01)
    calibrated = per_look_alpha(plan.min_rounds, plan.max_rounds, plan.confidence)
    bonferroni = (1 - plan.confidence) / plan.looks
    print(f"{plan.looks} looks (rounds {plan.min_rounds}-{plan.max_rounds}), 95% together:")
    for name, error in (("calibrated", calibrated), ("Bonferroni", bonferroni)):
        missed = _any_look_misses(error, plan, 40 * args.runs, rng)
        print(f"  {name} per-look error {error:.5f}: some look misses in {missed:.4f} of runs")
    for noise in (0.01, 0.03, 0.08):
        finals = [_final(plan, 0.97, noise, rng) for _ in range(args.runs)]
        covered = sum(f.interval[0] <= 0.97 <= f.interval[1] for f in finals) / args.runs
        rounds = sum(f.rounds for f in finals) / args.runs
        stops = dict(sorted(Counter(f.stop for f in finals).items()))
        print(f"truth 0.97 noise {noise}: coverage {covered:.3f}, mean rounds {rounds:.1f}, stops {stops}")
    strict = SequentialPlan(limit=1.0, resolution=0.001)
    for truth in (1.02, 1 / 1.02):
        for noise in (0.01, 0.03):
            finals = [_final(strict, truth, noise, rng) for _ in range(args.runs)]
            decided = [f for f in finals if f.stop == "decided"]
            wrong = sum((f.interval[1] <= 1.0) != (truth <= 1.0) for f in decided) / args.runs
            rounds = sum(f.rounds for f in finals) / args.runs
            print(
                f"truth {truth:.4f} noise {noise}: decided {len(decided) / args.runs:.3f}, "
                f"wrong way {wrong:.3f}, mean rounds {rounds:.1f}"
            )


if __name__ == "__main__":
    main()
