"""Timing core: timers, warm-up, statistics, peak memory and device fingerprint.

The logic is tested on the CPU with fake clocks and workloads of known duration; tests marked
``cuda`` exercise CUDA events, peak memory and NVML where a GPU exists.
"""

from __future__ import annotations

import contextlib
import math
import re
import sys
import threading
import time
import types

import numpy as np
import pytest
import torch

from harness.errors import HarnessError
from harness.timing import (
    IDENTITY_FIELDS,
    CudaEventTimer,
    PeakMemory,
    PerfCounterTimer,
    ProcessCpuTimer,
    RuntimeStats,
    device_fingerprint,
    fingerprint_id,
    make_timer,
    nvml_snapshot,
    set_cudnn_benchmark,
    time_call,
    timer_method,
    warm_up,
)
from harness.timing import fingerprint as fingerprint_module
from harness.timing.rounds import paired_round_ratios, ratio_estimate, round_orders, turn_order

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class FakeClock:
    """A clock that only moves when a fake workload says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def workload(self, seconds: float, result: object = None):
        def run() -> object:
            self.now += seconds
            return result

        return run


# ---------------------------------------------------------------- timers


def test_perf_counter_timer_reports_milliseconds_and_passes_the_result() -> None:
    clock = FakeClock()
    result, elapsed = PerfCounterTimer(clock).time(clock.workload(0.25, result="sr"))
    assert result == "sr"
    assert elapsed == pytest.approx(250.0)


def test_cpu_timer_measures_a_real_sleep() -> None:
    timer = make_timer("cpu")
    assert timer.method == "perf_counter"
    result, elapsed = timer.time(lambda: time.sleep(0.02) or 7)
    assert result == 7
    assert 19.0 <= elapsed < 200.0  # loose: only checks units and that the call is inside the interval


class _FakeEvent:
    """Stands for ``torch.cuda.Event``: says in ``log`` when it is recorded and waited for."""

    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def record(self) -> None:
        self.log.append(f"{self.name} recorded")

    def synchronize(self) -> None:
        self.log.append(f"{self.name} waited for")

    def elapsed_time(self, end: _FakeEvent) -> float:
        assert (self.name, end.name) == ("start", "end")
        return 12.5


def test_cuda_event_timer_synchronises_the_whole_device_before_the_end_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The order of the calls, on a fake CUDA: work on another stream ends before the end event."""
    log: list[str] = []
    names = iter(["start", "end"])
    monkeypatch.setattr(torch.cuda, "Event", lambda enable_timing: _FakeEvent(log, next(names)))
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: log.append(f"{device} synchronised"))
    timer = CudaEventTimer(torch.device("cuda", 1))
    result, elapsed = timer.time(lambda: log.append("the call") or "sr")
    assert (result, elapsed) == ("sr", 12.5)
    assert log == [
        "start recorded",
        "the call",
        "cuda:1 synchronised",  # the device, every stream on it: not the current stream alone
        "end recorded",
        "end waited for",
    ]


def test_process_cpu_timer_reports_milliseconds_of_its_clock() -> None:
    clock = FakeClock()
    result, elapsed = ProcessCpuTimer(clock).time(clock.workload(0.125, result="sr"))
    assert (result, elapsed) == ("sr", pytest.approx(125.0))


def _spin_on_another_thread(cpu_seconds: float) -> float:
    """Busy work on a new thread until that thread has used ``cpu_seconds`` of CPU; its own count."""
    used: list[float] = []

    def spin() -> None:
        start = time.thread_time()
        while time.thread_time() - start < cpu_seconds:
            pass
        used.append(time.thread_time() - start)

    worker = threading.Thread(target=spin)
    worker.start()
    worker.join()
    return used[0]


