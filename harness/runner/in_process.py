"""Workers in the coordinator's own process: for tests and debugging, never for a measurement.

Each worker is a :class:`~harness.runner.worker.SubmissionWorker` called directly, so a breakpoint
in a submission's ``forward`` stops the run there and a traceback shows the whole stack. Nothing is
isolated: a submission's imports, its torch settings (each load applies the run's) and a crash are
the coordinator's own, no time limit holds, and every lane's worker shares this process's cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.runner import messages as msg
from harness.runner.lanes import Lane, local_lanes, output_slot_values
from harness.runner.output_slot import OutputSlot, SlotWriter
from harness.runner.worker import SubmissionWorker
from harness.timing import device_fingerprint, nvml_snapshot


class InProcessWorker:
    """One submission's worker, answering requests in the caller's thread; its output slot holds
    ``slot_values`` float32, as a worker process's does."""

    def __init__(self, slot_values: int) -> None:
        self.retries: list[str] = []  # never restarted
        self.slot = OutputSlot(slot_values)
        self._worker: SubmissionWorker | None = SubmissionWorker(SlotWriter(os.dup(self.slot.fd)))

    def request(
        self,
        request: msg.Request,
        on_progress: Callable[[msg.ImageOutput], Any] | None = None,
        doing: str = "",
    ) -> msg.Reply:
        if self._worker is None:
            return msg.Failed(f"worker closed before {doing or type(request).__name__}")
        for reply in self._worker.handle(request):
            if not isinstance(reply, msg.ImageOutput):
                return reply
            if on_progress is not None:
                on_progress(reply)
        return msg.Failed(f"worker: no reply to {type(request).__name__}")

    def request_copying_output(
        self, request: msg.TimeImage, into: np.ndarray, doing: str = "", keep: bool = True
    ) -> tuple[msg.Reply, np.ndarray | str | None]:
        reply = self.request(request, doing=doing)
        return reply, (self.slot.copy(into) if isinstance(reply, msg.ImageTimed) else None)

    def cpu_seconds(self) -> float | None:
        return None  # the coordinator's own process: nothing to tell the worker's share by

    def kill(self) -> None:
        self._worker = None  # its model and inputs go with it
        self.slot.close()

    def close(self) -> None:
        self.kill()


class InProcessExecutor:
    """One lane per device, every worker in this process."""

    def __init__(self, devices: Sequence[torch.device]) -> None:
        self.lanes = local_lanes(devices)

    def start(
        self, lane: Lane, name: str, load: msg.Load, log_path: Path, budget_s: float
    ) -> InProcessWorker:
        return InProcessWorker(output_slot_values(load))

    def fingerprint(self, lane: Lane, threads: int) -> dict[str, Any]:
        return {**device_fingerprint(lane.device), "num_threads": threads}

    def snapshot(self, lane: Lane) -> dict[str, Any] | None:
        return nvml_snapshot(lane.device)

    def close(self) -> None:
        """Nothing to let go of: each worker is closed by the coordinator."""
