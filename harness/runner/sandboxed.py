"""A worker in a fresh interpreter under bubblewrap, behind an inherited socket.

It speaks the requests of :mod:`harness.runner.messages` like any local worker
(:class:`~harness.runner.process.WorkerProcess`: the same time budget and death reports), but is
started by ``bwrap`` (:mod:`harness.runner.sandbox`) running :mod:`harness.runner.worker_main`,
with its end of a ``socketpair`` and its output slot (:mod:`harness.runner.output_slot`) kept open
across the exec, as descriptors: the slot has no path in the sandbox. Its sandbox holds the submission's
folder, its weights file and the run's LR images in shared memory (no HR file), read-only; the :class:`Load` it
is sent names that shared copy, never the decoded-image cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from harness.runner import messages as msg
from harness.runner import sandbox
from harness.runner.process import WorkerLost, WorkerProcess
from harness.runner.shared_data import SharedSplit
from harness.runner.worker import log_tail
from harness.runner.worker_main import READY

# How long a fresh interpreter may take to import torch and the harness before the worker counts
# as lost; this start-up is the harness's cost, so it is not taken from the submission's budget.
_START_TIMEOUT_S = 600.0
# bwrap reports its child's end a moment after the child's socket closes.
_REPORT_GRACE_S = 5.0


class _Sandboxed:
    """A ``bwrap`` child seen through the parts of :class:`multiprocessing.Process` a worker uses."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.sentinel = os.pidfd_open(popen.pid)  # readable once the process has ended

    @property
    def exitcode(self) -> int | None:
        """As ``Process.exitcode``: bwrap reports a child killed by signal N as 128 + N."""
        code = self._popen.poll()
        return -(code - 128) if code is not None and code > 128 else code

    @property
    def pid(self) -> int:
        """bwrap's: the worker and whatever it starts run under it."""
        return self._popen.pid

    def is_alive(self) -> bool:
        return self._popen.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._popen.kill()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the end, at least a few seconds: a worker whose socket closed is ending, and
        its exit status (quoted in the failure reason) comes through bwrap a moment later."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(None if timeout is None else max(timeout, _REPORT_GRACE_S))

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.sentinel)


def _submission_paths(load: msg.Load) -> list[Path]:
    """What the worker reads besides the harness: the submission's code and its weights file."""
    spec = load.submission.model
    paths = [load.submission.manifest_dir, spec.root, spec.file.parent if spec.file else None]
    paths.append(load.weights.path if load.weights is not None else None)
    return [path.resolve() for path in paths if path is not None]


class SandboxedWorkerProcess(WorkerProcess):
    """One submission's worker under ``bwrap``; ``split`` is the run's LR images in shared memory."""

    def __init__(
        self,
        name: str,
        log_path: Path,
        budget_s: float,
        *,
        bwrap: str,
        load: msg.Load,
        split: SharedSplit,
        slot_values: int,
    ) -> None:
        self._bwrap = bwrap
        self._load = load
        self._split = split
        super().__init__(name, log_path, budget_s, slot_values)

    def _start(self) -> tuple[Any, Any]:
        load = self._load
        ours, theirs = socket.socketpair()
        argv = [sys.executable, "-m", "harness.runner.worker_main", str(theirs.fileno()), str(self.slot.fd)]
        line = sandbox.command(
            self._bwrap,
            read_only=[*_submission_paths(load), self._split.folder],
            cuda=load.device.startswith("cuda"),
            argv=argv,
        )
        with open(self.log_path, "ab") as log:
            popen = subprocess.Popen(
                line,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(theirs.fileno(), self.slot.fd),
            )
        theirs.close()
        connection, process = Connection(ours.detach()), _Sandboxed(popen)
        try:
            started = connection.poll(_START_TIMEOUT_S) and connection.recv_bytes() == READY
        except (EOFError, OSError):
            started = False
        if not started:
            process.kill()
            process.join(_REPORT_GRACE_S)
            process.release()
            tail = log_tail(self.log_path)
            raise WorkerLost(
                "sandboxed worker did not start" + (f"; its last output: {tail}" if tail else "")
            )
        return connection, process

    def request(self, request: msg.Request, on_progress: Any = None, doing: str = "") -> msg.Reply:
        """As for any worker; a :class:`Load` is sent naming the LR images in shared memory."""
        if isinstance(request, msg.Load):
            request = dataclasses.replace(request, split=self._split)
        return super().request(request, on_progress=on_progress, doing=doing)

    def close(self) -> None:
        super().close()
        self._process.release()