def test_the_cpu_clock_counts_work_done_on_the_processs_other_threads() -> None:
    # The reference is the other thread's own CPU clock, read inside the call: the process's CPU
    # time over the call holds all of it, while the calling thread's own clock (time.thread_time,
    # what a per-thread timer would read) saw almost none of it: it was waiting in join().
    caller_before = time.thread_time()
    other_thread_s, elapsed_ms = ProcessCpuTimer().time(lambda: _spin_on_another_thread(0.05))
    caller_ms = (time.thread_time() - caller_before) * 1000.0
    assert other_thread_s >= 0.05
    assert elapsed_ms >= other_thread_s * 1000.0
    assert caller_ms < other_thread_s * 1000.0 / 2


def test_the_cpu_clock_does_not_count_time_asleep() -> None:
    # A 50 ms sleep is at least 50 ms of wall time whatever the load, and almost no CPU time.
    _, asleep_cpu_ms = ProcessCpuTimer().time(lambda: time.sleep(0.05))
    _, asleep_wall_ms = PerfCounterTimer().time(lambda: time.sleep(0.05))
    _, busy_cpu_ms = ProcessCpuTimer().time(lambda: _spin_on_another_thread(0.05))
    assert asleep_wall_ms >= 50.0
    assert asleep_cpu_ms < 10.0 < 50.0 <= busy_cpu_ms


def test_the_clock_chooses_the_timer_and_cpu_time_is_refused_on_a_gpu() -> None:
    assert make_timer("cpu", "cpu").method == timer_method("cpu", "cpu") == "process_time"
    assert make_timer("cpu", "wall").method == timer_method("cpu") == "perf_counter"
    assert isinstance(make_timer(torch.device("cpu"), "cpu"), ProcessCpuTimer)
    # Refused by name whether or not this machine has a GPU: the host's CPU time is not a GPU's.
    for device in ("cuda", "cuda:1", torch.device("cuda", 0)):
        with pytest.raises(HarnessError, match=r"^--clock cpu: times CPU runs only, the device is cuda"):
            make_timer(device, "cpu")
    with pytest.raises(HarnessError, match="clock: expected one of wall, cpu, got 'tsc'"):
        timer_method("cpu", "tsc")  # type: ignore[arg-type]


