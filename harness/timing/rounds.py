"""Interleaved timing rounds and what they let us conclude about a runtime ratio.

Two things that the timing core needs and that know nothing about models:

* :func:`round_orders` decides who is timed when. In every round each timed thing (a submission,
  the baseline) takes one pass over the images; the passes are interleaved image by image, and the
  order of the turns is a seeded shuffle per round, rotated by one place per image and reversed
  every other cycle (:func:`turn_order`), so no one is always first or last, each of two goes first
  equally often, and a slow phase of the machine hits everyone alike.
* :func:`paired_round_ratios` turns the per-image latencies of a submission and of its baseline,
  timed side by side in the same rounds, into one ratio per round (the median of its per-image
  ratios), and :func:`ratio_estimate` turns those into the paired ratio (their geometric mean),
  its confidence interval and a three-valued verdict against a limit.

The interval is Student's t on the logarithms of the per-round ratios (runtimes are positive and
their ratios multiplicative, so a log scale makes the interval symmetric in "faster" and "slower").
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from harness.errors import HarnessError

Verdict = Literal["pass", "fail", "inconclusive"]


def round_orders(names: Sequence[str], rounds: int, seed: int) -> list[list[str]]:
    """One shuffled order of ``names`` per round, reproducible from ``seed``.

    Over the rounds every name is first about equally often: each round's order is a fresh
    permutation drawn so that the first place cycles through the names, then the rest shuffled.
    (Within a round, :func:`turn_order` also rotates the order image by image.)
    """
    if rounds < 1:
        raise HarnessError(f"rounds must be at least 1, got {rounds}")
    rng = random.Random(seed)
    names = list(names)
    if not names:
        return [[] for _ in range(rounds)]
    firsts = names[:]
    rng.shuffle(firsts)
    orders = []
    for index in range(rounds):
        first = firsts[index % len(firsts)]
        rest = [name for name in names if name != first]
        rng.shuffle(rest)
        orders.append([first, *rest])
    return orders


def turn_order(order: Sequence[str], image_index: int) -> list[str]:
    """The order of turns for one image of a round: the round's order rotated by the image index,
    reversed in every other cycle of ``len(order)`` images.

    Rotation alone keeps the round's cyclic order: with three names ``a b c`` rotated, ``c`` comes
    before ``a`` in two images of three, in every cycle, so a paired ratio of ``c`` to ``a`` would be
    measured mostly in one relative position, and any cost of going second (a cache another process
    has just filled, a core it has just warmed) would enter the round's median. Alternating the
    cycles of the order and of its reverse puts every pair in each relative order equally often in
    each ``2 * len(order)`` images.
    """
    if not order:
        return []
    cycle, shift = divmod(image_index, len(order))
    base = list(order) if cycle % 2 == 0 else list(reversed(order))
    return [*base[shift:], *base[:shift]]


@dataclass(frozen=True)
class RatioEstimate:
    """A runtime ratio to the baseline with its interval and verdict against ``limit``.

    ``value`` is the geometric mean of the paired per-round ratios, the centre of ``interval``, the
    ``confidence`` interval of the ratio from those per-round ratios (None with one round).
    ``verdict``: pass when the whole interval lies at or under the limit, fail when it lies wholly
    over it, inconclusive when it straddles it (with one round: the value against the limit).
    ``rounds_to_decide`` is, for an inconclusive verdict, about how many rounds would give an
    interval clear of the limit at the observed spread (None when the spread is zero or the
    estimate sits on the limit).
    """

    value: float
    interval: tuple[float, float] | None
    verdict: Verdict
    rounds: int
    confidence: float
    rounds_to_decide: int | None

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["interval"] = list(self.interval) if self.interval is not None else None
        return out


def _positive(values: Sequence[float], who: str) -> list[float]:
    checked = [float(v) for v in values]
    if not checked or any(not math.isfinite(v) or v <= 0 for v in checked):
        raise HarnessError(f"{who} must be positive numbers, got {list(values)!r}")
    return checked


def paired_round_ratios(
    submission: Sequence[Sequence[float]], baseline: Sequence[Sequence[float]]
) -> list[float]:
    """Per round, the median over images of submission latency / baseline latency.

    Both take per round the latency of every image, timed side by side (the two turns of an image are
    next to each other in the round), so each per-image ratio compares the two under the same
    conditions; the median keeps one pair that straddled a change of the machine's load (another
    job starting, say) from moving the round's ratio.
    """
    if len(submission) != len(baseline):
        raise HarnessError(f"paired rounds differ in number: {len(submission)} vs {len(baseline)}")
    ratios = []
    for index, (mine, theirs) in enumerate(zip(submission, baseline, strict=True)):
        mine = _positive(mine, f"round {index + 1}'s latencies")
        theirs = _positive(theirs, f"round {index + 1}'s baseline latencies")
        if len(mine) != len(theirs):
            raise HarnessError(f"round {index + 1}: {len(mine)} images timed, the baseline {len(theirs)}")
        ratios.append(statistics.median(m / t for m, t in zip(mine, theirs, strict=True)))
    return ratios


def _t_quantile(confidence: float, degrees: int) -> float:
    """Student's t quantile of a two-sided ``confidence`` interval.

    SciPy's statistics are imported here, not with the module: the worker processes import this
    package, and a second of scipy.stats start-up in each of them buys them nothing.
    """
    from scipy.stats import t as student_t

    return float(student_t.ppf(0.5 + confidence / 2, degrees))


_MOST_ROUNDS = 1_000_000  # beyond this a verdict is not worth measuring: say nothing


def _rounds_to_decide(log_mean: float, log_sd: float, log_limit: float, confidence: float) -> int | None:
    """Smallest n whose t-interval half-width, at this spread, is under the distance to the limit.

    The half-width shrinks as n grows, so a bisection finds n; None when even ``_MOST_ROUNDS`` would
    not do (an estimate sitting on the limit) or the spread is zero.
    """
    distance = abs(log_mean - log_limit)

    def decides(n: int) -> bool:
        return _t_quantile(confidence, n - 1) * log_sd / math.sqrt(n) < distance

    if log_sd == 0 or not decides(_MOST_ROUNDS):
        return None
    low, high = 2, _MOST_ROUNDS  # decides(high) holds; find the first n that decides
    while low < high:
        middle = (low + high) // 2
        if decides(middle):
            high = middle
        else:
            low = middle + 1
    return low


def ratio_estimate(round_ratios: Sequence[float], *, limit: float, confidence: float = 0.95) -> RatioEstimate:
    """The paired runtime ratio over rounds (their geometric mean), its interval (Student's t on the
    logarithms of the per-round ratios) and the three-valued verdict against ``limit``."""
    ratios = _positive(round_ratios, "per-round ratios")
    if not 0 < confidence < 1:
        raise HarnessError(f"confidence must lie between 0 and 1, got {confidence}")
    rounds = len(ratios)
    logs = [math.log(ratio) for ratio in ratios]
    log_mean = sum(logs) / rounds
    value = math.exp(log_mean)
    if rounds == 1:
        verdict: Verdict = "pass" if value <= limit else "fail"
        return RatioEstimate(value, None, verdict, rounds, confidence, None)
    log_sd = math.sqrt(sum((x - log_mean) ** 2 for x in logs) / (rounds - 1))
    half_width = _t_quantile(confidence, rounds - 1) * log_sd / math.sqrt(rounds)
    low, high = math.exp(log_mean - half_width), math.exp(log_mean + half_width)
    if high <= limit:
        verdict = "pass"
    elif low > limit:
        verdict = "fail"
    else:
        verdict = "inconclusive"
    needed = (
        _rounds_to_decide(log_mean, log_sd, math.log(limit), confidence)
        if verdict == "inconclusive"
        else None
    )
    return RatioEstimate(value, (low, high), verdict, rounds, confidence, needed)
