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

from dataclasses import dataclass
from typing import Any, Literal

from harness.timing.rounds import ratio_estimate

Decision = Literal["faster", "slower", "equivalent", "undecided"]


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "submission": self.submission,
            "decision": self.decision,
            "ratio": self.ratio,
            "interval": list(self.interval) if self.interval is not None else None,
            "rounds_used": self.rounds_used,
            "stop_reason": self.stop_reason,
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
    )
