"""Workers in the coordinator's own process: for tests and debugging, never for a measurement.

Each worker is a :class:`~harness.runner.worker.SubmissionWorker` called directly, so a breakpoint
in a submission's ``forward`` stops the run there and a traceback shows the whole stack. Nothing is
isolated: a submission's imports, its torch settings (each load applies the run's) and a crash are
the coordinator's own, no time limit holds, and every lane's worker shares this process's cores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from harness.runner import messages as msg
from harness.runner.lanes import Lane, local_lanes
from harness.runner.worker import SubmissionWorker
from harness.timing import device_fingerprint, nvml_snapshot


class InProcessWorker:
    """One submission's worker, answering requests in the caller's thread."""

    def __init__(self) -> None:
        self.retries: list[str] = []  # never restarted
        self._worker: SubmissionWorker | None = SubmissionWorker()

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

    def cpu_seconds(self) -> float | None:
        return None  # the coordinator's own process: nothing to tell the worker's share by

    def kill(self) -> None:
        self._worker = None  # its model and inputs go with it

    def close(self) -> None:
        self._worker = None


class InProcessExecutor:
    """One lane per device, every worker in this process."""

    def __init__(self, devices: Sequence[torch.device]) -> None:
        self.lanes = local_lanes(devices)

    def start(
        self, lane: Lane, name: str, load: msg.Load, log_path: Path, budget_s: float
    ) -> InProcessWorker:
        return InProcessWorker()

    def fingerprint(self, lane: Lane, threads: int) -> dict[str, Any]:
        return {**device_fingerprint(lane.device), "num_threads": threads}

    def snapshot(self, lane: Lane) -> dict[str, Any] | None:
        return nvml_snapshot(lane.device)

    def close(self) -> None:
        """Nothing to let go of: each worker is closed by the coordinator."""
