"""Which devices the harness runs on, in one place: what ``--device`` means, and what can be timed."""

from __future__ import annotations

import torch

from harness.errors import HarnessError


def as_device(device: torch.device | str) -> torch.device:
    """Return ``device`` as a ``torch.device`` of type cpu or cuda (with an explicit index).

    An explicit index keeps memory statistics and NVML look-ups on the GPU that runs the model,
    even if the current CUDA device changes later.
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise HarnessError(f"device {device!r} is not a valid torch device") from exc
    if resolved.type == "cpu":
        return resolved
    if resolved.type != "cuda":
        raise HarnessError(f"device {device!r}: only cpu and cuda devices can be timed")
    if not torch.cuda.is_available():
        raise HarnessError(f"device {device!r}: CUDA is not available on this machine")
    index = torch.cuda.current_device() if resolved.index is None else resolved.index
    if index >= torch.cuda.device_count():
        raise HarnessError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    return torch.device("cuda", index)


def resolve_device(requested: str) -> torch.device:
    """What ``--device`` names: ``auto`` is CUDA when a GPU is present, else the CPU; otherwise
    ``cpu``, ``cuda`` or ``cuda:N``, checked. Asking for CUDA without a GPU is an error, never a
    silent fall-back to the CPU."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise HarnessError(f"--device {requested}: no CUDA device is available (use --device cpu or auto)")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise HarnessError(f"--device {requested}: expected auto, cpu, cuda or cuda:N")
    return as_device(requested)
