"""What `esr compare` concludes about each submission's paired runtime ratio to a reference.

A record of a run whose baseline was the reference carries the per-round paired ratios and, with
``--rounds auto``, the repeated confidence interval after each round (:mod:`harness.timing.sequential`).
The decision is read from that final interval:

* ``equivalent``: the whole interval lies within ``resolution`` of 1 (within ±1%, say): whatever
  the difference is, it is smaller than what was asked to be resolved;
* ``faster`` / ``slower``: otherwise, the whole interval lies under / over 1;
* ``undecided``: the interval reaches both sides of 1 and out of the band (the cap came first).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from harness.errors import HarnessError
from harness.timing.rounds import ratio_estimate

Decision = Literal["faster", "slower", "equivalent", "undecided"]
DECISIONS: tuple[str, ...] = get_args(Decision)


def decide(interval: tuple[float, float] | None, resolution: float) -> Decision:
    """The decision an interval of the ratio (compared / reference) supports; see the module doc."""
    if interval is None:
        return "undecided"
    low, high = interval
    if low >= 1 / (1 + resolution) and high <= 1 + resolution:
        return "equivalent"
    if high < 1:
        return "faster"
    if low > 1:
        return "slower"
    return "undecided"


@dataclass(frozen=True)
class Comparison:
    """One compared submission: its ratio to the reference, the interval and the decision."""

    submission: str
    ratio: float | None
    interval: tuple[float, float] | None
    decision: Decision
    rounds_used: int | None
    stop_reason: str | None
    round_ratios: tuple[float, ...] = ()  # per round, the paired ratio (median over images)

    def as_dict(self) -> dict[str, Any]:
        return {
            "submission": self.submission,
            "decision": self.decision,
            "ratio": self.ratio,
            "interval": list(self.interval) if self.interval is not None else None,
            "rounds_used": self.rounds_used,
            "stop_reason": self.stop_reason,
            "round_ratios": list(self.round_ratios),
        }


def compare_record(record: dict[str, Any], resolution: float) -> Comparison:
    """The comparison of one record timed beside the reference.

    The interval is the sequential one of the last round when the run chose its rounds
    (``--rounds auto``), else the plain t-interval of a fixed count of rounds.
    """
    name = record["submission"]
    pairing = record.get("pairing")
    if record.get("status") != "ok" or not pairing:
        return Comparison(name, None, None, "undecided", record.get("rounds_used"), record.get("stop_reason"))
    looks = record.get("rounds_until_decided") or []
    if looks and looks[-1]["interval"] is not None:
        ratio, interval = looks[-1]["ratio"], tuple(looks[-1]["interval"])
    else:
        estimate = ratio_estimate(pairing["round_ratios"], limit=1.0)
        ratio, interval = estimate.value, estimate.interval
    return Comparison(
        name,
        ratio,
        interval,
        decide(interval, resolution),
        record.get("rounds_used"),
        record.get("stop_reason"),
        tuple(pairing["round_ratios"]),
    )


@dataclass(frozen=True)
class ComparisonDocument:
    """What ``esr compare --json`` writes and ``esr report --compare`` reads: the reference, the
    resolution asked for, and each compared submission (:meth:`Comparison.as_dict`)."""

    reference: str
    resolution: float
    compared: tuple[Comparison, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "resolution": self.resolution,
            "compared": [item.as_dict() for item in self.compared],
        }


def _number(value: Any, where: str, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise HarnessError(f"{where}: must be a number, got {value!r}")
    if positive and value <= 0:
        raise HarnessError(f"{where}: must be positive, got {value!r}")
    return float(value)


def _optional_count(value: Any, where: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise HarnessError(f"{where}: must be a count of rounds or null, got {value!r}")
    return value


def _comparison_from(item: Any, where: str) -> Comparison:
    if not isinstance(item, dict):
        raise HarnessError(f"{where}: must be an object, got {type(item).__name__}")
    submission = item.get("submission")
    if not isinstance(submission, str) or not submission:
        raise HarnessError(f"{where}.submission: must be a submission name, got {submission!r}")
    decision = item.get("decision")
    if decision not in DECISIONS:
        raise HarnessError(f"{where}.decision: must be one of {', '.join(DECISIONS)}, got {decision!r}")
    ratio = item.get("ratio")
    ratio = None if ratio is None else _number(ratio, f"{where}.ratio")
    bounds = item.get("interval")
    interval = None
    if bounds is not None:
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise HarnessError(f"{where}.interval: must be [low, high] or null, got {bounds!r}")
        low, high = (_number(bound, f"{where}.interval") for bound in bounds)
        if low > high:
            raise HarnessError(f"{where}.interval: low {low} is over high {high}")
        interval = (low, high)
    stop = item.get("stop_reason")
    if stop is not None and not isinstance(stop, str):
        raise HarnessError(f"{where}.stop_reason: must be a text or null, got {stop!r}")
    rounds = _optional_count(item.get("rounds_used"), f"{where}.rounds_used")
    per_round = item.get("round_ratios", [])
    if not isinstance(per_round, list):
        raise HarnessError(f"{where}.round_ratios: must be a list of ratios, got {per_round!r}")
    ratios = tuple(_number(value, f"{where}.round_ratios") for value in per_round)
    return Comparison(submission, ratio, interval, decision, rounds, stop, ratios)


def load_comparisons(path: Path) -> ComparisonDocument:
    """Read and check a document written by ``esr compare --json``; a bad one is a HarnessError
    naming the file and the field."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HarnessError(f"{path}: not a readable JSON file ({error})") from error
    if not isinstance(raw, dict):
        raise HarnessError(f"{path}: not an `esr compare --json` document (expected an object)")
    reference = raw.get("reference")
    if not isinstance(reference, str) or not reference:
        raise HarnessError(f"{path}: reference: must be a submission name, got {reference!r}")
    resolution = _number(raw.get("resolution"), f"{path}: resolution")
    compared = raw.get("compared")
    if not isinstance(compared, list) or not compared:
        raise HarnessError(f"{path}: compared: must be a non-empty list, got {compared!r}")
    items = tuple(_comparison_from(item, f"{path}: compared[{index}]") for index, item in enumerate(compared))
    return ComparisonDocument(reference, resolution, items)
