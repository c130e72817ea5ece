"""What machine a runtime was measured on, and a short id of the parts that decide runtimes.

Runtimes are only comparable between results with the same :func:`fingerprint_id`. GPU facts come
from NVML (the ``pynvml`` module of nvidia-ml-py); every NVML query is optional, so a missing
library, driver or permission is recorded as ``None`` / unavailable rather than failing a run.
The host name and hardware serial numbers or UUIDs are deliberately not recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from harness.errors import HarnessError
from harness.timing.devices import as_device

# Fields that decide how fast the same model runs; clocks and temperature vary from run to run.
IDENTITY_FIELDS = (
    "device_type",
    "gpu_name",
    "driver_version",
    "cpu_model",
    "torch_version",
    "cuda_version",
    "cudnn_version",
    "num_threads",
)


class NvmlUnavailable(Exception):
    """NVML could not be loaded or initialised; the message says why."""


@contextmanager
def _nvml() -> Iterator[ModuleType]:
    """Yield the initialised ``pynvml`` module and shut NVML down afterwards."""
    try:
        import pynvml
    except ImportError as exc:
        raise NvmlUnavailable("pynvml (nvidia-ml-py) is not installed") from exc
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError subclasses, or OSError from a broken library
        raise NvmlUnavailable(f"NVML could not be initialised: {exc}") from exc
    try:
        yield pynvml
    finally:
        with suppress(Exception):  # a failed shutdown must not hide the measurement
            pynvml.nvmlShutdown()


def _query(call: Callable[..., Any], *args: Any) -> Any:
    """One NVML query, or ``None`` when this GPU, driver or permission does not support it."""
    try:
        value = call(*args)
    except Exception:  # NVMLError_NotSupported, _NoPermission, missing symbols in old drivers...
        return None
    return value.decode() if isinstance(value, bytes) else value


def _nvml_handle(nvml: ModuleType, index: int) -> Any:
    """The NVML handle of torch's CUDA device ``index``.

    Torch and NVML number GPUs differently when CUDA_VISIBLE_DEVICES is set, so the device is
    matched by UUID (GPU or MIG instance), then by PCI bus id; never by position.
    """
    props = torch.cuda.get_device_properties(index)
    uuid = str(getattr(props, "uuid", "") or "")
    for prefix in ("GPU-", "MIG-"):
        if uuid:
            handle = _query(nvml.nvmlDeviceGetHandleByUUID, f"{prefix}{uuid}")
            if handle is not None:
                return handle
    if hasattr(props, "pci_bus_id"):
        bus_id = f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
        handle = _query(nvml.nvmlDeviceGetHandleByPciBusId, bus_id)
        if handle is not None:
            return handle
    raise NvmlUnavailable(f"no NVML device matches CUDA device {index}")


def _snapshot(nvml: ModuleType, handle: Any) -> dict[str, Any]:
    power_mw = _query(nvml.nvmlDeviceGetPowerUsage, handle)
    return {
        "sm_clock_mhz": _query(nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_SM),
        "mem_clock_mhz": _query(nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_MEM),
        "temperature_c": _query(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU),
        "power_w": None if power_mw is None else power_mw / 1000.0,
        "performance_state": _query(nvml.nvmlDeviceGetPerformanceState, handle),
    }


def nvml_snapshot(device: torch.device | str | int) -> dict[str, Any] | None:
    """Current clocks, temperature, power and P-state of a CUDA device (an int is a CUDA index).

    Taken before and after a run, it shows whether the GPU throttled. ``None`` for a CPU device;
    ``{"available": False, "error": ...}`` when NVML cannot answer.
    """
    resolved = as_device(torch.device("cuda", device) if isinstance(device, int) else device)
    if resolved.type != "cuda":
        return None
    try:
        with _nvml() as nvml:
            return {"available": True, **_snapshot(nvml, _nvml_handle(nvml, resolved.index))}
    except NvmlUnavailable as exc:
        return {"available": False, "error": str(exc)}


def _cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's marketing name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _gpu_facts(index: int) -> dict[str, Any]:
    """Static GPU facts from torch, completed by NVML's driver version, memory and clock limits."""
    props = torch.cuda.get_device_properties(index)
    facts: dict[str, Any] = {
        "gpu_index": index,
        "gpu_name": props.name,
        "gpu_compute_capability": f"{props.major}.{props.minor}",
        "gpu_memory_total_mb": props.total_memory / 1024**2,
        "gpu_multiprocessors": props.multi_processor_count,
        "driver_version": None,
        "gpu_max_sm_clock_mhz": None,
        "gpu_max_mem_clock_mhz": None,
        "gpu_state": None,
    }
    try:
        with _nvml() as nvml:
            handle = _nvml_handle(nvml, index)
            facts["driver_version"] = _query(nvml.nvmlSystemGetDriverVersion)
            facts["gpu_max_sm_clock_mhz"] = _query(nvml.nvmlDeviceGetMaxClockInfo, handle, nvml.NVML_CLOCK_SM)
            facts["gpu_max_mem_clock_mhz"] = _query(
                nvml.nvmlDeviceGetMaxClockInfo, handle, nvml.NVML_CLOCK_MEM
            )
            facts["gpu_state"] = _snapshot(nvml, handle)
            facts["nvml"] = {"available": True, "error": None}
    except NvmlUnavailable as exc:
        facts["nvml"] = {"available": False, "error": str(exc)}
    return facts


def device_fingerprint(device: torch.device | str) -> dict[str, Any]:
    """Describe the machine that times on ``device``: GPU (if any), CPU and software versions.

    The GPU name comes from torch (not NVML) so that the identity does not change when NVML is
    missing; ``gpu_state`` holds the clocks and temperature when the fingerprint was taken.
    """
    resolved = as_device(device)
    cudnn = torch.backends.cudnn
    fingerprint: dict[str, Any] = {
        "device_type": resolved.type,
        "gpu_index": None,
        "gpu_name": None,
        "driver_version": None,
        "nvml": None,
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "cudnn_version": cudnn.version() if cudnn.is_available() else None,
        "num_threads": torch.get_num_threads(),
        "cudnn_benchmark": bool(cudnn.benchmark),
    }
    if resolved.type == "cuda":
        fingerprint.update(_gpu_facts(resolved.index))
    return fingerprint


def fingerprint_id(fingerprint: dict[str, Any]) -> str:
    """A 16-hex-digit sha256 of the identity fields only (not clocks, temperature or flags)."""
    missing = [name for name in IDENTITY_FIELDS if name not in fingerprint]
    if missing:
        raise HarnessError(f"device fingerprint lacks field(s): {', '.join(missing)}")
    identity = {name: fingerprint[name] for name in IDENTITY_FIELDS}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return digest[:16]


def set_cudnn_benchmark(flag: bool) -> bool:
    """Set ``torch.backends.cudnn.benchmark`` and return its previous value (for the record and undo)."""
    previous = bool(torch.backends.cudnn.benchmark)
    torch.backends.cudnn.benchmark = bool(flag)
    return previous


def device_name(fingerprint: dict[str, Any], fallback: str) -> str:
    """What to call a run's device in titles: the GPU's name, else the CPU model, else ``fallback``."""
    return str(fingerprint.get("gpu_name") or fingerprint.get("cpu_model") or fallback)
