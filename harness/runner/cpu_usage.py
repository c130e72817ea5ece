"""The CPU time a worker's processes have used, read from the kernel, outside the worker.

Read from ``/proc``: the ``schedstat`` of every thread of the worker's process and of every process
under it (a sandboxed worker runs under ``bwrap``; a submission may start processes of its own),
plus the CPU time of the children it has already waited for (``cutime`` and ``cstime`` of
``stat``, in clock ticks). Nothing the worker does in its own process changes what the kernel
counts, so the timing audit uses it to see work done between timed calls
(:func:`harness.integrity.idle_work_check`). Where ``/proc`` has none of this (not Linux), the
reading is None and the check is not made.
"""

from __future__ import annotations

import os

__all__ = ["tree_cpu_seconds"]

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read(path: str) -> bytes:
    """A small ``/proc`` file's bytes, with one ``open``, ``read`` and ``close`` (read twice in each
    timed request: plain system calls, not :class:`pathlib.Path` and text decoding, keep it short)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        return os.read(descriptor, 4096)
    finally:
        os.close(descriptor)


def _process_cpu_seconds(pid: int) -> tuple[float, list[int]] | None:
    """CPU seconds of ``pid``'s threads and its reaped children, and its living children's pids."""
    tasks = f"/proc/{pid}/task"
    total_ns = 0
    children: list[int] = []
    try:
        for task in os.listdir(tasks):
            try:
                total_ns += int(_read(f"{tasks}/{task}/schedstat").split()[0])
                children += [int(child) for child in _read(f"{tasks}/{task}/children").split()]
            except (OSError, ValueError, IndexError):  # a thread that ended while it was read
                continue
        # Fields after the command name, which is in parentheses and may hold spaces: cutime is the 16th.
        after_name = _read(f"/proc/{pid}/stat").rpartition(b")")[2].split()
        reaped_ticks = int(after_name[13]) + int(after_name[14])
    except (OSError, ValueError, IndexError):
        return None
    return total_ns / 1e9 + reaped_ticks / _TICKS_PER_SECOND, children


def tree_cpu_seconds(pid: int | None) -> float | None:
    """The CPU seconds used so far by process ``pid`` and every process under it; None if unreadable."""
    if pid is None:
        return None
    root = _process_cpu_seconds(pid)
    if root is None:
        return None
    total, pending = root
    seen = {pid}
    while pending:
        child = pending.pop()
        if child in seen:
            continue
        seen.add(child)
        found = _process_cpu_seconds(child)
        if found is not None:  # a child that exited while it was read: its parent's cutime has it
            total += found[0]
            pending += found[1]
    return total
