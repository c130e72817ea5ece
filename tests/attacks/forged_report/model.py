"""An attack: rewrites the timers of the harness code that runs in its process to report ``factor``
of every latency, while every clock keeps the host's time.

The worker's span around its timed passes then lies inside the coordinator's window (the clock is
honest); only the sizes give it away: the coordinator saw twice what was reported.
"""

import torch
from torch import nn


def _forge(factor: float) -> None:
    from harness.timing import timer

    for name in dir(timer):
        cls = getattr(timer, name)
        if isinstance(cls, type) and callable(getattr(cls, "time", None)):
            honest = cls.time

            def forged(self, fn, _honest=honest):
                result, elapsed_ms = _honest(self, fn)
                return result, elapsed_ms * factor

            cls.time = forged


class ForgedReport(nn.Module):
    def __init__(self, work: int, factor: float) -> None:
        super().__init__()
        self.work = work
        _forge(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ones(160, 160)
        for _ in range(self.work):
            y = (y @ y).clamp_(0, 1)
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest") + 0 * y[0, 0]
