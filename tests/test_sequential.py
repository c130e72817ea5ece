"""The sequential stopping rule: its error rates by Monte Carlo, and each reason to stop.

The Monte Carlo runs draw per-round log ratios of known truth and noise (seeded, no timing), run the
rule round by round as the round loop does, and count how often the final interval misses the truth
and how often a verdict lands on the wrong side of the limit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from harness.errors import HarnessError
from harness.timing.sequential import SequentialPlan, look, per_look_alpha

RUNS = 1000


def _run(plan: SequentialPlan, truth: float, noise: float, rng: np.random.Generator):
    """Rounds until the rule stops; the last look."""
    logs: list[float] = []
    while True:
        logs.append(math.log(truth) + float(rng.normal(0.0, noise)))
        result = look(logs, plan)
        if result.stop is not None:
            return result


@pytest.mark.parametrize("noise", [0.01, 0.03, 0.08])
def test_final_interval_covers_the_true_ratio_in_95_percent_of_runs(noise: float) -> None:
    rng = np.random.default_rng(1900 + int(noise * 1000))
    plan = SequentialPlan(limit=1.0, resolution=0.01)
    truth = 0.97
    covered = 0
    for _ in range(RUNS):
        final = _run(plan, truth, noise, rng)
        low, high = final.interval
        covered += low <= truth <= high
    assert covered / RUNS >= 0.95


@pytest.mark.parametrize("side", [1.02, 1 / 1.02])
@pytest.mark.parametrize("noise", [0.01, 0.03, 0.06])
def test_a_ratio_2_percent_off_the_limit_is_rarely_decided_the_wrong_way(side: float, noise: float) -> None:
    rng = np.random.default_rng(1901 + int(noise * 1000) + (side > 1))
    limit = 1.0
    plan = SequentialPlan(limit=limit, resolution=0.001)
    truth = limit * side
    wrong = decided = 0
    for _ in range(RUNS):
        final = _run(plan, truth, noise, rng)
        if final.stop != "decided":
            continue
        decided += 1
        said_under = final.interval[1] <= limit
        wrong += said_under != (truth <= limit)
    assert wrong / RUNS <= 0.025
    if noise == 0.01:  # a clear case is decided, not left open
        assert decided / RUNS >= 0.9


def _t_interval(logs: list[float], error: float) -> tuple[float, float]:
    """The t interval of two-sided error ``error``, written out from the textbook formula."""
    n = len(logs)
    mean = float(np.mean(logs))
    sd = float(np.std(logs, ddof=1))
    q = float(student_t.ppf(1 - error / 2, n - 1))
    return math.exp(mean - q * sd / math.sqrt(n)), math.exp(mean + q * sd / math.sqrt(n))


def _any_look_misses(error: float, min_rounds: int, max_rounds: int, runs: int, seed: int) -> float:
    """How often, in simulated runs of independent standard normal values, at least one look's t
    interval of two-sided error ``error`` misses 0: a simulation of its own (thresholds from
    the t quantile, not p-values), to check the level the rule calibrated with another."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((runs, max_rounds))
    missed = np.zeros(runs, dtype=bool)
    for n in range(min_rounds, max_rounds + 1):
        first = values[:, :n]
        half = student_t.ppf(1 - error / 2, n - 1) * first.std(axis=1, ddof=1) / math.sqrt(n)
        missed |= np.abs(first.mean(axis=1)) > half
    return float(missed.mean())


@pytest.mark.parametrize(("min_rounds", "max_rounds"), [(5, 30), (3, 12)])
def test_the_per_look_level_makes_all_looks_together_miss_in_5_percent_of_runs(
    min_rounds: int, max_rounds: int
) -> None:
    error = per_look_alpha(min_rounds, max_rounds, 0.95)
    looks = max_rounds - min_rounds + 1
    assert 0.05 / looks <= error < 0.05  # never under Bonferroni's, and wider than one look's
    # 40000 runs: the miss rate's standard error is 0.0011; 0.005 is over four of them.
    assert _any_look_misses(error, min_rounds, max_rounds, 40_000, seed=7) == pytest.approx(0.05, abs=0.005)
    # Bonferroni's level, for contrast, is far from using its 5%: its looks share their rounds.
    assert _any_look_misses(0.05 / looks, min_rounds, max_rounds, 40_000, seed=7) < 0.035


def test_one_look_is_a_plain_interval() -> None:
    assert per_look_alpha(5, 5, 0.95) == pytest.approx(0.05, abs=1e-12)


def test_keeps_going_before_min_rounds_with_no_interval() -> None:
    result = look([math.log(0.5)] * 3, SequentialPlan(limit=1.0))
    assert result.stop is None and result.interval is None
    assert result.ratio == pytest.approx(0.5)


def test_decided_when_the_interval_lies_under_the_limit() -> None:
    logs = [math.log(r) for r in (0.80, 0.82, 0.79, 0.81, 0.80)]
    result = look(logs, SequentialPlan(limit=1.0, resolution=0.001))
    assert result.stop == "decided"
    assert result.interval == pytest.approx(_t_interval(logs, per_look_alpha(5, 30, 0.95)))
    assert result.ratio == pytest.approx(math.exp(sum(logs) / 5))


def test_decided_when_the_interval_lies_over_the_limit() -> None:
    logs = [math.log(r) for r in (1.20, 1.22, 1.19, 1.21, 1.20)]
    assert look(logs, SequentialPlan(limit=1.0, resolution=0.001)).stop == "decided"


def test_resolution_when_the_interval_is_narrow_but_straddles_the_limit() -> None:
    logs = [math.log(r) for r in (0.999, 1.001, 1.000, 0.9995, 1.0005)]
    result = look(logs, SequentialPlan(limit=1.0, resolution=0.01))
    low, high = _t_interval(logs, per_look_alpha(5, 30, 0.95))
    assert low < 1.0 < high and math.log(high / low) / 2 < math.log(1.01)
    assert result.stop == "resolution"


def test_resolution_without_a_limit() -> None:
    logs = [math.log(r) for r in (0.70, 0.701, 0.699, 0.7, 0.7)]
    assert look(logs, SequentialPlan(limit=None)).stop == "resolution"


def test_keeps_going_while_wide_and_open() -> None:
    logs = [math.log(r) for r in (0.9, 1.1, 0.95, 1.05, 1.0)]
    assert look(logs, SequentialPlan(limit=1.0)).stop is None


def test_cap_at_max_rounds() -> None:
    logs = [math.log(r) for r in (0.9, 1.1, 0.95, 1.05, 1.0, 0.92)]
    result = look(logs, SequentialPlan(limit=1.0, min_rounds=5, max_rounds=6))
    assert result.stop == "cap"
    assert result.interval == pytest.approx(_t_interval(logs, per_look_alpha(5, 6, 0.95)))


def test_bad_plans_and_inputs_are_refused() -> None:
    with pytest.raises(HarnessError, match="max rounds"):
        SequentialPlan(min_rounds=6, max_rounds=5)
    with pytest.raises(HarnessError, match="min rounds"):
        SequentialPlan(min_rounds=1)
    with pytest.raises(HarnessError, match="finite"):
        look([float("nan")], SequentialPlan())
    with pytest.raises(HarnessError, match="cap"):
        look([0.0] * 31, SequentialPlan())
