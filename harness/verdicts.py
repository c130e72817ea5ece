"""Reading the verdicts a run document carries.

A constraint record has ``verdict`` (``pass``, ``fail`` or ``inconclusive``: the interval of a
measured ratio straddles the limit) and ``interval``: on the runtime constraint, the 95% confidence
interval of the ratio to the baseline. A record's ``valid`` is true, false, or null when nothing
failed but something is not decided yet. Every display (terminal tables, leaderboards, the HTML
report, the plot's error bars) reads them through this module, so that an inconclusive result is
never shown as valid. Documents of older schema versions are migrated when read
(:func:`harness.runner.schema.upgrade`), so this module reads the current version only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from harness.integrity import integrity_failure

__all__ = [
    "VALIDITY_LABELS",
    "Verdict",
    "format_interval",
    "interval",
    "overall",
    "record_validity",
    "runtime_constraint",
    "verdict",
]

Verdict = Literal["pass", "fail", "inconclusive"]

#: How a record's validity reads in a table's "valid" column.
VALIDITY_LABELS: dict[Verdict, str] = {"pass": "yes", "fail": "no", "inconclusive": "inconclusive"}


def verdict(item: Mapping[str, Any]) -> Verdict:
    """A constraint record's verdict."""
    return item["verdict"]


def overall(items: Iterable[Mapping[str, Any]]) -> Verdict | None:
    """All verdicts together: fail if one fails, else inconclusive if one is, else pass (None if none)."""
    found = {verdict(item) for item in items}
    if not found:
        return None
    return "fail" if "fail" in found else "inconclusive" if "inconclusive" in found else "pass"


def record_validity(record: Mapping[str, Any]) -> Verdict | None:
    """A result record's validity; a null ``valid`` beside verdicts is inconclusive, never valid.

    None when the record carries no verdicts at all (a run document without constraints applied).
    A failed integrity check is a fail whatever ``valid`` says.
    """
    if integrity_failure(record):
        return "fail"
    valid = record.get("valid")
    if valid is True:
        return "pass"
    if valid is False:
        return "fail"
    return "inconclusive" if record.get("constraints") else None


def runtime_constraint(items: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The runtime constraint's record among ``items`` (its value is the ratio to the baseline)."""
    return next((item for item in items if item.get("name") == "runtime"), None)


def interval(item: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """The ``interval`` [low, high] of a constraint record, when it has a usable one."""
    value = None if item is None else item.get("interval")
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    low, high = value
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (low, high))
    if not numbers or not (math.isfinite(low) and math.isfinite(high)) or low > high:
        return None
    return float(low), float(high)


def format_interval(bounds: tuple[float, float] | None, digits: int = 3) -> str:
    """``[0.801, 0.856]``, or '' when there is no interval."""
    if bounds is None:
        return ""
    return f"[{bounds[0]:.{digits}f}, {bounds[1]:.{digits}f}]"
