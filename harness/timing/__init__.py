"""Timing, peak memory and machine fingerprint for runtime measurements (model-agnostic)."""

from harness.timing.devices import as_device, resolve_device
from harness.timing.fingerprint import (
    IDENTITY_FIELDS,
    device_fingerprint,
    device_name,
    fingerprint_id,
    nvml_snapshot,
    set_cudnn_benchmark,
)
from harness.timing.memory import PeakMemory
from harness.timing.stats import RuntimeStats
from harness.timing.timer import (
    CLOCKS,
    ClockName,
    CudaEventTimer,
    PerfCounterTimer,
    ProcessCpuTimer,
    Timer,
    make_timer,
    time_call,
    timer_method,
    warm_up,
)

__all__ = [
    "CLOCKS",
    "IDENTITY_FIELDS",
    "ClockName",
    "CudaEventTimer",
    "PeakMemory",
    "PerfCounterTimer",
    "ProcessCpuTimer",
    "RuntimeStats",
    "Timer",
    "as_device",
    "device_fingerprint",
    "device_name",
    "fingerprint_id",
    "make_timer",
    "nvml_snapshot",
    "resolve_device",
    "set_cudnn_benchmark",
    "time_call",
    "timer_method",
    "warm_up",
]
