"""The output slot (harness.runner.output_slot): where every timed output leaves its worker.

The worker writes each timed call's output there after the timed span; the coordinator copies every
one out right after the reply, and keeps those its audit drew. The slot must be safe to read while an untrusted worker
holds it (no resizing), hold exactly what the worker wrote, and say why when it cannot.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from harness.runner import messages as msg
from harness.runner.output_slot import OutputSlot, SlotWriter, slot_values
from harness.runner.performance_pass import LaneWorkers
from harness.runner.worker import SubmissionWorker
from harness.timing import PerfCounterTimer


@pytest.fixture()
def slot():
    made = OutputSlot(3 * 8 * 12)
    yield made
    made.close()


def test_the_slot_holds_the_largest_output_of_the_split() -> None:
    # 2x3 and 4x1 LR images at x4: 3 * 8 * 12 = 288 and 3 * 16 * 4 = 192 values.
    assert slot_values([(2, 3), (4, 1)], 4) == 288


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="sealed shared memory is Linux's")
def test_a_worker_cannot_resize_its_slot(slot: OutputSlot) -> None:
    """A shrunk slot would end the coordinator's next read of its mapping with SIGBUS."""
    worker_copy = os.dup(slot.fd)
    try:
        for size in (0, 4, 10**6):
            with pytest.raises(PermissionError):
                os.ftruncate(worker_copy, size)
        assert os.fstat(worker_copy).st_size == 288 * 4
    finally:
        os.close(worker_copy)


def test_the_coordinator_copies_exactly_what_the_worker_wrote(slot: OutputSlot) -> None:
    writer = SlotWriter(os.dup(slot.fd))
    written = np.arange(3 * 4 * 5, dtype=np.float32).reshape(1, 3, 4, 5) / 7
    writer.view((1, 3, 4, 5))[...] = written
    into = np.empty(60, np.float32)
    copied = slot.copy(into)
    assert copied is into and np.array_equal(copied.reshape(1, 3, 4, 5), written)
    writer.view((1, 3, 4, 5))[...] = 0  # a later write does not reach the copy already made
    assert np.array_equal(into.reshape(1, 3, 4, 5), written)


def test_what_does_not_fit_is_a_reason_not_a_read(slot: OutputSlot) -> None:
    assert "does not fit" in slot.copy(np.empty(289, np.float32))
    with pytest.raises(ValueError, match="does not fit"):
        SlotWriter(os.dup(slot.fd)).view((1, 3, 10, 10))
    slot.close()
    assert slot.copy(np.empty(4, np.float32)) == "the worker's output slot was closed"


class Remembering(nn.Module):
    """Nearest x4 upsampling that keeps a copy of its last output, for the test to compare."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest") * 0.5
        self.last = out.clone()
        return out


def test_every_timed_output_is_in_the_slot_with_its_shape_in_the_reply(slot: OutputSlot) -> None:
    model = Remembering()
    worker = SubmissionWorker(SlotWriter(os.dup(slot.fd)))
    worker.loaded = SimpleNamespace(model=model)  # type: ignore[assignment]
    worker.cell_forward = model
    submission = SimpleNamespace(scale=4, tile=None, tile_overlap=32, input_range=1.0)
    images = [np.full((2, 3, 3), 100, np.uint8), np.full((1, 2, 3), 7, np.uint8)]
    worker.request = SimpleNamespace(submission=submission)  # type: ignore[assignment]
    worker.timer = PerfCounterTimer()
    worker.inputs = [torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).contiguous() for image in images]
    for index, shape in [(0, (1, 3, 8, 12)), (1, (1, 3, 4, 8)), (0, (1, 3, 8, 12))]:
        reply = worker.time_image(msg.TimeImage(index, 1, 40 + index))
        assert reply.shape == shape
        expected = model.last.numpy()
        copied = slot.copy(np.empty(int(np.prod(shape)), np.float32))
        assert np.array_equal(copied.reshape(shape), expected)


class CopyingPool:
    """A worker pool that answers timed requests as a worker does and records each copy asked for."""

    def __init__(self, lr_sizes: list[tuple[int, int]]) -> None:
        self.split = SimpleNamespace(lr_sizes=lambda: lr_sizes)
        self.copies: list[tuple[msg.TimeImage, int, bool]] = []

    def ask_copying_output(self, entry, lane, request, into, doing, keep):
        self.copies.append((request, into.size, keep))
        shape = (1, 3, *(4 * side for side in self.split.lr_sizes()[request.index]))
        into[:] = 0.5
        return msg.ImageTimed(request.index, 10.0, 0, None, shape), into


def test_every_timed_output_is_copied_out_whether_the_audit_keeps_it_or_not() -> None:
    """The worker cannot tell a kept call by a copy it is spared: each timed request is followed by
    a copy of the output size the coordinator expects, and only the kept one is handed on."""
    pool = CopyingPool([(2, 3), (4, 1)])
    entry = SimpleNamespace(submission=SimpleNamespace(scale=4))
    workers = LaneWorkers(pool, SimpleNamespace(index=0), {"a": entry})  # type: ignore[arg-type]
    calls = [("a", 0), ("a", 1)]
    workers.reserve_outputs(calls, kept=[("a", 1)])
    dropped = workers.time_image("a", msg.TimeImage(0, 1, 7), "timing round 1")
    kept = workers.time_keeping_output("a", msg.TimeImage(1, 1, 8), "timing round 1")
    assert isinstance(dropped, msg.ImageTimed) and kept is not None
    assert pool.copies == [(msg.TimeImage(0, 1, 7), 288, False), (msg.TimeImage(1, 1, 8), 192, True)]
    reply, values = kept
    assert values.shape == (1, 3, 16, 4) and np.all(values == 0.5)
    # Copied into the scratch buffer reserved before the round, not into memory touched in it.
    assert workers.scratch.size == 288
