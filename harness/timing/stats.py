"""Summary statistics of per-image latencies."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from harness.errors import HarnessError


@dataclass(frozen=True)
class RuntimeStats:
    """Mean, median, 90th percentile and spread of latencies in milliseconds.

    ``mean`` is the protocol figure: the plain average of the per-image times, computed as the
    official script does (``sum / len``). ``p90`` is NumPy's linearly interpolated percentile and
    ``std`` the population standard deviation (ddof = 0) of the same latencies.
    """

    mean: float
    median: float
    p90: float
    std: float

    @classmethod
    def from_latencies(cls, latencies_ms: Iterable[float]) -> RuntimeStats:
        values = [float(v) for v in latencies_ms]
        if not values:
            raise HarnessError("latencies: no measurements to summarise")
        bad = [v for v in values if not math.isfinite(v) or v < 0]
        if bad:
            raise HarnessError(f"latencies: {len(bad)} value(s) are negative or not finite, e.g. {bad[0]!r}")
        array = np.asarray(values, dtype=np.float64)
        return cls(
            mean=sum(values) / len(values),
            median=float(np.median(array)),
            p90=float(np.percentile(array, 90)),
            std=float(np.std(array, ddof=0)),
        )

    def as_dict(self) -> dict[str, float]:
        """The ``runtime_ms`` object of a result record."""
        return asdict(self)
