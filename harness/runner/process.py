"""A worker in a local process of its own, behind a pipe, with a time budget and a clear death report.

Processes are started from a fork server that has imported only torch and the worker module (on
Linux; elsewhere each is spawned): each worker is a clean process whose imports, torch settings and
CUDA context are its own, and starting one takes a fork rather than a fresh interpreter. When a
worker dies (a signal, ``sys.exit``, ``os._exit``, the out-of-memory killer) or overruns its
budget, the request fails with :class:`WorkerLost`, whose message names the signal or exit code
and quotes the last line the process wrote to its log. Each worker is started with its output slot
(:mod:`harness.runner.output_slot`), which the process's handle owns and closes with it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import time
from functools import lru_cache
from multiprocessing import reduction
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import numpy as np

from harness.runner import messages as msg
from harness.runner.cpu_usage import tree_cpu_seconds
from harness.runner.output_slot import OutputSlot
from harness.runner.worker import log_tail, serve

_SHUTDOWN_GRACE_S = 10.0


class WorkerLost(Exception):
    """The worker process died or ran out of time; the message is the failure reason."""


@lru_cache(maxsize=1)
def _context() -> Any:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["torch", "harness.runner.worker"])
        return context
    return multiprocessing.get_context("spawn")


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


class _Inherited:
    """A descriptor that a process started by :mod:`multiprocessing` inherits: unpickled there, it
    is the child's own number for it (passed as the pipe's ends are)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        return _detach, (reduction.DupFd(self.fd),)


def _detach(duplicate: Any) -> int:
    return duplicate.detach()


class WorkerProcess:
    """One submission's worker process; requests may take at most ``budget_s`` seconds in all.

    ``slot_values``: the size, in float32 values, of its output slot (the split's largest output).
    """

    def __init__(self, name: str, log_path: Path, budget_s: float, slot_values: int) -> None:
        self.name = name
        self.log_path = log_path
        self.budget_s = budget_s
        self.remaining_s = budget_s
        self.retries: list[str] = []  # a local worker is never restarted
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.slot = OutputSlot(slot_values)
        try:
            self._connection, self._process = self._start()
        except BaseException:
            self.slot.close()
            raise

    def _start(self) -> tuple[Any, Any]:
        """Start the process; its connection and a handle with ``sentinel``, ``exitcode``,
        ``is_alive``, ``kill`` and ``join`` (a :class:`multiprocessing.Process` here)."""
        context = _context()
        connection, child = context.Pipe()
        process = context.Process(
            target=serve,
            args=(child, str(self.log_path), _Inherited(self.slot.fd)),
            name=f"esr-worker:{self.name}",
            daemon=False,
        )
        process.start()
        child.close()
        return connection, process

    def _lost(self, what: str, doing: str) -> WorkerLost:
        tail = log_tail(self.log_path)
        return WorkerLost(f"worker {what} during {doing}" + (f"; its last output: {tail}" if tail else ""))

    def request(self, request: msg.Request, on_progress: Any = None, doing: str = "") -> msg.Reply:
        """Send ``request`` and return its final reply; streamed ``ImageOutput`` go to ``on_progress``.

        Raises :class:`WorkerLost` when the process dies or the budget runs out (the process is
        then killed); a :class:`~harness.runner.messages.Failed` reply is returned like any other.
        """
        doing = doing or type(request).__name__
        try:
            self._connection.send(request)
        except (BrokenPipeError, OSError):
            self._process.join(1.0)
            raise self._lost(_describe_exit(self._process.exitcode), doing) from None
        while True:
            started = time.monotonic()
            ready = wait([self._connection, self._process.sentinel], timeout=max(self.remaining_s, 0.0))
            self.remaining_s -= time.monotonic() - started
            if self._connection in ready:
                try:
                    reply = msg.read_reply(self._connection.recv_bytes())
                except (EOFError, OSError):
                    self._process.join(1.0)
                    raise self._lost(_describe_exit(self._process.exitcode), doing) from None
                except msg.UnexpectedReply as error:  # the submission took over its end of the pipe
                    self.kill()
                    raise WorkerLost(f"worker sent an unexpected reply during {doing}: {error}") from None
                if isinstance(reply, msg.ImageOutput):  # streamed before the final reply
                    if on_progress is not None:
                        on_progress(reply)
                    continue
                return reply
            if ready:  # only the sentinel: the process ended without a word
                self._process.join(1.0)
                raise self._lost(_describe_exit(self._process.exitcode), doing)
            self.kill()
            raise self._lost(f"timed out (no result within the {self.budget_s:g} s limit)", doing)

    def request_copying_output(
        self, request: msg.TimeImage, into: np.ndarray, doing: str = "", keep: bool = True
    ) -> tuple[msg.Reply, np.ndarray | str | None]:
        """``request``, and ``into`` filled from the output slot as soon as its reply is read (None
        when the reply is not :class:`~harness.runner.messages.ImageTimed`)."""
        reply = self.request(request, doing=doing)
        return reply, (self.slot.copy(into) if isinstance(reply, msg.ImageTimed) else None)

    def cpu_seconds(self) -> float | None:
        return tree_cpu_seconds(self._process.pid)

    def kill(self) -> None:
        """End the process now; its output slot is closed with it."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join(5.0)
        self.slot.close()

    def close(self) -> None:
        """Ask the worker to exit; kill it if it does not within a grace period."""
        if self._process.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):
                self._connection.send(msg.Shutdown())
            self._process.join(_SHUTDOWN_GRACE_S)
        self.kill()
        self._connection.close()
