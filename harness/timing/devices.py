"""Which devices the timing code accepts, in one place."""

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
