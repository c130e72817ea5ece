"""What the coordinator observes of one timing subgroup's calls, and the integrity checks made from it.

The round loop tells a :class:`TimingAudit` about every timed call as it sees it from outside the
worker: the latency the worker reported, the coordinator's own clock around the request, and the
call's output pixels. The audit keeps the outputs of the calls it drew (one per image, in a round
every submission takes part in; drawn from the run's seed and never told to the worker) and, after
the rounds, asks for two kinds of extra requests, both plain timed requests to the worker:

* a re-run of each audited call (the same image and dither seed): its output must equal the timed
  one (:func:`harness.integrity.output_audit`);
* a short round repeating one image identically: it must not be more than 10% faster than the
  dithered calls of that image (:func:`harness.integrity.repeated_input_check`).

The clocks are compared against the overhead the baseline's requests show in the same subgroup
(the baseline is the organisers' code, timed beside every submission); the baseline itself is not
clock-checked, for want of a reference.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harness.integrity import (
    Check,
    clock_check,
    draw_audited_rounds,
    output_audit,
    outputs_agree,
    repeated_input_check,
)
from harness.runner.dither import derive_seed

__all__ = ["REPEATED_CALLS", "SCORE_TOLERANCE_DB", "TimingAudit", "threads_check", "timed_score_check"]

#: Calls in the round that repeats one image identically.
REPEATED_CALLS = 5

#: An audited timed output may score at most this much under the accuracy pass's output of its image.
SCORE_TOLERANCE_DB = 0.2


@dataclass
class _Seen:
    """One submission's calls as the coordinator saw them."""

    reported_ms: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))  # by image
    observed_ms: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    kept: dict[int, tuple[str, int, np.ndarray]] = field(default_factory=dict)  # image: label, seed, output
    reruns: list[tuple[str, bool, str]] = field(default_factory=list)
    scores_db: dict[int, tuple[str, float]] = field(
        default_factory=dict
    )  # image: label, PSNR of timed output
    repeated_ms: list[float] = field(default_factory=list)
    threads_left: int = 0  # the most Python threads one timed call left running


