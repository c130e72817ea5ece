"""An attack: when built, makes every clock it can find in the process run at ``factor`` speed.

It replaces ``time.perf_counter``, ``time.monotonic`` and ``time.time`` (and their ``_ns`` forms)
in the ``time`` module, in every loaded module that holds them, in functions' default arguments, and in every object the garbage
collector knows whose attributes hold them (a timer that kept a reference). Forward times measured
with those clocks read short; the coordinator's clock, in another process, does not.
"""

import gc
import sys
import time
import warnings

import torch
from torch import nn

_NAMES = ("perf_counter", "monotonic", "time", "perf_counter_ns", "monotonic_ns", "time_ns")


def _slowed(real, factor: float):
    origin = real()

    def clock():
        return type(origin)(origin + (real() - origin) * factor)

    return clock


def _slow_every_clock(factor: float) -> None:
    swaps = {}
    for name in _NAMES:
        real = getattr(time, name)
        swaps[id(real)] = _slowed(real, factor)
        setattr(time, name, swaps[id(real)])
    for module in list(sys.modules.values()):
        for attribute, value in list(getattr(module, "__dict__", {}).items()):
            if id(value) in swaps:
                setattr(module, attribute, swaps[id(value)])
    with warnings.catch_warnings():  # some modules warn when their attributes are read
        warnings.simplefilter("ignore")
        for holder in gc.get_objects():
            try:  # some objects raise when looked at (lazy CUDA state): skip them
                _swap_in(holder, swaps)
            except Exception:
                continue


def _swap_in(holder, swaps) -> None:
    """Replace the clocks ``holder`` keeps in its attributes or default arguments."""
    attributes = getattr(holder, "__dict__", None)
    if isinstance(attributes, dict):
        for attribute, value in list(attributes.items()):
            if id(value) in swaps:
                attributes[attribute] = swaps[id(value)]
    defaults = getattr(holder, "__defaults__", None)  # def __init__(self, clock=time.perf_counter)
    if isinstance(defaults, tuple) and any(id(value) in swaps for value in defaults):
        holder.__defaults__ = tuple(swaps.get(id(value), value) for value in defaults)


class SlowClock(nn.Module):
    def __init__(self, work: int, factor: float) -> None:
        super().__init__()
        self.work = work
        _slow_every_clock(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ones(160, 160)
        for _ in range(self.work):
            y = (y @ y).clamp_(0, 1)
        return torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest") + 0 * y[0, 0]
