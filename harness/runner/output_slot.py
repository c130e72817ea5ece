"""The output slot: where every timed call's output leaves its worker, without the worker learning
whether anyone looks at it.

The timing audit (:mod:`harness.runner.audit`) compares a few timed outputs, drawn at random, with
re-runs of the same inputs. If the worker were asked for a drawn output, it would learn which calls
are drawn; each image is drawn in one round only, so from then on it could return cheap garbage for
that image unseen. So the worker writes *every* timed output, after the timed span, into a slot of
shared memory the coordinator made for it, and the coordinator copies every one out as soon as it
reads the reply, before anything else: a drawn call's into memory the audit keeps, any other's into
a scratch buffer it drops. No message and no delay differs between the two.

What the coordinator copies is what the audit holds the call to. Copied right after the reply, it is
what the worker had made by then: a worker that answered with a cheap output and went on computing a
better one would have to finish that in the moment before the copy (the work would show anyway, as
CPU time between calls: :func:`harness.integrity.idle_work_check`). A digest of the output in the
reply, checked against the copy, would bind it no tighter and cost more than the copy: in the
rounds of ``benchmarks/timed_loop_purity.py`` (a 2-core AMD EPYC without AVX-512), BLAKE3, the
fastest digest there, took 1.2 ms a call in the worker, the coordinator's copy out 0.6 ms.

The slot is a ``memfd`` (an anonymous shared-memory file) sized for the split's largest float32
output, sealed against shrinking and growing, and mapped here once, read-only, before the worker
starts; the worker inherits the descriptor (no path names it). Why not a file under ``/dev/shm``
bound into the sandbox: the worker could truncate a file it may write, and the coordinator's next
read of the mapping would then end it with SIGBUS; reading it with ``read()`` instead would show in
the file's access time and as inotify ``IN_ACCESS`` events the worker can watch. A read of a
mapping leaves no such trace, and the seals make it safe. Closing the last descriptor frees the
memory, so nothing is left behind by a worker or a coordinator that was killed.
"""

from __future__ import annotations

import fcntl
import math
import mmap
import os
import tempfile
from collections.abc import Iterable

import numpy as np

__all__ = ["OutputSlot", "SlotWriter", "output_shape", "slot_values"]

_FLOAT32 = np.dtype(np.float32)


def output_shape(lr_size: tuple[int, int], scale: int) -> tuple[int, int, int, int]:
    """The shape of a timed output for an LR image of ``lr_size`` (height, width): 1x3xHxW."""
    height, width = lr_size
    return (1, 3, height * scale, width * scale)


def slot_values(lr_sizes: Iterable[tuple[int, int]], scale: int) -> int:
    """How many float32 values the largest output of these LR sizes (height, width) holds."""
    return max((math.prod(output_shape(size, scale)) for size in lr_sizes), default=0)


def _sealed_file(size: int) -> int:
    """A descriptor of ``size`` bytes of anonymous shared memory that no one can resize."""
    if not hasattr(os, "memfd_create"):  # not Linux: an unlinked temporary file, unsealed
        with tempfile.TemporaryFile() as handle:
            descriptor = os.dup(handle.fileno())
        os.ftruncate(descriptor, size)
        return descriptor
    descriptor = os.memfd_create("esr-output-slot", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(descriptor, size)
    fcntl.fcntl(descriptor, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    return descriptor


class OutputSlot:
    """The coordinator's side of one worker's slot: ``fd`` goes to the worker, :meth:`copy` reads."""

    def __init__(self, values: int) -> None:
        self.values = values
        self.fd = _sealed_file(max(values, 1) * _FLOAT32.itemsize)
        # Populated now, so a copy later is a plain memory copy, not thousands of page faults.
        self._map: mmap.mmap | None = mmap.mmap(
            self.fd, 0, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0), prot=mmap.PROT_READ
        )

    def copy(self, into: np.ndarray) -> np.ndarray | str:
        """``into`` (a flat float32 array) filled with the slot's first values; why not, in one line."""
        if self._map is None:
            return "the worker's output slot was closed"
        if not 0 < into.size <= self.values:
            return f"an output of {into.size} values does not fit the worker's output slot of {self.values}"
        np.copyto(into, np.frombuffer(self._map, _FLOAT32, count=into.size))
        return into

    def close(self) -> None:
        """Unmap and close the slot (again: nothing); its memory goes with the worker's descriptor."""
        if self._map is not None:
            self._map.close()
            self._map = None
            os.close(self.fd)


class SlotWriter:
    """The worker's side: the slot it inherited as ``fd``, mapped for writing."""

    def __init__(self, fd: int) -> None:
        # Populated now, so the first rounds' writes do not fault on every page.
        self._map = mmap.mmap(
            fd,
            0,
            flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0),
            prot=mmap.PROT_READ | mmap.PROT_WRITE,
        )
        os.close(fd)  # the mapping keeps the memory; no descriptor is left for the submission to find

    def view(self, shape: tuple[int, ...]) -> np.ndarray:
        """The slot's first values as a writable float32 array of ``shape`` (its memory, not a copy)."""
        count = math.prod(shape)
        if count * _FLOAT32.itemsize > len(self._map):
            raise ValueError(f"an output of shape {shape} does not fit the output slot")
        return np.frombuffer(self._map, _FLOAT32, count=count).reshape(shape)