class TimingAudit:
    """The integrity observations of one subgroup (its submissions and the baseline beside them)."""

    def __init__(
        self,
        seed: int,
        images: int,
        min_rounds: int,
        baseline: str | None,
        score_db: Callable[[int, np.ndarray], float | None] | None = None,
    ) -> None:
        """``score_db``: the trusted scorer, an image's output to its PSNR against the HR (None
        without HR); with it each audited timed output is also scored (:meth:`checks`)."""
        self.seed = seed
        self.score_db = score_db
        self.audited_round = draw_audited_rounds(seed, images, max(min_rounds, 1))
        self.baseline = baseline
        self._seen: dict[str, _Seen] = defaultdict(_Seen)

    def keeps(self, round_index: int, image: int) -> bool:
        """Whether the output of this round's call of ``image`` is kept for its re-run."""
        return self.audited_round.get(image) == round_index

    def observe(
        self,
        name: str,
        *,
        round_index: int,
        image: int,
        dither_seed: int,
        reported_ms: float,
        observed_ms: float,
        output: np.ndarray | None,
        threads_left: int = 0,
    ) -> None:
        """One timed call: what the worker reported, what the coordinator's clock saw, its output,
        and how many Python threads it left running."""
        seen = self._seen[name]
        seen.threads_left = max(seen.threads_left, threads_left)
        seen.reported_ms[image].append(reported_ms)
        seen.observed_ms[image].append(observed_ms)
        if output is not None and self.keeps(round_index, image):
            seen.kept[image] = (f"round {round_index + 1}, image {image + 1}", dither_seed, output)

    def reruns(self, name: str) -> list[tuple[int, int]]:
        """(image, dither seed) of each kept call of ``name``, to request again after the rounds."""
        return [(image, seed) for image, (_, seed, _) in sorted(self._seen[name].kept.items())]

    def rerun_output(self, name: str, image: int, output: np.ndarray) -> None:
        """The output of a re-run: compared with the kept timed output, which is then dropped."""
        seen = self._seen[name]
        label, _, timed = seen.kept.pop(image)
        agreed, detail = outputs_agree(timed, output)
        seen.reruns.append((label, agreed, detail))
        score = self.score_db(image, timed) if self.score_db is not None else None
        if score is not None:
            seen.scores_db[image] = (label, score)

    def repeated_request(self) -> tuple[int, int]:
        """(image, dither seed) of the round that repeats one image identically: the first image."""
        return 0, derive_seed(self.seed, "repeated-input audit")

    def repeated(self, name: str, latencies_ms: list[float]) -> None:
        self._seen[name].repeated_ms.extend(latencies_ms)

    def _overhead_ms(self) -> float | None:
        """What a timed request costs beyond its forward pass: the baseline's median gap, per image."""
        if self.baseline is None or self.baseline not in self._seen:
            return None
        seen = self._seen[self.baseline]
        gaps = [
            statistics.median(seen.observed_ms[image]) - statistics.median(seen.reported_ms[image])
            for image in seen.reported_ms
        ]
        return max(statistics.median(gaps), 0.0) if gaps else None

    def checks(self, name: str, accuracy_db: dict[int, float] | None = None) -> list[Check]:
        """The integrity checks of ``name`` from what was observed.

        With ``accuracy_db`` (the accuracy pass's PSNR per image, scored the same way), each audited
        timed output must score within :data:`SCORE_TOLERANCE_DB` of it: a model that computes less
        in timed calls than in the accuracy pass fails, even one that does so consistently (its
        re-runs then agree with its timed outputs).
        """
        seen = self._seen[name]
        checks = []
        if seen.reruns:
            checks.append(output_audit(seen.reruns))
        if accuracy_db is not None and seen.scores_db:
            checks.append(timed_score_check(seen.scores_db, accuracy_db))
        overhead = self._overhead_ms()
        if name != self.baseline and overhead is not None and seen.reported_ms:
            reported = [statistics.median(times) for _, times in sorted(seen.reported_ms.items())]
            observed = [statistics.median(times) for _, times in sorted(seen.observed_ms.items())]
            checks.append(clock_check(reported, observed, overhead))
        image, _ = self.repeated_request()
        if len(seen.repeated_ms) >= 2 and seen.reported_ms.get(image):
            checks.append(repeated_input_check(seen.repeated_ms, seen.reported_ms[image]))
        if seen.reported_ms:
            checks.append(threads_check(seen.threads_left))
        return checks


def timed_score_check(scores_db: dict[int, tuple[str, float]], accuracy_db: dict[int, float]) -> Check:
    """Each audited timed output's PSNR against the accuracy pass's of its image (``image: PSNR``).

    The timed input carries a ±1-level dither, which moves an honest model's PSNR by hundredths of
    a dB; :data:`SCORE_TOLERANCE_DB` leaves room for that and none for a cheaper model.
    """
    worst = min(
        (
            (score - accuracy_db[image], label)
            for image, (label, score) in scores_db.items()
            if image in accuracy_db
        ),
        default=None,
    )
    if worst is None:
        return Check("timed_scores", "fail", "no audited timed output has an accuracy-pass score to compare")
    drop, label = worst
    compared = f"{len([i for i in scores_db if i in accuracy_db])} audited timed outputs"
    if drop < -SCORE_TOLERANCE_DB:
        return Check(
            "timed_scores",
            "fail",
            f"{label}: the timed output scores {-drop:.2f} dB under the accuracy pass "
            f"(tolerance {SCORE_TOLERANCE_DB} dB): the timed calls compute something else",
        )
    return Check(
        "timed_scores",
        "pass",
        f"{compared} score within {SCORE_TOLERANCE_DB} dB of the accuracy pass (worst {drop:+.3f} dB)",
    )


def threads_check(threads_left: int) -> Check:
    """A forward pass must not leave Python threads running: what they compute, no timer sees.

    The count comes from the worker (each timed call compares ``threading.active_count()``); a
    worker that hides its threads from it is still caught by the clocks or by its outputs.
    """
    if threads_left > 0:
        return Check(
            "threads",
            "fail",
            f"a timed forward pass left {threads_left} Python thread(s) running after it returned",
        )
    return Check("threads", "pass", "no timed forward pass left a Python thread running")