def test_unsupported_devices_are_refused() -> None:
    with pytest.raises(HarnessError, match="only cpu and cuda"):
        make_timer("meta")
    with pytest.raises(HarnessError, match="not a valid torch device"):
        make_timer("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(HarnessError, match="CUDA is not available"):
        make_timer("cuda")


# ---------------------------------------------------------------- warm-up and repeats


@pytest.mark.parametrize(
    ("duration", "options", "expected"),
    [
        (0.3, {}, 4),  # 0.9 s after three passes is short of 1 s; the fourth reaches 1.2 s
        (0.0, {}, 50),  # a free call never reaches 1 s: stops at max_passes
        (2.0, {}, 1),  # one pass is already longer than min_seconds
        (0.3, {"min_passes": 10}, 10),
        (0.3, {"max_passes": 3}, 3),
        (0.0, {"min_seconds": 0.0}, 1),
        (0.3, {"min_passes": 0, "max_passes": 0}, 0),  # warm-up off, as the official script
        (0.1, {"min_seconds": 0.55}, 6),
    ],
)
def test_warm_up_pass_counts(duration: float, options: dict, expected: int) -> None:
    clock = FakeClock()
    calls = []

    def fn() -> None:
        calls.append(1)
        clock.now += duration

    passes = warm_up(PerfCounterTimer(clock), fn, clock=clock, **options)
    assert passes == expected == len(calls)


def test_warm_up_with_a_real_workload() -> None:
    passes = warm_up(make_timer("cpu"), lambda: time.sleep(0.01), min_seconds=0.05, max_passes=50)
    assert (
        1 <= passes <= 5
    )  # five sleeps of >= 10 ms reach 50 ms; a slow machine overshoots, never undershoots


@pytest.mark.parametrize(
    "options",
    [
        {"min_seconds": -1.0},
        {"min_seconds": math.nan},
        {"min_passes": 5, "max_passes": 2},
        {"min_passes": -1},
    ],
)
def test_warm_up_refuses_bad_settings(options: dict) -> None:
    with pytest.raises(HarnessError, match="warm-up"):
        warm_up(make_timer("cpu"), lambda: None, **options)


def test_time_call_keeps_the_median_and_the_last_output() -> None:
    clock = FakeClock()
    durations = iter([0.005, 0.001, 0.003, 0.009, 0.002])
    outputs = iter(range(5))

    def fn() -> int:
        clock.now += next(durations)
        return next(outputs)

    result, median_ms = time_call(PerfCounterTimer(clock), fn, repeats=5)
    assert result == 4
    assert median_ms == pytest.approx(3.0)


def test_time_call_single_repeat_and_bad_repeats() -> None:
    clock = FakeClock()
    assert time_call(PerfCounterTimer(clock), clock.workload(0.004, "x")) == ("x", pytest.approx(4.0))
    with pytest.raises(HarnessError, match="repeats"):
        time_call(PerfCounterTimer(clock), clock.workload(0.0), repeats=0)


# ---------------------------------------------------------------- statistics


def _p90_reference(values: list[float]) -> float:
    """Linear interpolation between order statistics at rank 0.9 * (n - 1)."""
    ordered = sorted(values)
    rank = 0.9 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


@pytest.mark.parametrize(
    "latencies",
    [
        [10.0],
        [3.0, 1.0],
        [12.5, 11.0, 30.0, 11.2, 10.9],
        list(np.random.default_rng(3).gamma(4.0, 5.0, 100)),
    ],
)
def test_runtime_stats_against_plain_formulas(latencies: list[float]) -> None:
    stats = RuntimeStats.from_latencies(latencies)
    n = len(latencies)
    mean = sum(latencies) / n
    ordered = sorted(latencies)
    median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    std = math.sqrt(sum((x - mean) ** 2 for x in latencies) / n)  # population, ddof = 0
    assert stats.mean == pytest.approx(mean, rel=1e-12)
    assert stats.median == pytest.approx(median, rel=1e-12)
    assert stats.p90 == pytest.approx(_p90_reference(latencies), rel=1e-12)
    assert stats.std == pytest.approx(std, rel=1e-9, abs=1e-12)
    assert stats.as_dict() == {"mean": stats.mean, "median": stats.median, "p90": stats.p90, "std": stats.std}


def test_runtime_stats_hand_computed() -> None:
    stats = RuntimeStats.from_latencies([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    assert stats.mean == 5.5
    assert stats.median == 5.5
    assert stats.p90 == pytest.approx(9.1)  # rank 8.1 between 9 and 10
    assert stats.std == pytest.approx(math.sqrt(8.25))


@pytest.mark.parametrize(
    ("latencies", "message"), [([], "no measurements"), ([1.0, -2.0], "negative"), ([math.nan], "finite")]
)
def test_runtime_stats_refuses_bad_input(latencies: list[float], message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        RuntimeStats.from_latencies(latencies)


# ---------------------------------------------------------------- memory and flags


def test_peak_memory_is_none_on_cpu() -> None:
    memory = PeakMemory("cpu")
    memory.reset()
    _ = torch.zeros(1024, 1024)
    assert memory.peak_mb() is None


def test_set_cudnn_benchmark_returns_the_previous_value() -> None:
    original = torch.backends.cudnn.benchmark
    try:
        assert set_cudnn_benchmark(True) == original
        assert torch.backends.cudnn.benchmark is True
        assert set_cudnn_benchmark(False) is True
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = original


# ---------------------------------------------------------------- fingerprint


def test_cpu_fingerprint_records_the_environment() -> None:
    fp = device_fingerprint("cpu")
    for key in (*IDENTITY_FIELDS, "cudnn_benchmark", "cpu_count", "python_version"):
        assert key in fp
    assert fp["device_type"] == "cpu"
    assert fp["gpu_name"] is None
    assert fp["torch_version"] == torch.__version__
    assert fp["cuda_version"] == torch.version.cuda
    assert fp["num_threads"] == torch.get_num_threads()
    assert isinstance(fp["cpu_model"], str) and fp["cpu_model"]
    import socket

    assert socket.gethostname() not in {str(v) for v in fp.values()}


def test_fingerprint_id_is_stable_and_covers_identity_only() -> None:
    fp = device_fingerprint("cpu")
    first = fingerprint_id(fp)
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert fingerprint_id(device_fingerprint("cpu")) == first
    assert fingerprint_id(dict(reversed(list(fp.items())))) == first  # key order does not matter
    varied = {
        **fp,
        "cudnn_benchmark": not fp["cudnn_benchmark"],
        "gpu_state": {"sm_clock_mhz": 1},
        "cpu_count": 999,
    }
    assert fingerprint_id(varied) == first
    for field, value in [
        ("gpu_name", "NVIDIA H100"),
        ("num_threads", fp["num_threads"] + 1),
        ("driver_version", "1.0"),
    ]:
        assert fingerprint_id({**fp, field: value}) != first


def test_fingerprint_id_needs_every_identity_field() -> None:
    fp = device_fingerprint("cpu")
    del fp["cudnn_version"]
    with pytest.raises(HarnessError, match="cudnn_version"):
        fingerprint_id(fp)


def test_cpu_model_from_cpuinfo_and_fallback(tmp_path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Example CPU @ 3.00GHz\n")
    assert fingerprint_module._cpu_model(cpuinfo) == "Example CPU @ 3.00GHz"
    assert fingerprint_module._cpu_model(tmp_path / "missing")  # platform fallback, never empty


def test_nvml_snapshot_is_none_for_cpu() -> None:
    assert nvml_snapshot("cpu") is None


def test_missing_nvml_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml now raises ImportError
    with pytest.raises(fingerprint_module.NvmlUnavailable, match="not installed"), fingerprint_module._nvml():
        pass
    broken = types.ModuleType("pynvml")

    def fail() -> None:
        raise OSError("libnvidia-ml.so.1: cannot open shared object file")

    broken.nvmlInit = fail
    monkeypatch.setitem(sys.modules, "pynvml", broken)
    with pytest.raises(fingerprint_module.NvmlUnavailable, match="libnvidia-ml"), fingerprint_module._nvml():
        pass


def test_each_nvml_query_is_guarded() -> None:
    class Unsupported(Exception):
        pass

    def unsupported(*_args):
        raise Unsupported("Not Supported")

    fake = types.SimpleNamespace(
        NVML_CLOCK_SM=0,
        NVML_CLOCK_MEM=2,
        NVML_TEMPERATURE_GPU=0,
        nvmlDeviceGetClockInfo=lambda _h, kind: {0: 1980, 2: 2619}[kind],
        nvmlDeviceGetTemperature=unsupported,
        nvmlDeviceGetPowerUsage=lambda _h: 71250,
        nvmlDeviceGetPerformanceState=unsupported,
    )
    snapshot = fingerprint_module._snapshot(fake, object())
    assert snapshot == {
        "sm_clock_mhz": 1980,
        "mem_clock_mhz": 2619,
        "temperature_c": None,
        "power_w": 71.25,
        "performance_state": None,
    }


class _FakeNvml(types.ModuleType):
    """Just enough of pynvml to answer for one GPU found by UUID or by PCI bus id."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 0, 2, 0

    def __init__(self, uuid: str | None, bus_id: str | None) -> None:
        super().__init__("pynvml")
        self.known = {key for key in (uuid, bus_id) if key}
        self.lookups: list[str] = []
        self.shut_down = False

    def _find(self, key: str) -> str:
        self.lookups.append(key)
        if key not in self.known:
            raise LookupError(f"NVML_ERROR_NOT_FOUND: {key}")
        return "handle"

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None:
        self.shut_down = True

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:
        return self._find(uuid)

    def nvmlDeviceGetHandleByPciBusId(self, bus_id: str) -> str:
        return self._find(bus_id)

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"550.54.15"  # old nvidia-ml-py versions return bytes

    def nvmlDeviceGetMaxClockInfo(self, _handle: str, kind: int) -> int:
        return {0: 1980, 2: 2619}[kind]

    def nvmlDeviceGetClockInfo(self, _handle: str, kind: int) -> int:
        return {0: 1755, 2: 2619}[kind]

    def nvmlDeviceGetTemperature(self, _handle: str, _sensor: int) -> int:
        return 41

    def nvmlDeviceGetPowerUsage(self, _handle: str) -> int:
        return 70000

    def nvmlDeviceGetPerformanceState(self, _handle: str) -> int:
        return 0


def _fake_gpu(monkeypatch: pytest.MonkeyPatch, nvml: _FakeNvml) -> None:
    props = types.SimpleNamespace(
        name="Fake GPU 80GB",
        major=9,
        minor=0,
        total_memory=80 * 1024**3,
        multi_processor_count=132,
        uuid="8b1c6e4e-0000-1111-2222-333344445555",
        pci_domain_id=0,
        pci_bus_id=0x3B,
        pci_device_id=0,
    )
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda _index: props)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)


def test_gpu_is_matched_by_uuid_and_nvml_facts_are_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = _FakeNvml(uuid="GPU-8b1c6e4e-0000-1111-2222-333344445555", bus_id=None)
    _fake_gpu(monkeypatch, nvml)
    facts = fingerprint_module._gpu_facts(0)
    assert facts["gpu_name"] == "Fake GPU 80GB"
    assert facts["gpu_memory_total_mb"] == 80 * 1024
    assert facts["driver_version"] == "550.54.15"
    assert (facts["gpu_max_sm_clock_mhz"], facts["gpu_max_mem_clock_mhz"]) == (1980, 2619)
    assert facts["gpu_state"]["temperature_c"] == 41 and facts["gpu_state"]["power_w"] == 70.0
    assert facts["nvml"] == {"available": True, "error": None}
    assert nvml.shut_down


def test_gpu_is_matched_by_pci_bus_id_when_uuid_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = _FakeNvml(uuid=None, bus_id="00000000:3B:00.0")
    _fake_gpu(monkeypatch, nvml)
    assert fingerprint_module._gpu_facts(0)["driver_version"] == "550.54.15"
    assert nvml.lookups[-1] == "00000000:3B:00.0"


def test_unmatched_gpu_is_recorded_as_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_gpu(monkeypatch, _FakeNvml(uuid=None, bus_id=None))
    facts = fingerprint_module._gpu_facts(0)
    assert facts["nvml"] == {"available": False, "error": "no NVML device matches CUDA device 0"}
    assert facts["driver_version"] is None and facts["gpu_state"] is None
    assert facts["gpu_name"] == "Fake GPU 80GB"  # from torch, so the identity does not depend on NVML


# ---------------------------------------------------------------- CUDA


def _matmul_loop(a: torch.Tensor, n: int):
    def run() -> torch.Tensor:
        out = a
        for _ in range(n):
            out = a @ out
            out = out / out.norm()
        return out

    return run


@pytest.mark.cuda
@needs_cuda
def test_cuda_event_timer_times_gpu_work() -> None:
    timer = make_timer("cuda")
    assert isinstance(timer, CudaEventTimer) and timer.method == "cuda_event"
    a = torch.randn(2048, 2048, device="cuda")
    warm_up(timer, _matmul_loop(a, 1), min_seconds=0.0, min_passes=3)
    out, short = timer.time(_matmul_loop(a, 1))
    assert out.is_cuda and short > 0
    _, long = timer.time(_matmul_loop(a, 50))
    assert long > 5 * short  # 50 times the work; loose bound


@pytest.mark.cuda
@needs_cuda
def test_cuda_event_timer_counts_work_on_another_stream() -> None:
    """A call that puts its work on a stream of its own is timed as if it ran on the current one.

    With the end event recorded before the device is synchronised (the official script), the
    side stream's work would still be running at the end event: only the launches would be timed.
    """
    timer = make_timer("cuda")
    a = torch.randn(2048, 2048, device="cuda")
    side = torch.cuda.Stream()
    work = _matmul_loop(a, 50)

    def on_the_side() -> torch.Tensor:
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            return work()

    warm_up(timer, work, min_seconds=0.0, min_passes=3)
    warm_up(timer, on_the_side, min_seconds=0.0, min_passes=3)
    _, current = timer.time(work)
    out, elsewhere = timer.time(on_the_side)
    assert bool(torch.isfinite(out).all())
    assert elsewhere >= 0.5 * current  # the same work, wherever it ran; loose bound


@pytest.mark.cuda
@needs_cuda
def test_cuda_event_timer_spans_the_whole_call() -> None:
    _, elapsed = make_timer("cuda").time(lambda: time.sleep(0.02))
    assert 19.0 <= elapsed < 200.0


@pytest.mark.cuda
@needs_cuda
def test_peak_memory_grows_with_a_100_mb_tensor() -> None:
    memory = PeakMemory("cuda")
    memory.reset()
    before = memory.peak_mb()
    block = torch.empty(100 * 1024**2, dtype=torch.uint8, device="cuda")
    assert memory.peak_mb() >= before + 100.0
    del block
    memory.reset()
    assert memory.peak_mb() < before + 100.0


@pytest.mark.cuda
@needs_cuda
def test_cuda_fingerprint_and_snapshot() -> None:
    fp = device_fingerprint("cuda")
    assert fp["device_type"] == "cuda"
    assert fp["gpu_name"] == torch.cuda.get_device_name(fp["gpu_index"])
    assert fp["gpu_memory_total_mb"] > 0
    assert set(fp["nvml"]) == {"available", "error"}
    snapshot = nvml_snapshot(fp["gpu_index"])
    assert snapshot is not None and "available" in snapshot
    if fp["nvml"]["available"]:
        assert isinstance(fp["driver_version"], str) and fp["driver_version"]
        assert snapshot["available"] is True
        assert set(snapshot) >= {"sm_clock_mhz", "mem_clock_mhz", "temperature_c"}
        assert isinstance(fp["gpu_state"], dict)
    assert fingerprint_id(fp) == fingerprint_id(device_fingerprint("cuda"))


# ---------------------------------------------------------------- rounds and ratio intervals

T_975_4 = 2.7764451051977987  # Student's t, 97.5% quantile, 4 degrees of freedom (tables)


def test_ratio_interval_by_hand() -> None:
    # Per-round log-ratios 0, 0.1, -0.1, 0.05, -0.05: mean 0, sample sd sqrt(0.025 / 4).
    logs = [0.0, 0.1, -0.1, 0.05, -0.05]
    half = T_975_4 * math.sqrt(0.025 / 4) / math.sqrt(5)
    on_limit = ratio_estimate([math.exp(x) for x in logs], limit=1.0)
    assert on_limit.interval == pytest.approx((math.exp(-half), math.exp(half)), rel=1e-12)
    assert on_limit.value == pytest.approx(1.0, rel=1e-12)  # the geometric mean: exp(mean of logs)
    assert on_limit.verdict == "inconclusive" and on_limit.rounds_to_decide is None  # centred on it
    faster = ratio_estimate([0.8 * math.exp(x) for x in logs], limit=1.0)
    assert faster.interval == pytest.approx((0.8 * math.exp(-half), 0.8 * math.exp(half)), rel=1e-12)
    assert faster.verdict == "pass" and faster.as_dict()["interval"] == list(faster.interval)
    slower = ratio_estimate([1.25 * math.exp(x) for x in logs], limit=1.0)
    assert slower.verdict == "fail"


def test_rounds_to_decide_an_inconclusive_ratio() -> None:
    logs = [0.0, 0.1, -0.1, 0.05, -0.05]
    close = ratio_estimate([0.95 * math.exp(x) for x in logs], limit=1.0)
    assert close.verdict == "inconclusive"
    # The smallest n with t(0.975, n-1) * sd / sqrt(n) < |log 0.95|, with sd = sqrt(0.00625).
    sd, distance = math.sqrt(0.00625), abs(math.log(0.95))
    from scipy.stats import t as student_t

    expected = next(n for n in range(2, 1000) if student_t.ppf(0.975, n - 1) * sd / math.sqrt(n) < distance)
    assert close.rounds_to_decide == expected and expected > 5


def test_one_round_has_no_interval_and_a_plain_verdict() -> None:
    estimate = ratio_estimate([0.9], limit=1.0)
    assert estimate.interval is None and estimate.verdict == "pass" and estimate.value == pytest.approx(0.9)


def test_paired_round_ratio_is_the_median_of_the_per_image_ratios() -> None:
    # Round 1: ratios 0.5, 0.9, 0.8 -> 0.8; round 2: 1.0, 2.0 (a straddled pair), 0.9 -> 1.0.
    submission = [[5.0, 9.0, 16.0], [10.0, 40.0, 18.0]]
    baseline = [[10.0, 10.0, 20.0], [10.0, 20.0, 20.0]]
    assert paired_round_ratios(submission, baseline) == pytest.approx([0.8, 1.0])


@pytest.mark.parametrize(
    ("sub", "base", "message"),
    [
        ([[1.0], [2.0]], [[1.0]], "differ in number"),
        ([[1.0, 2.0]], [[1.0]], "2 images timed, the baseline 1"),
        ([[0.0]], [[1.0]], "positive"),
    ],
)
def test_paired_ratios_refuse_bad_rounds(sub: list, base: list, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        paired_round_ratios(sub, base)


def test_ratio_estimate_refuses_bad_ratios() -> None:
    with pytest.raises(HarnessError, match="positive"):
        ratio_estimate([], limit=1.0)
    with pytest.raises(HarnessError, match="positive"):
        ratio_estimate([1.0, -1.0], limit=1.0)


def test_round_orders_are_seeded_permutations_and_rotate_by_image() -> None:
    names = ["a", "b", "c", "d"]
    orders = round_orders(names, 8, seed=7)
    assert orders == round_orders(names, 8, seed=7)
    assert orders != round_orders(names, 8, seed=8)
    assert all(sorted(order) == names for order in orders)
    firsts = [order[0] for order in orders]
    assert all(firsts.count(name) == 2 for name in names)  # each first equally often
    assert [turn_order(["a", "b", "c"], image) for image in range(7)] == [
        ["a", "b", "c"],
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["c", "b", "a"],  # the second cycle is of the reversed order
        ["b", "a", "c"],
        ["a", "c", "b"],
        ["a", "b", "c"],
    ]
    assert [turn_order(["a", "b"], image) for image in range(4)] == [
        ["a", "b"],
        ["b", "a"],
        ["b", "a"],
        ["a", "b"],
    ]
    with pytest.raises(HarnessError, match="rounds"):
        round_orders(names, 0, seed=1)


@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_in_twice_as_many_images_as_names_each_of_two_goes_first_equally_often(count: int) -> None:
    # With rotation alone, "c" came before "a" in 4 of the 6 images of a round ordered a, b, c: a
    # paired ratio measured mostly in one relative position.
    names = [chr(ord("a") + index) for index in range(count)]
    turns = [turn_order(names, image) for image in range(2 * count)]
    for first in names:
        assert sum(turn[0] == first for turn in turns) == 2
        for second in names:
            if second != first:
                assert sum(turn.index(first) < turn.index(second) for turn in turns) == count
