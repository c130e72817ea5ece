"""Peak GPU memory as the challenge reports it: ``torch.cuda.max_memory_allocated()`` in MiB."""

from __future__ import annotations

import torch

from harness.timing.devices import as_device


class PeakMemory:
    """Peak memory allocated by tensors on one device since the last :meth:`reset`.

    It counts memory handed out by PyTorch's caching allocator to tensors, not what the allocator
    reserved from the driver, so it does not depend on what ran before. On the CPU there is no
    such counter and :meth:`peak_mb` is ``None``.
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = as_device(device)

    def reset(self) -> None:
        """Start a new measurement (call it before each submission)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_mb(self) -> float | None:
        """Peak allocated memory in MiB (bytes / 1024**2) since :meth:`reset`, or ``None`` on the CPU."""
        if self.device.type != "cuda":
            return None
        return torch.cuda.max_memory_allocated(self.device) / 1024**2
