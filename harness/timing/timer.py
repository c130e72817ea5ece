"""Latency of one call of a zero-argument callable; the timing core knows nothing about models.

The runner hands over a closure that runs the forward pass on an input already on the device, so
what is timed is exactly that call: on CUDA the span between two events recorded on the current
stream right before it and after every stream of the device has finished it (the official NTIRE
2022 script's events, with the device synchronised before the end event, not after), on the CPU
the ``time.perf_counter`` interval around it. Those are the protocol's clocks (``wall``). A CPU run
may instead ask for the CPU time the call consumed (``--clock cpu``, :class:`ProcessCpuTimer`): a
diagnostic that other work on a shared machine disturbs less, never the protocol's figure.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Literal, Protocol, TypeVar

import torch

from harness.errors import HarnessError
from harness.timing.devices import as_device

T = TypeVar("T")
Clock = Callable[[], float]
ClockName = Literal["wall", "cpu"]

#: The clocks a run may time with: ``wall`` is the protocol's, ``cpu`` the CPU time of a CPU run.
CLOCKS: tuple[ClockName, ...] = ("wall", "cpu")


class Timer(Protocol):
    """Times one call: ``result, elapsed_ms = timer.time(fn)``."""

    method: str

    def time(self, fn: Callable[[], T]) -> tuple[T, float]: ...


class PerfCounterTimer:
    """Wall-clock timer for the CPU (the clock can be replaced in tests)."""

    method = "perf_counter"

    def __init__(self, clock: Clock = time.perf_counter) -> None:
        self._clock = clock

    def time(self, fn: Callable[[], T]) -> tuple[T, float]:
        start = self._clock()
        result = fn()
        return result, (self._clock() - start) * 1000.0


class ProcessCpuTimer(PerfCounterTimer):
    """CPU time the call consumed: every thread of this process, user and system (``--clock cpu``).

    Why the process and not the calling thread: torch runs an operator's intra-op work on a pool
    of threads when ``torch.get_num_threads() > 1`` (a worker has half the cores of a CPU run,
    ``--threads`` otherwise), and ``time.thread_time`` of the calling thread would miss all of it;
    ``time.process_time`` (``CLOCK_PROCESS_CPUTIME_ID``) sums every thread of the worker process,
    so a pass split over N threads reads about N times its wall time. What it leaves out is what
    makes it steadier under load: time spent waiting for a core that other work holds, and time
    asleep. What it adds, and what to keep in mind when reading it: the worker's own idle threads
    (a few microseconds) and OpenMP threads spinning while they wait between operators, which is
    why two figures compare only at the same thread count. Work done in a child process or on a
    device is not counted, which is one reason it is never the protocol's figure.
    """

    method = "process_time"

    def __init__(self, clock: Clock = time.process_time) -> None:
        super().__init__(clock)


class CudaEventTimer:
    """GPU timer: CUDA events around the call, the whole device synchronised before the end event.

    The events are recorded on the current stream, as the official script's are. The official
    script records its end event right after the call and synchronises afterwards, so work the call
    put on another stream (a ``torch.cuda.Stream`` of its own, a library's internal stream) can
    still be running when the end event is reached, and is not timed. Here the device is
    synchronised first (``torch.cuda.synchronize(device)`` waits for every stream on it), so the end
    event marks the moment all of the call's work is done, whatever stream it ran on; the price is
    one host round trip (microseconds) inside the span, the same for every submission. The events
    still measure GPU time from the start marker, including any gap while the host is launching
    kernels, as the official script's do; and ``fn``'s result is safe to read afterwards.
    """

    method = "cuda_event"

    def __init__(self, device: torch.device) -> None:
        self.device = device
        with torch.cuda.device(device):
            self._start = torch.cuda.Event(enable_timing=True)
            self._end = torch.cuda.Event(enable_timing=True)

    def time(self, fn: Callable[[], T]) -> tuple[T, float]:
        with torch.cuda.device(self.device):
            self._start.record()
            result = fn()
            torch.cuda.synchronize(self.device)  # every stream, not only the current one
            self._end.record()
            self._end.synchronize()
        return result, float(self._start.elapsed_time(self._end))


def timer_method(device: torch.device | str, clock: ClockName = "wall") -> str:
    """The ``method`` of the timer :func:`make_timer` builds for ``device`` and ``clock``.

    ``clock="cpu"`` on a GPU is a HarnessError: the forward pass runs on the device, and the host's
    CPU time says nothing about it.
    """
    if clock not in CLOCKS:
        raise HarnessError(f"clock: expected one of {', '.join(CLOCKS)}, got {clock!r}")
    # Refused before the device is resolved, so the answer is the same with or without a GPU here.
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    if clock == "cpu" and kind != "cpu":
        raise HarnessError(f"--clock cpu: times CPU runs only, the device is {device}")
    resolved = as_device(device)
    if clock == "cpu":
        return ProcessCpuTimer.method
    return CudaEventTimer.method if resolved.type == "cuda" else PerfCounterTimer.method


def make_timer(device: torch.device | str, clock: ClockName = "wall") -> Timer:
    """The timer for ``device``: the protocol's (``wall``: CUDA events on a GPU, ``perf_counter`` on
    the CPU), or the CPU time of a CPU run (``cpu``, :class:`ProcessCpuTimer`)."""
    method = timer_method(device, clock)
    resolved = as_device(device)
    if method == CudaEventTimer.method:
        return CudaEventTimer(resolved)
    return ProcessCpuTimer() if method == ProcessCpuTimer.method else PerfCounterTimer()


def warm_up(
    timer: Timer,
    fn: Callable[[], object],
    *,
    min_seconds: float = 1.0,
    min_passes: int = 1,
    max_passes: int = 50,
    clock: Clock = time.perf_counter,
) -> int:
    """Call ``fn`` until ``min_seconds`` of wall time have passed; return the number of passes.

    At least ``min_passes`` and at most ``max_passes`` calls are made (``max_passes=0`` turns the
    warm-up off, as in the official script). Calls go through ``timer`` so that each one has
    finished on the device before the wall clock is read again.
    """
    if not math.isfinite(min_seconds) or min_seconds < 0:
        raise HarnessError(f"warm-up min_seconds must be a non-negative number, got {min_seconds!r}")
    if min_passes < 0 or max_passes < min_passes:
        raise HarnessError(
            f"warm-up passes need 0 <= min_passes <= max_passes, got min_passes={min_passes}, "
            f"max_passes={max_passes}"
        )
    start = clock()
    passes = 0
    while passes < max_passes and (passes < min_passes or clock() - start < min_seconds):
        timer.time(fn)
        passes += 1
    return passes


def time_call(timer: Timer, fn: Callable[[], T], *, repeats: int = 1) -> tuple[T, float]:
    """Call ``fn`` ``repeats`` times; return the last result and the median latency in ms."""
    if repeats < 1:
        raise HarnessError(f"repeats must be at least 1, got {repeats!r}")
    latencies = []
    for _ in range(repeats):
        result, elapsed_ms = timer.time(fn)
        latencies.append(elapsed_ms)
    return result, statistics.median(latencies)
