"""The 2024+ ranking score: ``Score_X = exp(factor * X / X_baseline)``, weighted into ``Score_Final``.

Lower is better (a model as fast, small and cheap as the baseline scores ``exp(2)`` = 7.3891 on each
term). The form, factor and weights are the protocol's ``score`` fields, so every edition that ranks
by a score is this one function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.protocols import ScoreFormula

__all__ = ["Scores", "score"]


@dataclass(frozen=True)
class Scores:
    """The three sub-scores and the final score of one entry."""

    runtime: float
    flops: float
    params: float
    final: float


def score(formula: ScoreFormula, *, runtime_ratio: float, flops_ratio: float, params_ratio: float) -> Scores:
    """Scores of an entry whose runtime, FLOPs and params are the given multiples of the baseline's."""
    runtime, flops, params = (
        math.exp(formula.factor * ratio) for ratio in (runtime_ratio, flops_ratio, params_ratio)
    )
    weights = formula.weights
    final = weights.runtime * runtime + weights.flops * flops + weights.params * params
    return Scores(runtime=runtime, flops=flops, params=params, final=final)
